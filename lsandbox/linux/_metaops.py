"""File metadata decided by path without namespaces: chmod, chown, utimes, extended attributes.

Landlock has no right for metadata, and without a mount namespace there is no read-only
view to make it fail, so these calls are trapped by filter B in that mode and served here
with the path-operation broker's machinery (``_pathops``): the object is resolved as the
target sees it and *pinned* (``O_PATH``; a final symlink followed by re-resolving its text,
unless the call says not to), the decision is the policy's on the pin's real path (writable
roots only), and the call is performed by the supervisor on the pinned inode through
``/proc/self/fd/N`` with the target's credentials and no capabilities. Never CONTINUE: the
kernel would re-resolve the path (or the descriptor number) a racing thread changed.

The descriptor forms (``fchmod``, ``fchown``, ``fsetxattr``...) are decided on the file the
target's descriptor refers to (reopened through ``/proc/<tid>/fd/N``); anonymous objects
(pipes, sockets, memfds: no path) keep their kernel semantics through the same reopen.
``setxattrat``/``removexattrat`` answer ENOSYS (their arguments are a struct this broker
does not parse; nothing uses them yet).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import threading
from collections.abc import Callable

import seccomp_bpf as sb

from ..policy._model import FsAccess
from ._pathops import _ARCH, AT_EMPTY_PATH, AT_FDCWD, MAX_SYMLINKS, NRS, Fail, PathOps, _nr, _sys

AT_SYMLINK_NOFOLLOW = 0x100
XATTR_SIZE_MAX, XATTR_NAME_MAX = 65536, 255
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_SYS_UTIMENSAT = sb.syscall_number("utimensat", _ARCH)

META = tuple(name for name in ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
                               "utime", "utimes", "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr",
                               "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat")
             if _nr(name) is not None)
META_CALLS = {_nr(name): name for name in META}
#: Every call the broker's hook sends here (creation, _pathops; metadata, this module).
ALL_NRS = NRS | frozenset(META_CALLS)
_ = _ARCH


class MetaOps(PathOps):
    """:class:`PathOps` plus the metadata calls (see the module docstring)."""

    def handle(self, n: sb.Notification, private_fs: bool, creds: object | None = None) -> None:
        name = META_CALLS.get(n.nr)
        if name is None:
            super().handle(n, private_fs, creds)
            return
        self._tl.creds = creds
        try:
            getattr(self, "_m_" + name)(n, private_fs)
        except Fail as f:
            self._answer(n.id, error=f.err)
        except OSError as e:
            self._answer(n.id, error=e.errno or errno.EACCES)
        except Exception:  # noqa: BLE001 - fail closed, keep serving
            self._answer(n.id, error=errno.EACCES)

    # -- pinning the object ----------------------------------------------------------
    def _object(self, n: sb.Notification, dfd: int, ptr: int, *, follow: bool, empty_ok: bool) -> int:
        """Pin the object the target names (O_PATH), as the target (call under _as_target)."""
        if ptr == 0:
            if not empty_ok:
                raise Fail(errno.EFAULT)
            path = b""
        else:
            path = self._string(n, ptr)
        if not path:
            if not empty_ok:
                raise Fail(errno.ENOENT)
            return self._fd_object(n, dfd)
        base: int | None = None
        try:
            for _ in range(MAX_SYMLINKS):
                if path.rstrip(b"/") == b"" or path.rstrip(b"/").endswith((b"/.", b"/..")) or \
                        path.rstrip(b"/") in (b".", b".."):
                    start = self._base(n.pid, dfd, path.startswith(b"/")) if base is None or path.startswith(b"/") \
                        else os.dup(base)
                    try:
                        from ._pathops import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2
                        rel = path.lstrip(b"/") or b"."
                        return openat2(start, rel, os.O_PATH | os.O_CLOEXEC,
                                       RESOLVE_NO_MAGICLINKS | (RESOLVE_IN_ROOT if path.startswith(b"/") else 0))
                    finally:
                        os.close(start)
                pfd, name, trailing = self._parent(n, dfd, path, base)
                try:
                    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                    if stat.S_ISLNK(os.fstat(fd).st_mode) and (follow or trailing):
                        text = os.readlink(name, dir_fd=pfd)
                        os.close(fd)
                        if base is not None:
                            os.close(base)
                        base, pfd = pfd, -1
                        path = os.fsencode(text)
                        continue
                    if trailing and not stat.S_ISDIR(os.fstat(fd).st_mode):
                        os.close(fd)
                        raise Fail(errno.ENOTDIR)
                    return fd
                finally:
                    if pfd >= 0:
                        os.close(pfd)
            raise Fail(errno.ELOOP)
        finally:
            if base is not None:
                os.close(base)

    def _fd_object(self, n: sb.Notification, fd: int) -> int:
        if fd == AT_FDCWD:
            return os.open(f"/proc/{n.pid}/cwd", os.O_PATH | os.O_CLOEXEC)
        try:
            return os.open(f"/proc/{n.pid}/fd/{fd & 0xFFFFFFFF}", os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            raise Fail(errno.EBADF) from None
        except OSError as e:
            raise Fail(errno.EACCES if e.errno == errno.ENXIO else (e.errno or errno.EACCES)) from None

    def _meta(self, n: sb.Notification, private_fs: bool, dfd: int, ptr: int, *, follow: bool, empty_ok: bool,
              act: Callable[[str], None]) -> None:
        restore = self._as_target(n, private_fs)
        try:
            pin = self._object(n, dfd, ptr, follow=follow, empty_ok=empty_ok)
            try:
                self._valid(n)
                real = os.readlink(f"/proc/self/fd/{pin}")
                if real.startswith("/") and not real.endswith(" (deleted)"):
                    if self._fs.access(real) is not FsAccess.WRITE:
                        self._count("refused")
                        self._event(n, real, "metadata outside the writable roots")
                        raise Fail(errno.EACCES)
                elif not real.startswith(("/memfd:", "pipe:", "socket:", "anon_inode:")) \
                        and not (real.endswith(" (deleted)") and os.fstat(pin).st_nlink == 0):
                    raise Fail(errno.EACCES)  # a deleted name of a file still linked elsewhere: refused
                act(f"/proc/self/fd/{pin}")
            finally:
                os.close(pin)
        finally:
            restore()
        self._done(n)

    # -- chmod -----------------------------------------------------------------------
    def _m_chmod(self, n: sb.Notification, p: bool) -> None:
        self._meta(n, p, AT_FDCWD, n.args[0], follow=True, empty_ok=False,
                   act=lambda f: os.chmod(f, n.args[1] & 0o7777))

    def _m_fchmod(self, n: sb.Notification, p: bool) -> None:
        self._meta(n, p, self._int(n.args[0]), 0, follow=True, empty_ok=True,
                   act=lambda f: os.chmod(f, n.args[1] & 0o7777))

    def _m_fchmodat(self, n: sb.Notification, p: bool) -> None:
        self._meta(n, p, self._int(n.args[0]), n.args[1], follow=True, empty_ok=False,
                   act=lambda f: os.chmod(f, n.args[2] & 0o7777))

    def _m_fchmodat2(self, n: sb.Notification, p: bool) -> None:
        flags = n.args[3] & 0xFFFFFFFF
        self._meta(n, p, self._int(n.args[0]), n.args[1], follow=not flags & AT_SYMLINK_NOFOLLOW,
                   empty_ok=bool(flags & AT_EMPTY_PATH), act=lambda f: os.chmod(f, n.args[2] & 0o7777))

    # -- chown -----------------------------------------------------------------------
    @staticmethod
    def _id(v: int) -> int:
        v &= 0xFFFFFFFF
        return -1 if v == 0xFFFFFFFF else v

    def _chown(self, n: sb.Notification, p: bool, dfd: int, ptr: int, uid: int, gid: int, *, follow: bool,
               empty_ok: bool) -> None:
        self._meta(n, p, dfd, ptr, follow=follow, empty_ok=empty_ok,
                   act=lambda f: os.chown(f, self._id(uid), self._id(gid)))

    def _m_chown(self, n: sb.Notification, p: bool) -> None:
        self._chown(n, p, AT_FDCWD, n.args[0], n.args[1], n.args[2], follow=True, empty_ok=False)

    def _m_lchown(self, n: sb.Notification, p: bool) -> None:
        self._chown(n, p, AT_FDCWD, n.args[0], n.args[1], n.args[2], follow=False, empty_ok=False)

    def _m_fchown(self, n: sb.Notification, p: bool) -> None:
        self._chown(n, p, self._int(n.args[0]), 0, n.args[1], n.args[2], follow=True, empty_ok=True)

    def _m_fchownat(self, n: sb.Notification, p: bool) -> None:
        flags = n.args[4] & 0xFFFFFFFF
        self._chown(n, p, self._int(n.args[0]), n.args[1], n.args[2], n.args[3],
                    follow=not flags & AT_SYMLINK_NOFOLLOW, empty_ok=bool(flags & AT_EMPTY_PATH))

    # -- times -----------------------------------------------------------------------
    def _times(self, n: sb.Notification, ptr: int, kind: str) -> bytes | None:
        """The target's times as two ``struct timespec`` (None: now)."""
        if ptr == 0:
            return None
        if kind == "timespec":
            return self._read_mem(n, ptr, 32)
        if kind == "timeval":
            a, au, m, mu = struct.unpack("=qqqq", self._read_mem(n, ptr, 32))
            if not (0 <= au < 1_000_000 and 0 <= mu < 1_000_000):
                raise Fail(errno.EINVAL)
            return struct.pack("=qqqq", a, au * 1000, m, mu * 1000)
        a, m = struct.unpack("=qq", self._read_mem(n, ptr, 16))  # utimbuf
        return struct.pack("=qqqq", a, 0, m, 0)

    def _read_mem(self, n: sb.Notification, ptr: int, size: int) -> bytes:
        from . import _broker_sys as sysc

        try:
            data = sysc.read_memory(n.pid, ptr, size)
        except OSError as e:
            raise Fail(errno.EFAULT) from e
        self._valid(n)
        return data

    @staticmethod
    def _utimens(path: str, ts: bytes | None) -> None:
        buf = ctypes.create_string_buffer(ts, 32) if ts is not None else None
        _sys("utimensat", _libc.syscall(ctypes.c_long(_SYS_UTIMENSAT), ctypes.c_int(AT_FDCWD),
                                        ctypes.c_char_p(path.encode()), buf, ctypes.c_int(0)))

    def _m_utime(self, n: sb.Notification, p: bool) -> None:
        ts = self._times(n, n.args[1], "utimbuf")
        self._meta(n, p, AT_FDCWD, n.args[0], follow=True, empty_ok=False, act=lambda f: self._utimens(f, ts))

    def _m_utimes(self, n: sb.Notification, p: bool) -> None:
        ts = self._times(n, n.args[1], "timeval")
        self._meta(n, p, AT_FDCWD, n.args[0], follow=True, empty_ok=False, act=lambda f: self._utimens(f, ts))

    def _m_futimesat(self, n: sb.Notification, p: bool) -> None:
        ts = self._times(n, n.args[2], "timeval")
        self._meta(n, p, self._int(n.args[0]), n.args[1], follow=True, empty_ok=n.args[1] == 0,
                   act=lambda f: self._utimens(f, ts))

    def _m_utimensat(self, n: sb.Notification, p: bool) -> None:
        flags = n.args[3] & 0xFFFFFFFF
        ts = self._times(n, n.args[2], "timespec")
        self._meta(n, p, self._int(n.args[0]), n.args[1], follow=not flags & AT_SYMLINK_NOFOLLOW,
                   empty_ok=n.args[1] == 0 or bool(flags & AT_EMPTY_PATH), act=lambda f: self._utimens(f, ts))

    # -- extended attributes ---------------------------------------------------------
    def _xname(self, n: sb.Notification, ptr: int) -> bytes:
        name = self._string(n, ptr)
        if not name or len(name) > XATTR_NAME_MAX:
            raise Fail(errno.ERANGE)
        return name

    def _set(self, n: sb.Notification, p: bool, dfd: int, ptr: int, nptr: int, vptr: int, size: int, flags: int,
             *, follow: bool, empty_ok: bool) -> None:
        name = self._xname(n, nptr)
        size &= 0xFFFFFFFFFFFFFFFF
        if size > XATTR_SIZE_MAX:
            raise Fail(errno.E2BIG)
        value = self._read_mem(n, vptr, size) if size else b""
        self._meta(n, p, dfd, ptr, follow=follow, empty_ok=empty_ok,
                   act=lambda f: os.setxattr(f, name, value, flags & 0xFFFFFFFF))

    def _m_setxattr(self, n: sb.Notification, p: bool) -> None:
        self._set(n, p, AT_FDCWD, n.args[0], n.args[1], n.args[2], n.args[3], n.args[4], follow=True, empty_ok=False)

    def _m_lsetxattr(self, n: sb.Notification, p: bool) -> None:
        self._set(n, p, AT_FDCWD, n.args[0], n.args[1], n.args[2], n.args[3], n.args[4], follow=False, empty_ok=False)

    def _m_fsetxattr(self, n: sb.Notification, p: bool) -> None:
        self._set(n, p, self._int(n.args[0]), 0, n.args[1], n.args[2], n.args[3], n.args[4], follow=True,
                  empty_ok=True)

    def _remove(self, n: sb.Notification, p: bool, dfd: int, ptr: int, nptr: int, *, follow: bool,
                empty_ok: bool) -> None:
        name = self._xname(n, nptr)
        self._meta(n, p, dfd, ptr, follow=follow, empty_ok=empty_ok, act=lambda f: os.removexattr(f, name))

    def _m_removexattr(self, n: sb.Notification, p: bool) -> None:
        self._remove(n, p, AT_FDCWD, n.args[0], n.args[1], follow=True, empty_ok=False)

    def _m_lremovexattr(self, n: sb.Notification, p: bool) -> None:
        self._remove(n, p, AT_FDCWD, n.args[0], n.args[1], follow=False, empty_ok=False)

    def _m_fremovexattr(self, n: sb.Notification, p: bool) -> None:
        self._remove(n, p, self._int(n.args[0]), 0, n.args[1], follow=True, empty_ok=True)

    def _m_setxattrat(self, n: sb.Notification, p: bool) -> None:
        raise Fail(errno.ENOSYS)

    def _m_removexattrat(self, n: sb.Notification, p: bool) -> None:
        raise Fail(errno.ENOSYS)


_ATTACH = threading.Lock()


def attached(broker: object) -> MetaOps:
    """The :class:`MetaOps` of an AF_UNIX ``Broker`` (made on its first path notification:
    only sandboxes without namespaces ever send one). The Landlock
    rules are those of the no-namespace plan for the same policy, which is what the command
    runs under (planned up front, or the child's fallback when ``unshare`` was refused)."""
    with _ATTACH:
        ops = getattr(broker, "_path_ops_state", None)
        if ops is None:
            from ._features import Features, features
            from ._plan import build_plan

            f = features()
            b = broker  # the Broker's own fields, read here to keep its hook one line
            plan = build_plan(b._policy, b._socket_dir, Features(f.landlock_abi, True, False, f.root),  # type: ignore[attr-defined]
                              filter_a=False)
            ops = MetaOps(b._fd, b._policy, list(plan.landlock_rules), plan.abi, b._on_event)  # type: ignore[attr-defined]
            broker._path_ops_state = ops  # type: ignore[attr-defined]
        return ops
