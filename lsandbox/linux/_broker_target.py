"""Resolving a target's AF_UNIX path as the target sees it, and pinning what it names.

The race-free property lives here: the path is resolved through ``/proc/<tid>/root`` and
``/proc/<tid>/cwd`` (``/proc/self``, ``/proc/thread-self`` and ``/dev/fd`` rewritten to the
target's), the socket inode is pinned with ``O_PATH|O_NOFOLLOW`` (a final symlink is
followed here, at most 40 times), and the decision is taken on the pin's real path (the
kernel's ``/proc/self/fd/N`` link). The caller then connects through ``/proc/self/fd/N``:
whatever a racing rename or symlink swap did, the inode connected to is the inode whose
path was decided (and ``sun_path``'s 108-byte limit does not apply). A pinned socket with
``st_nlink != 1`` is refused: a hard link planted in a writable, allowlisted directory
(``ln /var/run/docker.sock /tmp/.X11-unix/X9``) is unreachable, while ordinary sockets
(always one link) keep working.

The sandbox-local socket directory (``_socket_dir``) is always allowed, recognised by inode
only (the command may rename it and put a symlink at its path): a path the policy refuses is
allowed when the pinned socket's parent directory (proven by inode: it holds the pinned
inode under the socket's name) or a bind's pinned parent directory is that directory or
below it. Sockets the sandbox moved into an allowlisted place are refused (``_provenance``).
"""

from __future__ import annotations

import errno
import os
import stat

from ._broker_decide import ALLOWED, Allowed, Denied, Quiet, UnixRules, decide, decide_abstract
from ._broker_fail import Fail
from ._sockaddr import parse_unix, unix_sockaddr
from ._socket_dir import contains

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._broker_decide import Op, Verdict
    from ._provenance import Provenance

MAX_SYMLINKS = 40
O_PIN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
O_UPDIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def tgid(tid: int) -> int:
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
    raise Fail(errno.ESRCH)


def umask(tid: int) -> int:
    """The target's umask (``Umask:`` in /proc/<tid>/status, Linux >= 4.7)."""
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    raise Fail(errno.EACCES)  # no way to know what it would create: fail closed


def proc_rewrite(path: str, tid: int) -> str:
    """Make ``/proc/self``, ``/proc/thread-self`` and ``/dev/fd`` name the target's."""
    for prefix in ("/proc/self", "/proc/thread-self", "/dev/fd"):
        if path == prefix or path.startswith(prefix + "/"):
            g = tgid(tid)
            head = {"/proc/self": f"/proc/{g}", "/proc/thread-self": f"/proc/{g}/task/{tid}",
                    "/dev/fd": f"/proc/{g}/fd"}[prefix]
            return head + path[len(prefix):]
    return path


def lexical(path: str, tid: int) -> str:
    """The absolute, lexically normalized path (for decisions when nothing exists there)."""
    if not path.startswith("/"):
        try:
            path = os.readlink(f"/proc/{tid}/cwd") + "/" + path
        except OSError:
            path = "/" + path
    return os.path.normpath(path).replace("//", "/")


def real_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def pinned_sockaddr(pin: int) -> bytes:
    """The address that reaches the pinned inode from the broker."""
    return unix_sockaddr(f"/proc/self/fd/{pin}".encode())


