"""A brokered call that would block honours the command's signals and socket timeouts, as the
kernel does without the sandbox: a handled signal interrupts a blocked connect with EINTR
(thread- and process-directed); SIGTERM to lsandbox ends a run whose command sits in a
blocked connect with a handled signal already taken; SO_SNDTIMEO ends a blocked connect
with EAGAIN and a blocked stream send with its partial count. Filter B with WAIT_KILLABLE
(as the launcher installs it: without the broker's help the target could not be
interrupted at all); both brokers; root and nobody; the NOTIF_ADDFD path; the CLI with and
without namespaces. Each probe is first run unsandboxed for the expected answer."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from tests._sandbox import PY
from tests._util import run_in_child
from tests.security._broker_cases import both_brokers, cli_env, in_docker
from tests.security._unix_helpers import brokered, policy, shared_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security]
AS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture(autouse=True, params=["fastpath", "python"])
def broker_mode(request, monkeypatch):
    return both_brokers(request, monkeypatch)


@pytest.fixture
def full():
    """(dir, make): ``make()`` returns the path of a fresh server whose backlog one connect
    fills (never accepted: the next connect blocks). Fresh for each run: a connection a
    finished run left in a backlog stays there."""
    d = shared_dir()
    servers: list[socket.socket] = []

    def make() -> str:
        path = f"{d}/full{len(servers)}"
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        os.chmod(path, 0o777)
        srv.listen(0)
        servers.append(srv)
        return path

    yield d, make
    for srv in servers:
        srv.close()


def _raw_connect(fd: int, path: str) -> tuple[int, str]:
    addr = struct.pack("=H", socket.AF_UNIX) + path.encode() + b"\0"
    r = _libc.connect(fd, addr, len(addr))  # no retry on EINTR (Python's socket.connect retries)
    return r, errno.errorcode.get(ctypes.get_errno(), "?") if r else "ok"


def _interrupted(path: str) -> tuple:
    got: list[int] = []
    signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
    first = socket.socket(socket.AF_UNIX)
    first.connect(path)
    main = threading.get_ident()
    out = []
    for how in ("thread", "process"):
        def kick(how: str = how) -> None:
            time.sleep(0.5)
            if how == "thread":
                signal.pthread_kill(main, signal.SIGUSR1)
            else:
                os.kill(os.getpid(), signal.SIGUSR1)

        s = socket.socket(socket.AF_UNIX)
        threading.Thread(target=kick, daemon=True).start()
        start = time.monotonic()
        out.append(_raw_connect(s.fileno(), path))
        out.append(time.monotonic() - start > 0.3)
        s.close()
    time.sleep(0.05)
    return *out, len(got)


@AS
def test_handled_signal_interrupts_blocked_connect(full, nobody):
    d, make = full
    want = run_in_child(_interrupted, make(), as_nobody=nobody).unwrap()
    assert want == ((-1, "EINTR"), True, (-1, "EINTR"), True, 2)
    res, _ = brokered(_interrupted, make(), as_nobody=nobody, pol=policy({d: "allow"}), killable=True, timeout=30)
    assert res == want


def _docker_interrupted(path: str, d: str, nobody: bool) -> tuple:
    return brokered(_interrupted, path, as_nobody=nobody, pol=policy({d: "allow"}), killable=True, timeout=30)[0]


@AS
def test_handled_signal_interrupts_blocked_connect_addfd(full, nobody):
    d, make = full
    res = run_in_child(in_docker, _docker_interrupted, make(), d, nobody, timeout=60).unwrap()
    assert res == ((-1, "EINTR"), True, (-1, "EINTR"), True, 2)


def _timeouts(path: str) -> tuple:
    first = socket.socket(socket.AF_UNIX)
    first.connect(path)
    tv = struct.pack("=qq", 1, 0)
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    start = time.monotonic()
    conn = _raw_connect(s.fileno(), path)
    conn_took = time.monotonic() - start
    a, b = socket.socketpair()  # b is never read
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    size = 8 << 20
    buf = ctypes.create_string_buffer(size)
    start = time.monotonic()
    n = _libc.send(a.fileno(), buf, size, 0)  # no retry: the partial count is the answer
    send_took = time.monotonic() - start
    return conn, conn_took, 0 < n < size, send_took


@AS
def test_send_timeout_honoured(full, nobody):
    d, make = full
    direct = run_in_child(_timeouts, make(), as_nobody=nobody).unwrap()
    assert direct[0] == (-1, "EAGAIN") and direct[2] is True
    conn, conn_took, partial, send_took = brokered(_timeouts, make(), as_nobody=nobody, pol=policy({d: "allow"}),
                                                   killable=True, timeout=60)[0]
    assert conn == (-1, "EAGAIN") and partial is True
    assert 0.9 < conn_took < 20 and 0.9 < send_took < 20, (conn_took, send_took)


CLI_PROBE = r"""
import ctypes, errno, signal, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGUSR1, lambda *_: print("usr1", flush=True))
first = socket.socket(socket.AF_UNIX)
first.connect(sys.argv[1])
addr = struct.pack("=H", socket.AF_UNIX) + sys.argv[1].encode() + b"\0"
print("ready", flush=True)
while True:
    s = socket.socket(socket.AF_UNIX)
    r = libc.connect(s.fileno(), addr, len(addr))
    print("connect", r, errno.errorcode.get(ctypes.get_errno(), "?"), flush=True)
"""


@pytest.mark.parametrize("no_ns", [False, True], ids=["namespaces", "no-namespaces"])
@AS
def test_sigterm_ends_the_run_after_a_handled_signal(full, nobody, no_ns, broker_mode):
    """The reported hang: a handled SIGUSR1 arrives while the command is in a brokered
    connect; then SIGTERM to lsandbox must still end the run (it waited for SIGKILL)."""
    d, make = full
    path = make()
    time.sleep(0.2)  # older than _provenance.SLACK_NS at the launch: not taken for planted
    cmd = [sys.executable, "-c", "import sys; from lsandbox.cli import main; sys.exit(main())",
           "run", "--allow-unix-socket", d, "--", PY, "-c", CLI_PROBE, path]
    if nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=cli_env(broker_mode, no_ns), cwd="/tmp")
    try:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":  # the run never started: its stderr says why
            p.wait(timeout=20)
            pytest.fail(f"the command did not start: {p.stderr.read() if p.stderr else ''}")
        time.sleep(0.5)  # now blocked in the second connect
        p.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("lsandbox did not end on SIGTERM: the command is stuck in a brokered connect")
        out = p.stdout.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 128 + signal.SIGTERM, (rc, out, p.stderr.read() if p.stderr else "")
    assert "usr1" in out and "connect -1 EINTR" in out, out
