"""The restricted connector (``lsandbox.linux._connector``), at the broker's level.

- ``connector_rules``: a plan that handles neither ``MAKE_SOCK`` nor ``RESOLVE_UNIX`` (no
  Landlock) gets no connector; one that does gives the connector exactly its rules' grants
  of them (and ``MAKE_SOCK`` on the directories Landlock split).
- Below ABI 9 (a broker told to use a connector where the kernel has no ``RESOLVE_UNIX``,
  which the launcher never does): the connector cannot restrict itself, so every pathname
  connect and send fails with EACCES and a note says why; nothing is performed unrestricted.
- ABI 9 and later: the broker's policy allows the directory, the connector's rules grant
  nothing (the kernel refuses: EACCES, nothing reaches the server) or the directory (served,
  and the server's ``SO_PEERCRED`` shows the command's uid: the connector took the handing
  thread's identity). Stream connects (prepared by the C fast path where compiled) and
  datagrams (``sendto``, ``sendmsg``). Root and nobody.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct

import pytest

import landlock as ll
from lsandbox.linux import _broker
from lsandbox.linux._unix_pins import connector_rules
from tests.security import _unix_helpers as H
from tests.security._unix_helpers import Server, brokered, policy, shared_dir
from tests.security.test_broker_signals import _interrupted, _timeouts
from tests.security.test_broker_stalls import BLOCKED, _blocked_connects_then_other

pytestmark = [pytest.mark.kernel, pytest.mark.security]
RU = ll.FS_RESOLVE_UNIX
MS = ll.FS_MAKE_SOCK
ABI = ll.abi_version()
NEEDS_9 = pytest.mark.skipif(ABI < 9, reason=f"Landlock RESOLVE_UNIX needs ABI 9; this kernel provides ABI {ABI}")


def test_connector_rules_are_the_plans_make_sock_and_resolve_unix_grants():
    read = ll.FS_READ_FILE | ll.FS_READ_DIR
    rules = [("/", read), ("/run/a.sock", read | RU), ("/tmp/sd", RU | MS), ("/w", read | MS)]
    assert connector_rules(read, rules) is None  # no Landlock right of AF_UNIX handled
    assert connector_rules(read | RU, rules) == (RU, [("/run/a.sock", RU), ("/tmp/sd", RU)])
    assert connector_rules(read | MS, rules, ("/w/split",)) == (MS, [("/tmp/sd", MS), ("/w", MS), ("/w/split", MS)])
    assert connector_rules(read | MS | RU, rules) == (MS | RU, [("/run/a.sock", RU), ("/tmp/sd", RU | MS), ("/w", MS)])
    assert connector_rules(read | RU, [("/", read)]) == (RU, [])  # handled, granted nowhere: all refused


def _reach(path: str) -> list[str]:
    """A stream connect, a datagram sendto and a sendmsg to ``path`` (+ ``.d``)."""
    out = []
    for kind, send in ((socket.SOCK_STREAM, None), (socket.SOCK_DGRAM, "sendto"), (socket.SOCK_DGRAM, "sendmsg")):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            if send is None:
                s.connect(path)
            elif send == "sendto":
                s.sendto(b"x", path + ".d")
            else:
                s.sendmsg([b"y"], [], 0, path + ".d")
            out.append("ok")
        except OSError as e:
            out.append(errno.errorcode.get(e.errno or 0, str(e)))
        finally:
            s.close()
    return out


def _serve(monkeypatch: pytest.MonkeyPatch, rules: list[tuple[str, int]], nobody: bool
           ) -> tuple[list[str], list[dict], list[int], int]:
    """The workload under a broker that uses a connector with ``rules``; returns (results,
    events, uids the stream server saw, datagrams received)."""
    monkeypatch.setattr(H, "Broker", functools.partial(_broker.Broker, connector=(RU, rules)))
    d = shared_dir()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dg = Server(f"{d}/s.d", socket.SOCK_DGRAM)
    try:
        srv.bind(f"{d}/s")
        os.chmod(f"{d}/s", 0o777)
        srv.listen(8)
        got, events = brokered(_reach, f"{d}/s", pol=policy({d: "allow"}), as_nobody=nobody)
        srv.settimeout(0.5)
        uids = []
        try:
            while True:
                c, _ = srv.accept()
                uids.append(struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1])
                c.close()
        except (TimeoutError, OSError):
            pass
        return got, events, uids, dg.settle()
    finally:
        srv.close()
        dg.close()
        for name in ("s", "s.d"):
            if os.path.exists(f"{d}/{name}"):
                os.unlink(f"{d}/{name}")
        os.rmdir(d)


@pytest.mark.skipif(ABI >= 9, reason="the kernel has RESOLVE_UNIX: the connector restricts itself")
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_without_resolve_unix_the_connector_fails_closed(monkeypatch, nobody):
    got, events, uids, dgrams = _serve(monkeypatch, [], nobody)
    assert got == ["EACCES"] * 3 and uids == [] and dgrams == 0
    notes = [e["text"] for e in events if e.get("kind") == "note"]
    assert len(notes) == 1 and "could not restrict itself" in notes[0], events


@NEEDS_9
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_the_kernel_refuses_what_the_connectors_rules_do_not_grant(monkeypatch, nobody):
    got, events, uids, dgrams = _serve(monkeypatch, [], nobody)
    assert got == ["EACCES"] * 3 and uids == [] and dgrams == 0
    assert not [e for e in events if e.get("kind") == "note"], events


@NEEDS_9
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_granted_calls_are_served_as_the_command(monkeypatch, nobody):
    d = "/tmp"  # shared_dir() lives here: a grant on it covers the test's sockets
    got, events, uids, dgrams = _serve(monkeypatch, [(d, RU)], nobody)
    assert got == ["ok"] * 3, events
    assert uids == [65534 if nobody else os.geteuid()] and dgrams == 2


# A call that would block goes on waiting in the broker thread (the connector only ever
# makes non-blocking attempts): the command's signals, SO_SNDTIMEO and other calls behave as
# without a connector. The workloads are the broker's own signal and stall tests'.


@pytest.fixture
def connected(monkeypatch):
    """A directory with a server whose backlog one connect fills, and one that accepts; the
    broker uses a connector granting the directory."""
    d = shared_dir()
    monkeypatch.setattr(H, "Broker", functools.partial(_broker.Broker, connector=(RU, [(d, RU)])))
    full = socket.socket(socket.AF_UNIX)
    full.bind(f"{d}/full")
    os.chmod(f"{d}/full", 0o777)
    full.listen(0)
    ok = Server(f"{d}/ok")
    yield d, f"{d}/full", ok.path
    full.close()
    ok.close()


@NEEDS_9
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_blocked_connect_through_the_connector_takes_signals(connected, nobody):
    d, full, _ = connected
    res, _ = brokered(_interrupted, full, as_nobody=nobody, pol=policy({d: "allow"}), killable=True, timeout=30)
    assert res == ((-1, "EINTR"), True, (-1, "EINTR"), True, 2)


@NEEDS_9
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_blocked_connect_through_the_connector_times_out(connected, nobody):
    d, full, _ = connected
    conn, conn_took, partial, _ = brokered(_timeouts, full, as_nobody=nobody, pol=policy({d: "allow"}),
                                           killable=True, timeout=60)[0]
    assert conn == (-1, "EAGAIN") and partial is True and 0.9 < conn_took < 20, conn_took


@NEEDS_9
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_blocked_connects_through_the_connector_do_not_starve_others(connected, nobody):
    d, full, ok = connected
    (blocked, res, took), _ = brokered(_blocked_connects_then_other, full, ok, as_nobody=nobody,
                                       pol=policy({d: "allow"}), killable=True)
    assert blocked == BLOCKED and res == "ok" and took < 10, (blocked, res, took)