class Targets:
    """Decisions on objects: the pure decision, plus the socket directory by inode and the
    provenance check. ``sd_ident``: (st_dev, st_ino) of the socket directory, or None."""

    def __init__(self, rules: UnixRules, sd_ident: tuple[int, int] | None, prov: Provenance) -> None:
        self.rules, self.sd_ident, self.prov = rules, sd_ident, prov

    def decide(self, path: str, op: Op, inside: Callable[[], bool] | None = None) -> Verdict:
        """Decide canonical ``path``; what the policy refuses is still allowed when
        ``inside()`` says the object is in the socket directory."""
        v = decide(self.rules, path, op)
        if isinstance(v, Denied) and inside is not None and self.sd_ident is not None and inside():
            return ALLOWED
        return v

    def sock_inside(self, pin: int, real: str) -> bool:
        """Is the socket pinned at ``pin`` in the socket directory (or below it)? Its parent
        is found by its real path and then proven by inode: that directory holds, under the
        socket's name, the pinned inode; then ``contains`` walks up from its descriptor."""
        if self.sd_ident is None:
            return False
        head, _, name = real.rpartition("/")
        try:
            dfd = os.open(head or "/", O_UPDIR)
        except OSError:
            return False
        try:
            st, pst = os.stat(name, dir_fd=dfd, follow_symlinks=False), os.fstat(pin)
            if (st.st_dev, st.st_ino) != (pst.st_dev, pst.st_ino):
                return False
            return contains(self.sd_ident, dfd)
        except OSError:
            return False
        finally:
            os.close(dfd)

    def dir_inside(self, dfd: int) -> bool:
        """Is the directory open at ``dfd`` the socket directory or below it?"""
        return self.sd_ident is not None and contains(self.sd_ident, dfd)

    def decide_missing(self, tid: int, path: str, op: Op) -> Verdict:
        """Decide a path that does not resolve (its errno is then the answer): by its lexical
        form, or as inside the socket directory when its nearest existing ancestor, opened
        as the target sees it, is (a connect there answers ENOENT, as without the sandbox)."""
        v = self.decide(lexical(path, tid), op)
        if not isinstance(v, Denied):
            return v
        head = path
        while self.sd_ident is not None and head not in ("", "/"):
            head = os.path.dirname(head)
            base = f"/proc/{tid}/root" if head.startswith("/") else f"/proc/{tid}/cwd/"
            try:
                dfd = os.open(base + (head or "."), O_UPDIR)
            except OSError:
                continue
            try:
                if contains(self.sd_ident, dfd):
                    return ALLOWED
            finally:
                os.close(dfd)
            break
        return v

    def planted(self, real: str, pin: int) -> Verdict:
        """Refuse a socket the sandbox moved into an allowlisted place (``_provenance``)."""
        reason = self.prov.check(real, pin)
        return ALLOWED if reason is None else Denied(real, reason)

    def decide_pinned(self, real: str, pin: int) -> Verdict:
        """The whole verdict on a pinned socket (link count and type checked by the caller)."""
        v = self.decide(real, "connect", lambda: self.sock_inside(pin, real))
        return self.planted(real, pin) if isinstance(v, Allowed) else v

    def pin(self, tid: int, raw: bytes) -> tuple[int, str] | Denied | Quiet:
        """Resolve ``raw`` as the target and pin the socket inode: (fd, real path), or the
        verdict that refuses it. Failures (nothing there, not a socket) raise ``Fail``."""
        path = first = proc_rewrite(os.fsdecode(raw), tid)
        for _ in range(MAX_SYMLINKS):
            base = f"/proc/{tid}/root" if path.startswith("/") else f"/proc/{tid}/cwd/"
            full = base + path
            try:
                fd = os.open(full, O_PIN)
            except OSError as e:
                v = self.decide_missing(tid, first, "connect")  # denied: EACCES, there or not
                if not isinstance(v, Allowed):
                    return v
                raise Fail(e.errno or errno.ENOENT) from e
            keep = False
            try:
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    link = proc_rewrite(os.readlink(full), tid)
                    if not link.startswith("/"):
                        head = os.path.dirname(path)
                        link = (head + "/" if head else "") + link
                    path = link
                    continue
                real = real_path(fd)
                v = self.decide(real, "connect", lambda: self.sock_inside(fd, real))  # noqa: B023 - called at once
                if not isinstance(v, Allowed):
                    return v
                if not stat.S_ISSOCK(st.st_mode):
                    raise Fail(errno.ECONNREFUSED)
                if st.st_nlink != 1:
                    return Denied(real, f"planted socket: {st.st_nlink} hard links")
                v = self.planted(real, fd)
                if not isinstance(v, Allowed):
                    return v
                keep = True
                return fd, real
            finally:
                if not keep:
                    os.close(fd)
        v = self.decide_missing(tid, first, "connect")
        if not isinstance(v, Allowed):
            return v
        raise Fail(errno.ELOOP)

    def unix_target(self, tid: int, addr: bytes, op: Op) -> tuple[bytes, int] | Denied | Quiet:
        """(sockaddr to use from the broker, pin fd or -1) for an AF_UNIX destination, or the
        verdict that refuses it."""
        ua = parse_unix(addr)
        if ua is None:
            raise Fail(errno.EINVAL)
        if ua.kind == "pathname":
            got = self.pin(tid, ua.name)
            if isinstance(got, tuple):
                return pinned_sockaddr(got[0]), got[0]
            return got
        if ua.kind == "abstract":
            # As a name that does not exist: X11's libxcb (and others) try the abstract name
            # first and fall back to the path only on ECONNREFUSED or ENOENT.
            v = decide_abstract(self.rules, ua.display(), op)
            if not isinstance(v, Allowed):
                return v
        return addr, -1
