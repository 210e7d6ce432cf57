"""AF_UNIX datagrams through the real launcher: without an allowed socket path, datagram
sockets cannot even be created (SOCK_RAW is a datagram socket on AF_UNIX too); with one,
the broker performs the sends and a denied destination receives nothing."""

from __future__ import annotations

import os
import socket

import pytest

from tests._sandbox import policy, probe, rmtree, world_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security]

SEND = """
def t(f):
    try:
        f(); return "ok"
    except OSError as e:
        return type(e).__name__
def send(kind, path):
    s = socket.socket(socket.AF_UNIX, kind)
    s.sendto(b"x", path)
def send_msg(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendmsg([b"x"], [], 0, path)
R["dgram"] = t(lambda: send(socket.SOCK_DGRAM, BAD))
R["raw"] = t(lambda: send(socket.SOCK_RAW, BAD))
R["sendmsg"] = t(lambda: send_msg(BAD))
R["pair"] = t(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
R["stream_pair"] = t(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM))
R["allowed"] = t(lambda: send(socket.SOCK_DGRAM, GOOD))
"""


@pytest.fixture
def servers():
    d = world_dir("lsb-dg-")
    os.mkdir(os.path.join(d, "ok"))
    os.chmod(os.path.join(d, "ok"), 0o777)
    socks = []
    for name in ("bad.sock", "ok/good.sock"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(os.path.join(d, name))
        os.chmod(os.path.join(d, name), 0o777)
        s.setblocking(False)
        socks.append(s)
    yield d, socks
    for s in socks:
        s.close()
    rmtree(d)


def _received(s: socket.socket) -> int:
    n = 0
    while True:
        try:
            s.recv(64)
            n += 1
        except BlockingIOError:
            return n


def _code(d: str) -> str:
    return f"BAD = {os.path.join(d, 'bad.sock')!r}\nGOOD = {os.path.join(d, 'ok/good.sock')!r}\n" + SEND


def test_datagrams_really_reach_unsandboxed(servers):
    d, (bad, _good) = servers
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"x", os.path.join(d, "bad.sock"))
    assert _received(bad) == 1


def test_no_allowed_path_no_datagram_sockets(servers):
    d, (bad, good) = servers
    got = probe(_code(d), policy(":workspace"))
    assert got["dgram"] == got["raw"] == got["sendmsg"] == got["pair"] == "PermissionError"
    assert got["stream_pair"] == "ok"
    assert _received(bad) == 0


def test_allowed_path_brokered_sends(servers):
    d, (bad, good) = servers
    got = probe(_code(d), policy(":workspace", allow_unix_sockets=[os.path.join(d, "ok")]))
    assert got["allowed"] == "ok" and got["pair"] == "ok"
    assert got["dgram"] == got["raw"] == got["sendmsg"] == "PermissionError"
    assert _received(bad) == 0
    assert _received(good) == 1
