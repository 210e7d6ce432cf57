"""Landlock ``RESOLVE_UNIX`` (ABI 9): what the kernel layer under the AF_UNIX broker does.

1. The sandbox's own rules (``_unix_rules.resolve_unix_rules`` in the plan) are enforced by
   the kernel on connects and sends the sandbox performs itself: a connect or datagram to a
   path the policy does not allow is refused with EACCES, an allowed one goes through. That
   is the layer that catches anything reaching the kernel from inside the sandbox without
   the broker.
2. Brokered calls: the kernel checks ``RESOLVE_UNIX`` against the domain of the task that
   *performs* the connect or send, and the broker performs every pathname connect/send of
   the sandbox. Its own threads cannot carry the sandbox's domain (a Landlock domain on a
   thread takes away its ptrace-mode access to the sandbox: pidfd_getfd and /proc/<tid>/mem
   fail), so the final call is made by a connector thread restricted by the sandbox's
   ``RESOLVE_UNIX`` rules (``lsandbox.linux._connector``). When the broker allows what the
   Landlock rules deny (the two layers made to disagree by wrapping ``resolve_unix_rules``
   in the test's own launcher; nothing in lsandbox honours a test switch), the kernel
   refuses it with EACCES: stream connects (through the C fast path's preparation too) and
   datagram sends, as root and as nobody.

Root and nobody; skipped below ABI 9 (``make test-kernels`` runs it on 7.3)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import pytest

import landlock as ll
from lsandbox.linux._features import features
from lsandbox.linux._plan import build_plan
from tests._sandbox import PY
from tests._util import run_in_child, setpriv_nobody
from tests.security._unix_helpers import Server, policy, shared_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(ll.abi_version() < 9, reason=f"Landlock RESOLVE_UNIX needs ABI 9; "
                                 f"this kernel provides ABI {ll.abi_version()}")]
KINDS = {"stream": socket.SOCK_STREAM, "datagram": socket.SOCK_DGRAM}


def _reach(path: str, kind: int) -> str:
    """A stream connect or a datagram sendto: 'ok' or the errno name."""
    s = socket.socket(socket.AF_UNIX, kind)
    try:
        s.connect(path) if kind == socket.SOCK_STREAM else s.sendto(b"x", path)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e))
    finally:
        s.close()


def _landlock_only(ok: str, bad: str, kind: int, socket_dir: str) -> list[str]:
    """In a forked child: the plan's Landlock ruleset alone (no filter B), then both paths."""
    plan = build_plan(policy({ok: "allow"}), socket_dir, features())
    assert plan.handled_fs & ll.AccessFs.RESOLVE_UNIX and plan.ruleset is not None
    plan.ruleset.restrict_self()
    return [_reach(ok, kind), _reach(bad, kind)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_sandbox_rules_refuse_unlisted_paths_in_the_kernel(kind, nobody):
    d, sockets = shared_dir(), shared_dir()
    ok, bad = Server(f"{d}/ok", KINDS[kind]), Server(f"{d}/bad", KINDS[kind])
    try:
        got = run_in_child(_landlock_only, ok.path, bad.path, KINDS[kind], sockets, as_nobody=nobody).unwrap()
        assert got == ["ok", "EACCES"]
        assert ok.settle() == 1 and bad.settle() == 0
    finally:
        ok.close()
        bad.close()
        os.rmdir(d)
        os.rmdir(sockets)


# The test's launcher: lsandbox's CLI with RESOLVE_UNIX taken away from $LSB_TEST_DENY in the
# Landlock rules, while the policy, which the broker decides by, still allows it.
LAUNCHER = r"""
import os, sys
import landlock as ll
from lsandbox.linux import _plan
deny = os.environ.pop("LSB_TEST_DENY", "")
real = _plan.resolve_unix_rules

def rules(*a, **kw):
    out = real(*a, **kw)
    if deny and deny in out:
        out[deny] = ll.AccessFs(0)
        print("denied in the Landlock rules", file=sys.stderr, flush=True)
    return out

_plan.resolve_unix_rules = rules
from lsandbox.cli import main
sys.exit(main())
"""
PROBE = """
import socket, sys
path, kind = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM)
try:
    s.connect(path) if kind == "stream" else s.sendto(b"x", path)
    print("ok")
except OSError as e:
    print(e.errno)
"""


def _run(sock: str, deny: bool, who: str, kind: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LSB_TEST_DENY": sock if deny else ""}
    prefix = setpriv_nobody() if who == "nobody" else []
    return subprocess.run([*prefix, sys.executable, "-c", LAUNCHER, "run", "--allow-unix-socket", sock,
                           "--", PY, "-c", PROBE, sock, kind],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("who", ["root", "nobody"])
def test_brokered_call_with_whole_rules_is_served(who, kind):
    """The control for the test below: same launcher, rules left whole."""
    d = shared_dir()
    srv = Server(f"{d}/s", KINDS[kind])
    try:
        r = _run(srv.path, False, who, kind)
        assert r.returncode == 0 and r.stdout.split() == ["ok"], r
        assert srv.settle() == 1
    finally:
        srv.close()
        os.rmdir(d)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("who", ["root", "nobody"])
def test_kernel_refuses_what_landlock_denies_though_the_broker_allows(who, kind):
    """A connect (stream) or a sendto (datagram), both performed by the broker."""
    d = shared_dir()
    srv = Server(f"{d}/s", KINDS[kind])
    try:
        r = _run(srv.path, True, who, kind)
        assert r.returncode == 0 and "denied in the Landlock rules" in r.stderr, r
        assert r.stdout.split() == ["13"], r  # EACCES from Landlock, for a call the broker allowed
        assert srv.settle() == 0
    finally:
        srv.close()
        os.rmdir(d)
