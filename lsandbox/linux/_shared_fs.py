"""Creating files for the command where the broker thread has no ``fs_struct`` of its own.

A broker thread calls ``unshare(CLONE_FS)`` so that its cwd and umask are its own: a bind
``fchdir``s into the pinned directory and a path operation takes the command's umask. Where
a runtime's seccomp profile refuses ``unshare`` (Docker's and Podman's defaults) both are the
whole supervisor's, and setting them would move an API caller's other threads (their
relative paths, the modes of the files they create). There the broker leaves them alone:
it creates with the command's umask applied to the mode it asks for, and then gives back
what the supervisor's own umask took away from what it just made.

A socket's mode cannot be asked for (``bind`` has no mode argument): it is created under the
supervisor's umask and then changed to the command's. Where the supervisor's umask is the
more permissive for group or others' write (an API caller with umask 0, a command with
077), another user could connect in that moment; a command's umask is its own choice, not
the policy's.
"""

from __future__ import annotations

import os
import stat


def shared_umask() -> int:
    """The supervisor's umask (every thread's), read without setting it."""
    with open("/proc/thread-self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line[6:].strip(), 8)
    return 0  # no Umask line (Linux < 4.7): nothing known to give back


def settle(fd: int, want: int, kind: int, asked: int | None = None, shared: int | None = None) -> None:
    """Give ``fd``, just created here asking for mode ``asked`` (default ``want``), the mode
    ``want``, where the shared umask made it differ; not where the result is not the umask's
    doing (a default ACL decided), nor on another kind of file or one with more links than
    a new one has (the command replaced the entry meanwhile: what would change is then a
    file it may change itself, with its own credentials, by the caller; a hard link to a
    file it may not is refused by Landlock or the policy before it gets there)."""
    asked = want if asked is None else asked
    shared = shared_umask() if shared is None else shared
    if asked & ~shared == want:
        return
    st = os.fstat(fd)
    if (stat.S_IFMT(st.st_mode) == kind and stat.S_IMODE(st.st_mode) == asked & ~shared
            and st.st_nlink <= (2 if kind == stat.S_IFDIR else 1)):
        os.chmod(f"/proc/thread-self/fd/{fd}", want)  # an O_PATH descriptor too


def settle_at(dirfd: int, name: bytes, want: int, kind: int, asked: int | None = None) -> None:
    """``settle`` the entry ``name`` of ``dirfd`` (never following a symlink there)."""
    shared = shared_umask()  # read once: settle gets it
    if (want if asked is None else asked) & ~shared == want:
        return
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        settle(fd, want, kind, asked, shared)
    finally:
        os.close(fd)
