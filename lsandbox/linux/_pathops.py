"""The path-operation broker: creation where Landlock had to split a writable root.

Without namespaces, a read-only carve-out (``.git``) inside a writable root makes Landlock
grant the root only its existing children (``_split``): ``echo x > new.py`` or ``mkdir
build`` at the repository root would be refused. Filter B then sends every creating call
here (``open``/``openat``/``creat`` only with O_CREAT, ``mkdir``, ``mknod``, ``symlink``,
``link``, ``rename``, ``unlink``/``rmdir``, and their ``*at`` forms). For each:

1. The path is read *once* from the target's memory; the call is never CONTINUEd after a
   decision that grants something (the kernel would re-read memory a racing thread changed).
2. The parent directory is resolved as the target sees it (``/proc/<tid>/root`` for an
   absolute path, with ``RESOLVE_IN_ROOT``; ``/proc/<tid>/cwd`` or the target's ``dirfd``
   for a relative one) by one ``openat2(O_PATH|O_DIRECTORY, RESOLVE_NO_MAGICLINKS)``: the
   kernel walks it atomically per component and the result is *pinned*. A final symlink is
   read and resolved again the same way (at most 40 times), never followed by the kernel on
   the supervisor's side.
3. Where Landlock already grants creation (the parent is not split: most directories), the
   call is answered CONTINUE: the kernel performs it under Landlock, which then decides
   whatever a racing thread did meanwhile. The same where the policy refuses: Landlock
   refuses too (its rights are never wider than the policy's), with the kernel's own errno.
4. Otherwise the decision is the policy's, on the pinned parent's real path: the parent and
   the new name writable, no read-only or denied rule at or below the name (a carve-out
   such as ``.git`` is never created, removed or renamed, even when it did not exist at
   launch). The supervisor then performs the call *relative to the pinned descriptor* with
   the target's filesystem credentials and umask and without capabilities (raw per-thread
   ``setfsuid``/``setgroups``/``capset`` and the thread's private ``umask``, or the mode
   settled after the fact where the runtime refuses ``unshare``: ``_shared_fs``), and answers
   with the result; a created file reaches the target as its own descriptor through
   ``SECCOMP_IOCTL_NOTIF_ADDFD`` with ``SECCOMP_ADDFD_FLAG_SEND`` (O_CLOEXEC as asked).

Costs: every O_CREAT open, mkdir, rename, unlink... of the command pays a notification round
trip and a resolution (tens of microseconds); opens without O_CREAT never notify. Limits:
a file created here has no Landlock rule of its own, so the command reaches it later by path
only through this broker (O_CREAT opens, renames, unlinks: all brokered) — an open *without*
O_CREAT for writing (``open(p, "r+")``) or ``truncate(p)`` of such a file is refused by
Landlock (EACCES). Calls are served inline by the broker thread that receives them (no
hand-over: nothing here blocks on another process; FIFOs are opened O_NONBLOCK and left to
the kernel), so they are serialized with each other.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
import threading
from collections.abc import Callable

import landlock as ll
import seccomp_bpf as sb

from ..policy._model import FsAccess, Policy
from ..policy._paths import is_within
from . import _broker_sys as sysc
from ._features import addfd_available
from ._shared_fs import settle, settle_at

_ARCH = sb.native_arch()


def _nr(name: str) -> int | None:
    try:
        return sb.syscall_number(name, _ARCH)
    except KeyError:
        return None


_CALLS = {nr: name for name in ("open", "creat", "openat", "mkdir", "mkdirat", "mknod", "mknodat", "symlink",
                                "symlinkat", "link", "linkat", "rename", "renameat", "renameat2", "unlink",
                                "unlinkat", "rmdir")
          if (nr := _nr(name)) is not None}
NRS = frozenset(_CALLS)

AT_FDCWD = -100
AT_SYMLINK_FOLLOW, AT_REMOVEDIR, AT_EMPTY_PATH = 0x400, 0x200, 0x1000
RENAME_EXCHANGE, RENAME_WHITEOUT = 2, 4
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
PATH_MAX, NAME_MAX, MAX_SYMLINKS = 4096, 255, 40
_PIN = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_OPEN_HOW = struct.Struct("=QQQ")
_SYS_OPENAT2 = sb.syscall_number("openat2", _ARCH)
_SYS_RENAMEAT2 = sb.syscall_number("renameat2", _ARCH)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Continue(Exception):
    """Leave the call to the kernel (Landlock decides)."""


class Fail(Exception):
    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.err = err


def _sys(what: str, r: int) -> int:
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return r


def openat2(dirfd: int, path: bytes, flags: int, resolve: int) -> int:
    how = ctypes.create_string_buffer(_OPEN_HOW.pack(flags, 0, resolve), _OPEN_HOW.size)
    return _sys("openat2", _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                                         how, ctypes.c_size_t(_OPEN_HOW.size)))


def renameat2(sfd: int, sname: bytes, dfd: int, dname: bytes, flags: int) -> None:
    _sys("renameat2", _libc.syscall(ctypes.c_long(_SYS_RENAMEAT2), ctypes.c_int(sfd), ctypes.c_char_p(sname),
                                    ctypes.c_int(dfd), ctypes.c_char_p(dname), ctypes.c_uint(flags)))


class _Target:
    """The target thread's filesystem credentials and umask."""

    def __init__(self, tid: int) -> None:
        self.fsuid = self.fsgid = -1
        self.groups: tuple[int, ...] = ()
        self.umask = 0o022
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                key, _, val = line.partition(b":")
                if key == b"Uid":
                    self.fsuid = int(val.split()[3])
                elif key == b"Gid":
                    self.fsgid = int(val.split()[3])
                elif key == b"Groups":
                    self.groups = tuple(int(g) for g in val.split())
                elif key == b"Umask":
                    self.umask = int(val.strip(), 8)
        if self.fsuid < 0 or self.fsgid < 0:
            raise Fail(errno.ESRCH)


