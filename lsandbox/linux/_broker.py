"""The AF_UNIX broker: decides and *performs* every ``connect``/``bind`` of the sandbox.

For each notification (seccomp user notification, listener from filter B):

1. read ``sockaddr`` from the target's memory (``process_vm_readv``, ``addrlen`` bytes:
   ``sun_path`` may lack its NUL), then ``NOTIF_ID_VALID`` (the pid may have been reused);
2. the call is performed only when the target's credentials equal the supervisor's
   (``/proc/<tid>`` ownership): the supervisor never connects or binds where the target
   itself could not (confused deputy), e.g. after a root-started workload dropped to nobody;
3. AF_UNIX pathname: open the path with ``openat2(RESOLVE_NO_MAGICLINKS)``, relative to the
   target thread's cwd (``/proc/<tgid>/task/<tid>/cwd``); magic links (``/proc/self/fd/N``,
   ``/dev/fd/N``, ``/proc/*/root``) are refused. The socket inode is pinned (``O_PATH``), its
   canonical path read back from the pin, and the policy decides on that path: longest
   match, the sandbox-local socket directory always allowed. A socket with more than one
   hard link is refused: it may be a planted link to a socket outside the allowlist
   (``ln /run/docker.sock /tmp/.X11-unix/X9``); real sockets never have extra links;
4. take the target's socket with ``pidfd_getfd`` (thread pidfd, PIDFD_THREAD), check the
   notification is still valid, and perform the call from the supervisor: ``connect`` to
   ``/proc/self/fd/<pin>`` (the checked inode, whatever happens to the path meanwhile, and
   short even for paths over 108 bytes), ``bind`` to ``/proc/self/fd/<dirpin>/<name>``;
5. answer with the call's result. Denials answer EACCES and emit an event.

Never CONTINUE: the target could change its memory or swap the fd between our check and
the kernel re-running the call. Abstract AF_UNIX names are refused unless
``dangerously_allow_all_unix_sockets`` (Landlock ABI 6 scopes them too). Other families
(AF_INET with the network on) are performed the same way, unchecked by policy.

Blocking connects (a listener with a full backlog) run in a small worker pool so they never
stall other notifications; non-blocking sockets are handled inline.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import seccomp_bpf as sb

from ..policy import Policy, SocketAccess, is_within
from . import _sys

AF_UNIX = socket.AF_UNIX
SYS_CONNECT = sb.syscall_number("connect")
SYS_BIND = sb.syscall_number("bind")
_UNIX_PREFIX = struct.pack("=H", AF_UNIX)
OP_NAMES = {SYS_CONNECT: "connect", SYS_BIND: "bind"}


class Broker:
    """Serves one listener fd until every target is gone or :meth:`close` is called."""

    def __init__(
        self,
        listener_fd: int,
        policy: Policy,
        socket_dir: str,
        on_event: Callable[[dict], None] | None = None,
    ) -> None:
        self.fd = listener_fd
        self.policy = policy
        self.socket_dir = os.path.realpath(socket_dir)
        self.on_event = on_event or (lambda e: None)
        self._uid, self._gid = os.geteuid(), os.getegid()
        self._reader = _sys.RemoteReader()
        self._pool: ThreadPoolExecutor | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="lsandbox-broker", daemon=True)
        try:
            sb.set_listener_flags(self.fd, sb.USER_NOTIF_FD_SYNC_WAKE_UP)
        except OSError:
            pass  # before Linux 6.6: only a little slower
        self.served = 0
        self.denied = 0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        if self._pool:
            self._pool.shutdown(wait=True)
        for fd in (self._stop_r, self._stop_w, self.fd):
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------------ loop

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            for fd, ev in poller.poll():
                if fd == self._stop_r:
                    return
                if ev & select.POLLIN:
                    try:
                        n = sb.notif_recv(self.fd)
                    except OSError as e:
                        if e.errno in (errno.ENOENT, errno.EINTR):
                            continue  # the target was interrupted before we read it
                        return
                    self._handle(n)
                elif ev & (select.POLLHUP | select.POLLERR):
                    return  # every target is gone

    def _answer(self, nid: int, err: int) -> None:
        try:
            sb.notif_send(self.fd, nid, val=0, error=err)
        except OSError as e:
            if e.errno != errno.ENOENT:  # ENOENT: the target died or was signalled meanwhile
                raise

    def _deny(self, n: sb.Notification, op: str, path: str, rule: str, err: int = errno.EACCES) -> None:
        self.denied += 1
        self._answer(n.id, err)
        self.on_event({"kind": "unix_socket", "op": op, "path": path, "pid": n.pid,
                       "process": _comm(n.pid), "verdict": "deny", "rule": rule})

    def _handle(self, n: sb.Notification) -> None:
        self.served += 1
        op = OP_NAMES.get(n.nr)
        try:
            if op is None:
                self._answer(n.id, errno.ENOSYS)
                return
            addrlen = n.args[2] & 0xFFFFFFFF
            if addrlen > 4096 or n.args[1] == 0:
                self._answer(n.id, errno.EINVAL if n.args[1] else errno.EFAULT)
                return
            try:
                addr = self._reader.read(n.pid, n.args[1], addrlen)
            except OSError:
                self._answer(n.id, errno.EFAULT)
                return
            if not sb.notif_id_valid(self.fd, n.id):
                return
            try:
                st = os.stat(f"/proc/{n.pid}")
            except FileNotFoundError:
                return
            if (st.st_uid, st.st_gid) != (self._uid, self._gid):
                self._deny(n, op, "", "target credentials differ from the supervisor's")
                return
            if len(addr) >= 2 and addr[:2] == _UNIX_PREFIX:
                self._unix(n, op, addr)
            else:
                self._perform(n, op, addr, pin=None, name=None)
        except Exception as e:  # noqa: BLE001 - never leave a target blocked
            self._answer(n.id, errno.EACCES)
            self.on_event({"kind": "broker_error", "error": repr(e), "pid": n.pid})

    # ------------------------------------------------------------------ AF_UNIX

    def _unix(self, n: sb.Notification, op: str, addr: bytes) -> None:
        raw = addr[2:]
        if not raw:  # unnamed: autobind (bind) or EINVAL (connect); nothing to check
            self._perform(n, op, addr, pin=None, name=None)
            return
        if raw[0] == 0:
            if self.policy.network.dangerously_allow_all_unix_sockets:
                self._perform(n, op, addr, pin=None, name=None)
            else:
                self._deny(n, op, "@" + raw[1:].split(b"\0")[0].decode(errors="replace"),
                           "abstract sockets are not allowed")
            return
        path = raw.split(b"\0", 1)[0].decode(errors="surrogateescape")
        tid = n.pid
        base = f"/proc/{tid}/cwd"
        if op == "connect":
            try:
                pin = _resolve(base, path, os.O_PATH | os.O_CLOEXEC)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    self._deny(n, op, path, "magic links are not followed")
                else:
                    self._answer(n.id, e.errno or errno.ENOENT)
                return
            try:
                canonical = os.readlink(f"/proc/self/fd/{pin}")
                st = os.fstat(pin)
                if not stat.S_ISSOCK(st.st_mode):
                    self._answer(n.id, errno.ECONNREFUSED)
                    return
                verdict, rule = self._decide(canonical)
                if verdict is not SocketAccess.ALLOW:
                    self._deny(n, op, canonical, rule)
                    return
                if st.st_nlink > 1:
                    self._deny(n, op, canonical, "socket has several hard links (planted?)")
                    return
                self._perform(n, op, _sun(f"/proc/self/fd/{pin}"), pin=pin, name=None)
                pin = -1  # ownership passed on
            finally:
                if pin >= 0:
                    os.close(pin)
            return
        # bind: the socket file does not exist yet; pin its directory
        parent, name = os.path.split(path)
        if not name or name in (".", ".."):
            self._answer(n.id, errno.EINVAL)
            return
        try:
            dpin = _resolve(base, parent or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ELOOP:
                self._deny(n, op, path, "magic links are not followed")
            else:
                self._answer(n.id, e.errno or errno.ENOENT)
            return
        try:
            canonical = os.path.join(os.readlink(f"/proc/self/fd/{dpin}"), name)
            verdict, rule = self._decide(canonical)
            writable = is_within(canonical, self.socket_dir) or (
                self.policy.filesystem.access(os.path.dirname(canonical)).value == "write")
            if verdict is not SocketAccess.ALLOW:
                self._deny(n, op, canonical, rule)
                return
            if not writable:
                self._deny(n, op, canonical, "directory is not writable by the policy")
                return
            self._perform(n, op, _sun(f"/proc/self/fd/{dpin}/{name}"), pin=dpin, name=name)
            dpin = -1
        finally:
            if dpin >= 0:
                os.close(dpin)

    def _decide(self, canonical: str) -> tuple[SocketAccess, str]:
        if is_within(canonical, self.socket_dir):
            return SocketAccess.ALLOW, "sandbox-local socket directory"
        net = self.policy.network
        rule = net.rule_for(canonical)
        if rule is not None:
            return rule.access, f'unix_sockets "{rule.path}" = "{rule.access.value}"'
        if net.dangerously_allow_all_unix_sockets:
            return SocketAccess.ALLOW, "dangerously_allow_all_unix_sockets"
        return SocketAccess.NONE, "no unix_sockets rule allows it"

    # ------------------------------------------------------------------ performing

    def _perform(self, n: sb.Notification, op: str, addr: bytes, pin: int | None, name: str | None) -> None:
        """Take the target's socket and do the call ourselves; answer with its result."""
        try:
            try:
                pidfd = os.pidfd_open(n.pid, _sys.PIDFD_THREAD)
            except OSError:
                self._answer(n.id, errno.ESRCH)
                return
            try:
                sock = _sys.pidfd_getfd(pidfd, n.args[0] & 0xFFFFFFFF)
            except OSError as e:
                self._answer(n.id, errno.EBADF if e.errno == errno.EBADF else errno.EACCES)
                return
            finally:
                os.close(pidfd)
            if not sb.notif_id_valid(self.fd, n.id):
                os.close(sock)
                return
            try:
                family = _sock_family(sock)
            except OSError:
                os.close(sock)
                self._answer(n.id, errno.ENOTSOCK)
                return
            if (addr[:2] == _UNIX_PREFIX) != (family == AF_UNIX):
                # the fd number now holds a socket of another family than the address: the
                # kernel would refuse with EINVAL; we do the same without calling it
                os.close(sock)
                self._answer(n.id, errno.EINVAL)
                return
            if op == "connect" and not (_flags(sock) & os.O_NONBLOCK):
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lsandbox-connect")
                self._pool.submit(self._finish, n.id, op, sock, addr, pin)
                pin = None
                return
            self._finish(n.id, op, sock, addr, pin)
            pin = None
        finally:
            if pin is not None:
                os.close(pin)

    def _finish(self, nid: int, op: str, sock: int, addr: bytes, pin: int | None) -> None:
        try:
            err = _sys.sock_call(op, sock, addr)
        finally:
            os.close(sock)
            if pin is not None:
                os.close(pin)
        self._answer(nid, err)


def _sun(path: str) -> bytes:
    return _UNIX_PREFIX + path.encode("utf-8", "surrogateescape") + b"\0"


def _resolve(cwd_link: str, path: str, flags: int) -> int:
    """Open ``path`` as the target would (relative to its cwd), refusing magic links.

    Absolute paths are resolved from our root, which is the target's: it cannot chroot
    (filter A) and its mount namespace only adds read-only bind mounts of the same trees."""
    if path.startswith("/"):
        return _sys.openat2(-100, path, flags, _sys.RESOLVE_NO_MAGICLINKS)  # AT_FDCWD
    cwd = os.open(cwd_link, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _sys.openat2(cwd, path, flags, _sys.RESOLVE_NO_MAGICLINKS)
    finally:
        os.close(cwd)


def _sock_family(fd: int) -> int:
    s = socket.socket(fileno=fd)
    try:
        return s.family
    finally:
        s.detach()


def _flags(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"
