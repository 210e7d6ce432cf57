"""Shared pieces of the broker's identity, stall and signal tests: both brokers as an autouse
fixture's parameter, Docker's default seccomp profile around the whole broker (pidfd_getfd
refused: the NOTIF_ADDFD path), servers that record what the kernel tells them about their
peer, and a way for a root target to hold no capability (as the launcher's command does)."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest

SO_PEERGROUPS = 59
_libc = ctypes.CDLL(None, use_errno=True)


def both_brokers(request, monkeypatch) -> str:
    """The body of an autouse fixture parametrized with ["fastpath", "python"]."""
    from lsandbox.linux import _fastpath
    from lsandbox.linux._features import pidfd_thread_available

    if request.param == "python":
        monkeypatch.setattr(_fastpath, "lib", None)
    elif _fastpath.lib is None:
        pytest.skip(f"broker fast path: {_fastpath.why_not}")
    elif not pidfd_thread_available():
        # The broker then serves every call in Python: the variant would repeat "python"
        pytest.skip("broker fast path unused: no pidfd_open(PIDFD_THREAD) (Linux 6.9)")
    return request.param


def cli_env(broker_mode: str, no_namespaces: bool) -> dict[str, str]:
    """Environment for an ``lsandbox run`` subprocess: the same broker as the fixture's."""
    from lsandbox.linux._fastpath import ENV_OFF

    env = dict(os.environ)
    if broker_mode == "python":
        env[ENV_OFF] = "1"
    if no_namespaces:
        env["LSANDBOX_NO_NAMESPACES"] = "1"
    return env


def in_docker(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` under Docker's default seccomp profile (this process and everything it
    forks, as in a container): pidfd_getfd is refused, so the broker uses NOTIF_ADDFD."""
    import seccomp_bpf as sb
    from tests._docker_profile import docker_filter

    prog = docker_filter()
    sb.set_no_new_privs()
    sb.install_filter(prog, flags=sb.FLAG_TSYNC)
    return fn(*args)


def no_caps() -> None:
    """Give up every capability of this (target) thread: root without capabilities, as the
    launcher's command is; and dumpable, as a command fresh from execve is (a forked test
    child inherits the pytest process's state, which a broker thread's identity switch
    made non-dumpable)."""
    import prctl

    prctl.set_dumpable(True)
    hdr = struct.pack("=Ii", 0x20080522, 0)
    data = bytes(24)
    nr = 126 if os.uname().machine == "x86_64" else 91  # capset
    if _libc.syscall(nr, hdr, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


class PeerServer:
    """A stream server recording each client's SO_PEERCRED (pid, uid, gid) and groups, and a
    datagram socket with SO_PASSCRED recording each datagram's SCM_CREDENTIALS."""

    def __init__(self, d: str) -> None:
        self.path, self.dpath = f"{d}/peer.sock", f"{d}/peer.dgram"
        self.peers: list[tuple[int, int, int, tuple[int, ...]]] = []
        self.creds: list[tuple[int, int, int]] = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dg.bind(self.dpath)
        os.chmod(self.dpath, 0o777)
        self.dg.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.dg.settimeout(0.1)
        self._stop = False
        self._t = [threading.Thread(target=self._accept, daemon=True),
                   threading.Thread(target=self._recv, daemon=True)]
        for t in self._t:
            t.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            pid, uid, gid = struct.unpack("=iII", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            raw = c.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 256)
            groups = tuple(sorted(struct.unpack(f"={len(raw) // 4}I", raw)))
            self.peers.append((pid, uid, gid, groups))
            c.close()

    def _recv(self) -> None:
        while not self._stop:
            try:
                _, anc, _, _ = self.dg.recvmsg(64, socket.CMSG_SPACE(12))
            except (TimeoutError, OSError):
                continue
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    self.creds.append(struct.unpack("=iII", data[:12]))

    def close(self) -> None:
        self._stop = True
        for t in self._t:
            t.join()
        self.sock.close()
        self.dg.close()