def _rights_tree(rules: list[tuple[str, int]]) -> dict[str, tuple[int, tuple[int, int] | None]]:
    out: dict[str, tuple[int, tuple[int, int] | None]] = {}
    for path, rights in rules:
        try:
            st = os.stat(path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        old = out.get(path, (0, ident))[0]
        out[path] = (old | int(rights), ident)
    return out


class PathOps:
    """Serve the path-operation notifications of one sandbox (see the module docstring).

    ``landlock_rules``: the Landlock rules the command runs under (to know where Landlock
    grants creation itself); ``on_event``: one dict per refusal the broker decides."""

    def __init__(self, listener: int, policy: Policy, landlock_rules: list[tuple[str, int]], abi: int,
                 on_event: Callable[[dict], None]) -> None:
        self._fd = listener
        self._fs = policy.filesystem
        self._guarded = tuple(r.path for r in policy.filesystem.rules if r.access is not FsAccess.WRITE)
        self._tree = _rights_tree(landlock_rules)
        self._need = int(ll.AccessFs.MAKE_REG | ll.AccessFs.MAKE_DIR | ll.AccessFs.REMOVE_FILE
                         | ll.AccessFs.REMOVE_DIR | ll.AccessFs.WRITE_FILE) & int(ll.AccessFs.from_all(abi))
        self._on_event = on_event
        self._lock = threading.Lock()
        self._tl = threading.local()
        self.stats = {"continued": 0, "performed": 0, "refused": 0}

    # -- entry -----------------------------------------------------------------------
    def handle(self, n: sb.Notification, private_fs: bool, creds: object | None = None) -> None:
        """``creds``: the broker thread's ``_identity.ThreadCreds``, which already holds the
        command's identity (the broker adopted it for this notification)."""
        name = _CALLS[n.nr]
        self._tl.creds = creds
        try:
            getattr(self, "_" + name)(n, private_fs)
            return  # answered by the operation
        except Continue:
            self._count("continued")
            self._answer(n.id, flags=sb.NOTIF_FLAG_CONTINUE)
        except Fail as f:
            self._answer(n.id, error=f.err)
        except OSError as e:
            self._answer(n.id, error=e.errno or errno.EACCES)
        except Exception:  # noqa: BLE001 - fail closed, keep serving
            self._answer(n.id, error=errno.EACCES)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _answer(self, nid: int, *, val: int = 0, error: int = 0, flags: int = 0) -> None:
        try:
            sb.notif_send(self._fd, nid, val=val, error=error, flags=flags)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise

    def _done(self, n: sb.Notification, val: int = 0) -> None:
        self._count("performed")
        self._answer(n.id, val=val)

    # -- reading and resolving -------------------------------------------------------
    def _valid(self, n: sb.Notification) -> None:
        if not sb.notif_id_valid(self._fd, n.id):
            raise Fail(errno.ENOENT)

    def _string(self, n: sb.Notification, addr: int) -> bytes:
        """A NUL-terminated string of the target (read page by page: never across an
        unmapped page the kernel's own copy would not touch either)."""
        if addr == 0:
            raise Fail(errno.EFAULT)
        out = b""
        while len(out) < PATH_MAX:
            chunk = min(4096 - (addr % 4096), PATH_MAX - len(out))
            try:
                data = sysc.read_memory(n.pid, addr, chunk)
            except OSError as e:
                raise Fail(errno.EFAULT) from e
            end = data.find(b"\0")
            if end >= 0:
                out += data[:end]
                self._valid(n)
                return out
            out += data
            addr += chunk
        raise Fail(errno.ENAMETOOLONG)

    @staticmethod
    def _base(tid: int, dfd: int, absolute: bool) -> int:
        if absolute:
            return os.open(f"/proc/{tid}/root", _PIN)
        if dfd == AT_FDCWD:
            return os.open(f"/proc/{tid}/cwd", _PIN)
        try:
            return os.open(f"/proc/{tid}/fd/{dfd}", _PIN)
        except FileNotFoundError:
            raise Fail(errno.EBADF) from None

    def _parent(self, n: sb.Notification, dfd: int, path: bytes, base: int | None = None) -> tuple[int, bytes, bool]:
        """Pin the parent of ``path`` (relative to the target's ``dfd``, or to the descriptor
        ``base`` when following a symlink): (pinned fd, last component, trailing slash)."""
        if not path:
            raise Fail(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise Fail(errno.ENAMETOOLONG)
        absolute = path.startswith(b"/")
        if base is None or absolute:
            start, own = self._base(n.pid, dfd, absolute), True
        else:
            start, own = base, False
        try:
            rel = path.lstrip(b"/") if absolute else path
            trailing = rel.endswith(b"/")
            rel = rel.rstrip(b"/")
            head, _, name = rel.rpartition(b"/")
            if not name:
                raise Continue  # "/" itself: nothing is created, the kernel answers
            if len(name) > NAME_MAX:
                raise Fail(errno.ENAMETOOLONG)
            resolve = RESOLVE_NO_MAGICLINKS | (RESOLVE_IN_ROOT if absolute else 0)
            pfd = openat2(start, head or b".", _PIN, resolve)
        finally:
            if own:
                os.close(start)
        return pfd, name, trailing

    @staticmethod
    def _real(fd: int) -> str:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if real.endswith(" (deleted)") or not real.startswith("/"):
            raise Fail(errno.ENOENT)
        return real

    # -- decisions -------------------------------------------------------------------
    def _landlock_grants(self, real: str) -> bool:
        """Does Landlock itself grant creation and removal in directory ``real``? (The rights
        of every rule at or above it whose directory is still the inode the rule was made on.)"""
        got = 0
        probe = real
        while True:
            hit = self._tree.get(probe)
            if hit is not None:
                rights, ident = hit
                try:
                    st = os.stat(probe)
                    if ident is not None and (st.st_dev, st.st_ino) == ident:
                        got |= rights
                except OSError:
                    pass
            if probe == "/":
                break
            probe = probe.rsplit("/", 1)[0] or "/"
        return got & self._need == self._need

    def _allowed(self, real: str, name: bytes) -> str | None:
        """None when the policy lets the command create or remove ``name`` in ``real`` (``b""``:
        an unnamed file, O_TMPFILE); else why not."""
        target = os.path.join(real, os.fsdecode(name))
        if self._fs.access(real) is not FsAccess.WRITE:
            return f"{real} is not writable"
        if not name:
            return None
        if name in (b".", b".."):
            return "not a new name"
        for g in self._guarded:
            if is_within(g, target):
                return f"{g} is {self._fs.access(g).value}"
        return None

    def _gate(self, n: sb.Notification, places: list[tuple[int, bytes]]) -> None:
        """CONTINUE when Landlock decides (every parent unsplit, or the policy refuses);
        return when the broker must perform the call."""
        reals = [self._real(fd) for fd, _ in places]
        if all(self._landlock_grants(r) for r in reals):
            raise Continue
        for real, (_fd, name) in zip(reals, places, strict=True):
            why = self._allowed(real, name)
            if why is not None:
                self._count("refused")
                self._event(n, os.path.join(real, os.fsdecode(name)) if name else real, why)
                raise Continue  # Landlock refuses as well (never wider than the policy)

    def _event(self, n: sb.Notification, path: str, why: str) -> None:
        try:
            self._on_event({"kind": "path_op", "op": _CALLS[n.nr], "path": path, "pid": n.pid,
                            "verdict": "deny", "rule": why})
        except Exception:  # noqa: BLE001 - a failing sink must not take the broker down
            pass

    # -- acting as the target --------------------------------------------------------
    def _as_target(self, n: sb.Notification, private_fs: bool) -> Callable[[], None]:
        """Act as the target: the broker thread already holds its identity (checked here), so
        this takes its umask and drops any effective capability the thread holds for
        preparing; returns the function that undoes both."""
        t = _Target(n.pid)
        self._valid(n)  # the status read was the target's
        held = getattr(getattr(self._tl, "creds", None), "ident", None)
        if held is None or (held.uids[3], held.gids[3], tuple(sorted(held.groups))) != (
                t.fsuid, t.fsgid, tuple(sorted(t.groups))):
            raise Fail(errno.EACCES)  # the broker thread must already act as the command: fail closed
        creds = self._tl.creds
        creds.drop()  # no effective capability while acting (the command has none)
        if not private_fs:  # the umask is the whole supervisor's: the creators apply it (_shared_fs)
            self._tl.owed = t.umask
            return creds.undrop
        self._tl.owed = None
        old_umask = os.umask(t.umask)

        def restore() -> None:
            os.umask(old_umask)
            creds.undrop()
        return restore

    # Without a private fs_struct (_shared_fs) the creators apply the target's umask.
    def _mode(self, mode: int) -> int:
        owed = getattr(self._tl, "owed", None)
        return mode if owed is None else mode & ~owed

    def _settle(self, fd: int, want: int, kind: int) -> None:
        if getattr(self._tl, "owed", None) is not None:
            settle(fd, want, kind)

    def _settle_at(self, dfd: int, name: bytes, want: int, kind: int) -> None:
        if getattr(self._tl, "owed", None) is not None:
            settle_at(dfd, name, want, kind)

    def _create_open(self, pfd: int, name: bytes, flags: int, mode: int) -> int:
        """Open with O_CREAT (or O_TMPFILE) without a private umask: create exclusively, so the
        file this call made is known and its mode settled; else open what exists."""
        want = self._mode(mode)
        if flags & os.O_EXCL or flags & os.O_TMPFILE == os.O_TMPFILE:
            fd = os.open(name, flags, want, dir_fd=pfd)
            self._settle(fd, want, stat.S_IFREG)
            return fd
        for _ in range(MAX_SYMLINKS):
            try:
                fd = os.open(name, flags | os.O_EXCL, want, dir_fd=pfd)
            except FileExistsError:
                try:
                    return os.open(name, flags & ~os.O_CREAT, dir_fd=pfd)
                except FileNotFoundError:
                    continue  # removed meanwhile: create it then
            self._settle(fd, want, stat.S_IFREG)
            return fd
        raise Fail(errno.ELOOP)

    def _run(self, n: sb.Notification, private_fs: bool, places: list[tuple[int, bytes, int | None]],
             act: Callable[[list[tuple[int, bytes]]], None]) -> None:
        """Resolve ``places`` ((dirfd, path, base)) once, as the target (the broker thread holds
        its identity: DAC on the way is the target's), gate on what was pinned, and act on the
        same pins."""
        pins = self._pin_all(n, places)
        try:
            self._valid(n)
            self._gate(n, pins)
            restore = self._as_target(n, private_fs)
            try:
                act(pins)
            finally:
                restore()
        finally:
            for fd, _ in pins:
                os.close(fd)

    def _pin_all(self, n: sb.Notification, places: list[tuple[int, bytes, int | None]]) -> list[tuple[int, bytes]]:
        pins: list[tuple[int, bytes]] = []
        try:
            for dfd, path, base in places:
                pins.append(self._parent(n, dfd, path, base)[:2])
        except BaseException:
            for fd, _ in pins:
                os.close(fd)
            raise
        return pins

    # -- the operations --------------------------------------------------------------
    @staticmethod
    def _int(v: int) -> int:
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v & 0x80000000 else v

    def _open(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_open(n, private_fs, AT_FDCWD, n.args[0], n.args[1], n.args[2])

    def _creat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_open(n, private_fs, AT_FDCWD, n.args[0], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, n.args[1])

    def _openat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_open(n, private_fs, self._int(n.args[0]), n.args[1], n.args[2], n.args[3])

    def _do_open(self, n: sb.Notification, private_fs: bool, dfd: int, ptr: int, flags: int, mode: int) -> None:
        flags &= 0xFFFFFFFF
        mode &= 0o7777
        path = self._string(n, ptr)
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            self._tmpfile(n, private_fs, dfd, path, flags, mode)
            return
        base: int | None = None
        try:
            for _ in range(MAX_SYMLINKS):
                pfd, name, trailing = self._parent(n, dfd, path, base)
                keep = False
                try:
                    self._valid(n)
                    if trailing:
                        raise Fail(errno.EISDIR)
                    self._gate(n, [(pfd, name)])
                    text = self._open_as_target(n, private_fs, pfd, name, flags, mode)
                    if text is None:
                        return
                    keep = True
                finally:
                    if not keep:
                        os.close(pfd)
                if base is not None:
                    os.close(base)
                path, base = text, pfd  # a final symlink: resolve its text from its directory
            raise Fail(errno.ELOOP)
        finally:
            if base is not None:
                os.close(base)

    def _tmpfile(self, n: sb.Notification, private_fs: bool, dfd: int, path: bytes, flags: int, mode: int) -> None:
        """O_TMPFILE makes an unnamed file in the directory ``path`` names (its last component
        followed, as the kernel does): pin that directory, gate on it, make the file there.
        The file is the command's to use; it cannot be given a name afterwards (``linkat``
        of it answers ENOENT/EACCES, as ``linkat`` of the kernel's own O_TMPFILE does
        without CAP_DAC_READ_SEARCH)."""
        if not path:
            raise Fail(errno.ENOENT)
        if len(path) >= PATH_MAX - 2:
            raise Fail(errno.ENAMETOOLONG)
        pfd, _, _ = self._parent(n, dfd, path.rstrip(b"/") + b"/.")
        try:
            self._valid(n)
            self._gate(n, [(pfd, b"")])
            self._open_as_target(n, private_fs, pfd, b".", flags, mode)
        finally:
            os.close(pfd)

    def _open_as_target(self, n: sb.Notification, private_fs: bool, pfd: int, name: bytes,
                        flags: int, mode: int) -> bytes | None:
        """Open as the target relative to the pinned, gated parent ``pfd``; the link text when
        the last component is a symlink to follow (resolved from ``pfd``, which the caller
        keeps), else None (answered)."""
        if not addfd_available():
            self._event(n, os.path.join(self._real(pfd), os.fsdecode(name)), "no SECCOMP_IOCTL_NOTIF_ADDFD")
            raise Fail(errno.EACCES)  # the descriptor could not reach the command
        ours = (flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC) & ~os.O_NOCTTY
        restore = self._as_target(n, private_fs)
        try:
            if flags & os.O_CREAT or flags & os.O_TMPFILE == os.O_TMPFILE:
                fd = self._create_open(pfd, name, ours, mode)
            else:
                fd = os.open(name, ours, mode, dir_fd=pfd)
        except OSError as e:
            if e.errno == errno.ENXIO:
                raise Continue from None  # a FIFO without reader: the kernel (and Landlock) block or refuse
            if e.errno != errno.ELOOP or flags & (os.O_NOFOLLOW | os.O_EXCL):
                raise
            try:
                return os.fsencode(os.readlink(name, dir_fd=pfd))
            except OSError:
                raise e from None
        finally:
            restore()
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise Continue  # an existing FIFO or device: Landlock decides
            if not flags & os.O_NONBLOCK:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            self._count("performed")
            try:
                sb.notif_addfd(self._fd, n.id, fd, newfd_flags=flags & os.O_CLOEXEC, send=True)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
            return None
        finally:
            os.close(fd)

    def _mkdir(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_mkdir(n, private_fs, AT_FDCWD, n.args[0], n.args[1])

    def _mkdirat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_mkdir(n, private_fs, self._int(n.args[0]), n.args[1], n.args[2])

    def _do_mkdir(self, n: sb.Notification, private_fs: bool, dfd: int, ptr: int, mode: int) -> None:
        path = self._string(n, ptr)
        def act(p: list[tuple[int, bytes]]) -> None:
            want = self._mode(mode & 0o7777)
            os.mkdir(p[0][1], want, dir_fd=p[0][0])
            self._settle_at(p[0][0], p[0][1], want, stat.S_IFDIR)
        self._run(n, private_fs, [(dfd, path, None)], act)
        self._done(n)

    def _mknod(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_mknod(n, private_fs, AT_FDCWD, n.args[0], n.args[1])

    def _mknodat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_mknod(n, private_fs, self._int(n.args[0]), n.args[1], n.args[2])

    def _do_mknod(self, n: sb.Notification, private_fs: bool, dfd: int, ptr: int, mode: int) -> None:
        mode &= 0xFFFFFFFF
        kind = stat.S_IFMT(mode)
        if kind not in (0, stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
            raise Continue  # devices: filter A and Landlock refuse them
        path = self._string(n, ptr)
        if path.endswith(b"/"):
            raise Fail(errno.ENOENT)
        def act(p: list[tuple[int, bytes]]) -> None:
            want = self._mode(mode & 0o7777)
            os.mknod(p[0][1], kind | want, 0, dir_fd=p[0][0])
            self._settle_at(p[0][0], p[0][1], want, kind or stat.S_IFREG)
        self._run(n, private_fs, [(dfd, path, None)], act)
        self._done(n)

    def _symlink(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_symlink(n, private_fs, n.args[0], AT_FDCWD, n.args[1])

    def _symlinkat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_symlink(n, private_fs, n.args[0], self._int(n.args[1]), n.args[2])

    def _do_symlink(self, n: sb.Notification, private_fs: bool, tptr: int, dfd: int, ptr: int) -> None:
        text = self._string(n, tptr)
        path = self._string(n, ptr)
        if not text:
            raise Fail(errno.ENOENT)
        if path.endswith(b"/"):
            raise Fail(errno.ENOENT)
        self._run(n, private_fs, [(dfd, path, None)], lambda p: os.symlink(text, p[0][1], dir_fd=p[0][0]))
        self._done(n)

    def _link(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_link(n, private_fs, AT_FDCWD, n.args[0], AT_FDCWD, n.args[1], 0)

    def _linkat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_link(n, private_fs, self._int(n.args[0]), n.args[1], self._int(n.args[2]), n.args[3],
                      n.args[4] & 0xFFFFFFFF)

    def _do_link(self, n: sb.Notification, private_fs: bool, odfd: int, optr: int, ndfd: int, nptr: int,
                 flags: int) -> None:
        if flags & (AT_EMPTY_PATH | AT_SYMLINK_FOLLOW):
            raise Continue  # rare (CAP_DAC_READ_SEARCH, or a followed link): Landlock decides
        old, new = self._string(n, optr), self._string(n, nptr)
        if new.endswith(b"/"):
            raise Fail(errno.ENOENT)

        def act(p: list[tuple[int, bytes]]) -> None:
            (ofd, oname), (nfd, nname) = p
            src = os.open(oname, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ofd)
            try:
                if stat.S_ISDIR(os.fstat(src).st_mode):
                    raise Fail(errno.EPERM)
                real = self._real(src)
                # A hard link must not make a file writable that the policy keeps read-only.
                if self._fs.access(real) is not FsAccess.WRITE:
                    self._count("refused")
                    self._event(n, real, "link source is not writable")
                    raise Fail(errno.EACCES)
                os.link(f"/proc/self/fd/{src}", nname, dst_dir_fd=nfd, follow_symlinks=True)
            finally:
                os.close(src)

        # The source's directory is only read: gate it as writable only via the link check.
        self._run_pair(n, private_fs, (odfd, old), (ndfd, new), act, source_removed=False)
        self._done(n)

    def _run_pair(self, n: sb.Notification, private_fs: bool, src: tuple[int, bytes], dst: tuple[int, bytes],
                  act: Callable[[list[tuple[int, bytes]]], None], *, source_removed: bool) -> None:
        if source_removed:
            self._run(n, private_fs, [(*src, None), (*dst, None)], act)
            return
        # link: only the destination's directory gates; the source is resolved to act.
        (sdfd, spath), (ddfd, dpath) = src, dst
        dpin = self._parent(n, ddfd, dpath)[:2]
        try:
            self._valid(n)
            self._gate(n, [dpin])
            spin = self._parent(n, sdfd, spath)[:2]
            try:
                self._valid(n)
                restore = self._as_target(n, private_fs)
                try:
                    act([spin, dpin])
                finally:
                    restore()
            finally:
                os.close(spin[0])
        finally:
            os.close(dpin[0])

    def _rename(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_rename(n, private_fs, AT_FDCWD, n.args[0], AT_FDCWD, n.args[1], 0)

    def _renameat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_rename(n, private_fs, self._int(n.args[0]), n.args[1], self._int(n.args[2]), n.args[3], 0)

    def _renameat2(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_rename(n, private_fs, self._int(n.args[0]), n.args[1], self._int(n.args[2]), n.args[3],
                        n.args[4] & 0xFFFFFFFF)

    def _do_rename(self, n: sb.Notification, private_fs: bool, odfd: int, optr: int, ndfd: int, nptr: int,
                   flags: int) -> None:
        if flags & RENAME_WHITEOUT:
            raise Continue  # needs CAP_MKNOD, which the command lacks: the kernel refuses
        old, new = self._string(n, optr), self._string(n, nptr)

        def act(p: list[tuple[int, bytes]]) -> None:
            (ofd, oname), (nfd, nname) = p
            if old.endswith(b"/") or new.endswith(b"/"):
                st = os.stat(oname, dir_fd=ofd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise Fail(errno.ENOTDIR)
            renameat2(ofd, oname, nfd, nname, flags)

        self._run_pair(n, private_fs, (odfd, old), (ndfd, new), act, source_removed=True)
        self._done(n)

    def _unlink(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_unlink(n, private_fs, AT_FDCWD, n.args[0], 0)

    def _rmdir(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_unlink(n, private_fs, AT_FDCWD, n.args[0], AT_REMOVEDIR)

    def _unlinkat(self, n: sb.Notification, private_fs: bool) -> None:
        self._do_unlink(n, private_fs, self._int(n.args[0]), n.args[1], n.args[2] & 0xFFFFFFFF)

    def _do_unlink(self, n: sb.Notification, private_fs: bool, dfd: int, ptr: int, flags: int) -> None:
        path = self._string(n, ptr)
        if path.rstrip(b"/").endswith((b"/.", b"/..")) or path.rstrip(b"/") in (b".", b".."):
            raise Continue  # EINVAL/ENOTEMPTY from the kernel

        def act(p: list[tuple[int, bytes]]) -> None:
            fd, name = p[0]
            if flags & AT_REMOVEDIR:
                os.rmdir(name, dir_fd=fd)
            else:
                if path.endswith(b"/"):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    raise Fail(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.ENOTDIR)
                os.unlink(name, dir_fd=fd)

        self._run(n, private_fs, [(dfd, path, None)], act)
        self._done(n)

