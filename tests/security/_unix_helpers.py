"""Fork harness for broker tests: the child installs filter B with a new listener, hands the
listener to the parent over SCM_RIGHTS (keeping no copy) and runs a workload; the parent
serves it with a real :class:`Broker`. Plus socket servers that count what reaches them."""

from __future__ import annotations

import atexit
import os
import pickle
import select
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

import seccomp_bpf as sb
from lsandbox.linux._broker import Broker
from lsandbox.linux._features import wait_killable_available
from lsandbox.linux._provenance import Provenance
from lsandbox.linux._unix_filter import build_notify_filter, install_and_hand_over
from lsandbox.policy._model import (
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
)
from tests._util import TIME_FACTOR, drop_to_nobody


def policy(sockets: dict[str, str] | None = None, *, writable: tuple[str, ...] = (),
           allow_all: bool = False, network: bool = False) -> Policy:
    rules = tuple(UnixSocketRule(p, SocketAccess(a)) for p, a in (sockets or {}).items())
    fs = FilesystemPolicy(tuple(FsRule(p, FsAccess.WRITE) for p in writable))
    return Policy(fs, NetworkPolicy(network, rules, allow_all))


_made: list[tuple[int, str]] = []  # (the pid that made it, its path)


@atexit.register
def _remove_made() -> None:
    """The shared dirs this process made, removed when it exits (a test's forked children
    leave through ``os._exit`` and remove nothing)."""
    for pid, d in _made:
        if pid == os.getpid():
            shutil.rmtree(d, ignore_errors=True)


def shared_dir() -> str:
    """A canonical temp dir that nobody can use too (removed at exit)."""
    d = os.path.realpath(tempfile.mkdtemp(prefix="lsb-unix-", dir="/tmp"))
    os.chmod(d, 0o777)
    _made.append((os.getpid(), d))
    return d


def brokered(fn: Callable[..., Any], *args: Any, pol: Policy, socket_dir: str = "",
             as_nobody: bool = False, timeout: float = 60.0,
             external: list[str] | None = None, stats: dict | None = None,
             killable: bool = False, broker_out: list | None = None) -> tuple[Any, list[dict]]:
    """Run ``fn(*args)`` under filter B in a forked child; returns (its value, events).
    ``external``: serve with this command (given the listener fd as its last argument)
    instead of :class:`Broker` (the benchmark's C floor). ``stats`` receives the broker's
    counts of notifications served by the C fast path and by Python. ``killable``: filter B
    with WAIT_KILLABLE_RECV where the kernel has it (Linux 5.19), as the launcher installs it. ``broker_out`` receives the
    :class:`Broker` (to read its counters after the run)."""
    timeout *= TIME_FACTOR
    if as_nobody and os.geteuid() != 0:
        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    provenance = Provenance(pol, os.path.realpath(socket_dir) if socket_dir else "", time.time_ns())
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            parent.close()
            os.close(r)
            if as_nobody:
                drop_to_nobody()
            sb.set_no_new_privs()
            install_and_hand_over(build_notify_filter(sb.native_arch(), datagrams=True), child,
                                  flags=sb.FLAG_WAIT_KILLABLE_RECV if killable and wait_killable_available() else 0)
            child.close()
            payload: tuple[str, Any] = ("value", fn(*args))
        except BaseException as e:  # noqa: BLE001
            payload, code = ("error", f"{e!r}\n{traceback.format_exc()}"), 1
        with os.fdopen(w, "wb") as f:
            f.write(pickle.dumps(payload))
        os._exit(code)
    child.close()
    os.close(w)
    events: list[dict] = []
    broker = None
    proc = None
    try:
        parent.settimeout(timeout)
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
        assert len(fds) == 1, "child sent no listener"
        if external:
            import subprocess

            proc = subprocess.Popen([*external, str(fds[0])], pass_fds=fds)
            os.close(fds[0])
        else:
            broker = Broker(fds[0], pol, socket_dir, events.append, provenance=provenance)
            broker.start()
            if broker_out is not None:
                broker_out.append(broker)
        data = _read_all(r, timeout, pid)
    finally:
        parent.close()
        _, status = os.waitpid(pid, 0)
        if broker is not None:
            broker.close()
            if stats is not None:
                stats.update(broker.stats)
        if proc is not None:
            proc.kill()
            proc.wait()
    kind, value = pickle.loads(data) if data else ("error", f"child died, status {status}")
    assert kind == "value", value
    return value, events


def _read_all(fd: int, timeout: float, pid: int) -> bytes:
    import select

    chunks = []
    deadline = time.monotonic() + timeout
    with os.fdopen(fd, "rb") as f:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, 9)
                raise TimeoutError("brokered child timed out")
            if not select.select([f], [], [], left)[0]:
                continue
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


class Server:
    """A listening (stream) or bound (datagram) AF_UNIX socket served by a thread that
    counts accepted connections / received datagrams."""

    def __init__(self, path: str, kind: int = socket.SOCK_STREAM) -> None:
        self.path = path
        self.count = 0
        self.sock = socket.socket(socket.AF_UNIX, kind)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        if kind == socket.SOCK_STREAM:
            self.sock.listen(4096)
        self.sock.settimeout(0.1)
        self._stop = False
        self._kind = kind
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                if self._kind == socket.SOCK_STREAM:
                    c, _ = self.sock.accept()
                    c.close()
                else:
                    self.sock.recv(65536)
                self.count += 1
            except (TimeoutError, OSError):
                continue

    def settle(self) -> int:
        """The count once nothing is left to take: no connection or datagram waiting on the
        socket and the count unchanged over one more look. A fixed pause was not enough under
        emulation (``make test-kernels``): connections still queued from a previous phase were
        counted in the next one after ``reset``."""
        deadline = time.monotonic() + 10 * TIME_FACTOR
        last = -1
        while True:
            time.sleep(0.05)
            waiting = select.select([self.sock], [], [], 0)[0]
            if (not waiting and self.count == last) or time.monotonic() > deadline:
                return self.count
            last = self.count

    def reset(self) -> None:
        self.settle()
        self.count = 0

    def close(self) -> None:
        self._stop = True
        self._t.join()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def try_connect(path: str | bytes, kind: int = socket.SOCK_STREAM) -> str:
    """Connect a fresh socket; 'ok' or the errno name."""
    s = socket.socket(socket.AF_UNIX, kind)
    try:
        s.connect(path)
        return "ok"
    except OSError as e:
        import errno

        return errno.errorcode.get(e.errno or 0, str(e))
    finally:
        s.close()
