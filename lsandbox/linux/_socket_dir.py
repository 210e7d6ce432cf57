"""The per-run socket directory (``$LSANDBOX_SOCKET_DIR``): made, judged and removed by
descriptor, never by a path the sandbox can change.

It lives in ``$TMPDIR`` (or ``/tmp``), which the sandbox may be allowed to write: the command
can rename the directory and put a symlink (``-> /``) or another directory in its place. So
the supervisor pins it when it makes it (an ``O_DIRECTORY`` descriptor, and its device and
inode) and from then on:

- the broker's "inside the socket directory" is a fact about inodes: the pinned socket's
  parent directory (or one of its ancestors, walked up by ``..`` from descriptors) *is* the
  pinned directory, whatever path it has now (:func:`contains`);
- cleanup empties it through the descriptor (``unlinkat``, subdirectories opened with
  ``O_NOFOLLOW`` relative to their parent) and removes it by name relative to its current
  parent only if that name still holds the pinned inode (:func:`remove`): a symlink put in
  its place is never followed, and files elsewhere are never touched.

A supervisor killed by SIGKILL cannot clean up. Each live directory is held with an
exclusive ``flock`` for the whole run (released by the kernel when its owner dies, whatever
PID namespace the owner was in), and each run removes the unlocked ones it owns
(:func:`remove_stale`): only names of this form, only directories owned by the caller's
euid, only while holding their lock, only relative to descriptors. (Directories of versions
that did not lock them are never removed: nothing says whether their owner is alive.) A
process that launches again and again scans its ``$TMPDIR`` once per :data:`STALE_INTERVAL`
(:func:`remove_stale_now_and_then`), not on every launch: a large ``/tmp`` is thousands of
entries, and a leftover directory is only litter (empty of anything but what its own sandbox
wrote, and never trusted by a later run).
"""

from __future__ import annotations

import fcntl
import os
import stat
import time

from .._errors import SetupError

PREFIX = "lsandbox-sock-"
SUFFIX = "-f"  # "flocked": older versions made unlocked ones, whose owner cannot be known dead
_NAME_LEN = len(PREFIX) + 12 + len(SUFFIX)
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_UP = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
MAX_DEPTH = 64  # subdirectories removed below the socket directory (deeper ones are left)
STALE_INTERVAL = 60.0  # seconds between two scans of one base directory by one process


class SocketDir:
    """A socket directory pinned at creation: ``path`` (canonical, as made), ``fd`` (held,
    locked) and ``ident`` (device, inode)."""

    __slots__ = ("fd", "ident", "path")

    def __init__(self, path: str, fd: int, ident: tuple[int, int]) -> None:
        self.path, self.fd, self.ident = path, fd, ident

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def make(base: str | None = None) -> SocketDir:
    """A fresh private directory in ``base`` (``$TMPDIR`` or ``/tmp``): mode 0700,
    unpredictable name, created atomically, pinned and locked before anything can use it."""
    raw = base if base is not None else (os.environ.get("TMPDIR") or "/tmp")
    base = os.path.realpath(raw)
    last: OSError | None = None
    for _ in range(100):
        path = f"{base}/{PREFIX}{os.urandom(6).hex()}{SUFFIX}"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        except OSError as e:
            raise SetupError(f"cannot create the socket directory in {raw}: {os.strerror(e.errno or 0)}") from None
        try:
            fd = os.open(path, _O_DIR)
        except OSError as e:  # removed (or replaced) between mkdir and open: try another name
            last = e
            continue
        try:
            # Non-blocking: another run's remove_stale() may hold it for a moment (it then
            # removes it); the directory is ours only once locked and still linked.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st = os.fstat(fd)
            if st.st_nlink >= 2 and st.st_uid == os.geteuid():
                return SocketDir(path, fd, (st.st_dev, st.st_ino))
        except OSError as e:
            last = e
        os.close(fd)
    why = f": {os.strerror(last.errno or 0)}" if last else ""
    raise SetupError(f"cannot create the socket directory in {raw}{why}")


def contains(sd_ident: tuple[int, int], dir_fd: int, max_up: int = MAX_DEPTH) -> bool:
    """Is the directory open at ``dir_fd`` the pinned directory or below it? Walks up by
    ``..`` from descriptors (the current parent, not a path taken earlier); stops at a root
    (``..`` of itself)."""
    st = os.fstat(dir_fd)
    here = (st.st_dev, st.st_ino)
    if here == sd_ident:
        return True
    fd = dir_fd
    try:
        for _ in range(max_up):
            up = os.open("..", _O_UP, dir_fd=fd)
            if fd != dir_fd:
                os.close(fd)
            fd = up
            st = os.fstat(fd)
            nxt = (st.st_dev, st.st_ino)
            if nxt == sd_ident:
                return True
            if nxt == here:
                return False
            here = nxt
        return False
    finally:
        if fd != dir_fd:
            os.close(fd)


def _empty(fd: int, depth: int) -> bool:
    """Remove everything in the directory open at ``fd``, never following a symlink.
    Returns whether it ended empty."""
    clean = True
    for entry in list(os.scandir(fd)):
        name = entry.name
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if depth >= MAX_DEPTH:
                clean = False
                continue
            try:
                sub = os.open(name, _O_DIR, dir_fd=fd)
            except OSError:
                clean = False
                continue
            try:
                sst = os.fstat(sub)
                if (sst.st_dev, sst.st_ino) != (st.st_dev, st.st_ino):
                    clean = False  # swapped between the stat and the open: leave it
                    continue
                clean = _empty(sub, depth + 1) and clean
            finally:
                os.close(sub)
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                clean = False
        else:
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                clean = False
    return clean


def _unlink_self(fd: int, ident: tuple[int, int], name_hint: str) -> bool:
    """Remove the (empty) directory open at ``fd`` by its name relative to its current
    parent, if that name still holds it."""
    try:
        parent = os.open("..", _O_UP, dir_fd=fd)
    except OSError:
        return False
    try:
        names = [name_hint]
        try:
            cur = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            if cur and cur != name_hint and not cur.endswith(" (deleted)"):
                names.append(cur)  # renamed by the sandbox: its current name
        except OSError:
            pass
        for name in names:
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == ident:
                try:
                    os.rmdir(name, dir_fd=parent)
                    return True
                except OSError:
                    return False
        return False
    finally:
        os.close(parent)


def remove(sd: SocketDir) -> bool:
    """Empty and remove the pinned directory, relative to its descriptor; close it.
    Returns whether it is gone."""
    try:
        clean = _empty(sd.fd, 0)
        gone = clean and _unlink_self(sd.fd, sd.ident, os.path.basename(sd.path))
        if not gone and os.fstat(sd.fd).st_nlink == 0:
            gone = True  # removed already (by the sandbox itself)
        return gone
    except OSError:
        return False
    finally:
        os.close(sd.fd)


def remove_stale(base: str | None = None) -> int:
    """Remove socket directories left by dead supervisors (SIGKILL, power loss) in ``base``:
    unlocked, owned by our euid, named like ours. Returns how many were removed."""
    base = os.path.realpath(base if base is not None else (os.environ.get("TMPDIR") or "/tmp"))
    try:
        bfd = os.open(base, _O_DIR & ~os.O_NOFOLLOW)
    except OSError:
        return 0
    removed = 0
    me = os.geteuid()
    try:
        for entry in list(os.scandir(bfd)):
            name = entry.name
            if not (name.startswith(PREFIX) and name.endswith(SUFFIX) and len(name) == _NAME_LEN):
                continue
            try:
                fd = os.open(entry.name, _O_DIR, dir_fd=bfd)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if st.st_uid != me:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its owner is alive
                ident = (st.st_dev, st.st_ino)
                if _empty(fd, 0):
                    try:
                        now = os.stat(entry.name, dir_fd=bfd, follow_symlinks=False)
                        if (now.st_dev, now.st_ino) == ident:
                            os.rmdir(entry.name, dir_fd=bfd)
                            removed += 1
                    except OSError:
                        pass
            finally:
                os.close(fd)
    finally:
        os.close(bfd)
    return removed


_scanned: dict[tuple[int, str], float] = {}  # (pid, base) -> when this process last scanned it


def remove_stale_now_and_then(base: str) -> int:
    """:func:`remove_stale` on this process's first launch in ``base``, then at most once per
    :data:`STALE_INTERVAL` (a forked child of the caller counts as a new process)."""
    key, now = (os.getpid(), base), time.monotonic()
    last = _scanned.get(key)
    if last is not None and now - last < STALE_INTERVAL:
        return 0
    _scanned[key] = now  # claimed first: concurrent launches do not scan twice
    return remove_stale(base)
