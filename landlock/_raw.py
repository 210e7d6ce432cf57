"""A ruleset as plain ints: the syscalls of :meth:`Ruleset.restrict_self`, without the enums.

:class:`RawRuleset` holds what the kernel is given (handled rights, rules, ports) already
masked to the ABI, so it can be built in one process and applied in a forked child that then
only makes syscalls. :class:`~landlock.Ruleset` (compatibility levels, what was dropped, a
typed status) applies its rules through one of these.
"""

from __future__ import annotations

import errno
import os
import stat

from . import _bindings
from ._rights import FS_FILE_RIGHTS, fs_all, net_all, restrict_flags_all, scope_all


def attr_size(abi: int) -> int:
    """How many bytes of ``landlock_ruleset_attr`` an ABI knows."""
    return 24 if abi >= 6 else 16 if abi >= 4 else 8


class RawRuleset:
    """``handled_fs``/``handled_net``/``scoped`` as the kernel's bit masks (``_rights``),
    masked to what ABI ``abi`` has; rules are added with :meth:`add_path` and
    :meth:`add_net_port`, applied (irreversibly) by :meth:`restrict_self`."""

    def __init__(self, abi: int, handled_fs: int = 0, handled_net: int = 0, scoped: int = 0) -> None:
        self.abi = abi
        self.handled_fs = handled_fs & fs_all(abi)
        self.handled_net = handled_net & net_all(abi)
        self.scoped = scoped & scope_all(abi)
        # (path, rights for a directory, rights for a file), masked to what is handled
        self.rules: list[tuple[str, int, int]] = []
        self.fd_rules: list[tuple[int, int, int]] = []  # add_path_fd
        self.ports: list[tuple[int, int]] = []

    def attr(self) -> tuple[int, int, int, int]:
        """(handled_access_fs, handled_access_net, scoped, size) as they would be passed."""
        return self.handled_fs, self.handled_net, self.scoped, attr_size(self.abi)

    def add_path(self, path: str, access: int) -> RawRuleset:
        """Allow ``access`` on ``path`` and beneath (masked to what is handled; a file gets
        only the rights that apply to files)."""
        acc = int(access) & self.handled_fs
        self.rules.append((path, acc, acc & FS_FILE_RIGHTS))
        return self

    def add_path_fd(self, fd: int, access: int) -> RawRuleset:
        """As :meth:`add_path`, beneath what ``fd`` (an ``O_PATH`` descriptor, kept open by
        the caller until :meth:`restrict_self`) refers to: for paths opened earlier, before
        anything could rename or replace them."""
        acc = int(access) & self.handled_fs
        self.fd_rules.append((fd, acc, acc & FS_FILE_RIGHTS))
        return self

    def add_net_port(self, port: int, access: int) -> RawRuleset:
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} out of range")
        self.ports.append((port, int(access)))
        return self

    def restrict_self(self, flags: int = 0, *, no_new_privs: bool = True,
                      notes: list[str] | None = None) -> bool:
        """Apply the ruleset to the calling thread; False when there was nothing to enforce
        (no Landlock, or nothing handled). Sets no_new_privs first unless told not to (then
        the caller must have set it, or hold CAP_SYS_ADMIN). ``flags`` the kernel lacks are
        dropped; rules skipped (a path that is missing or a symlink) are said in ``notes``."""
        if self.abi == 0 or not (self.handled_fs or self.handled_net or self.scoped):
            return False
        notes = [] if notes is None else notes
        fd = _bindings.create_ruleset_raw(*self.attr())
        try:
            for path, dir_access, file_access in self.rules:
                _add_path_rule(fd, path, dir_access, file_access, notes)
            for pfd, dir_access, file_access in self.fd_rules:
                _add_path_rule(fd, pfd, dir_access, file_access, notes)
            for port, access in self.ports:
                acc = access & self.handled_net
                if acc:
                    _bindings.add_net_port(fd, port, acc)
            if no_new_privs:
                _bindings.set_no_new_privs()
            _bindings.restrict_self(fd, int(flags) & restrict_flags_all(self.abi))
        finally:
            os.close(fd)
        return True


def open_rule_path(path: str) -> int:
    """An ``O_PATH`` descriptor of ``path`` with no symlink anywhere on it (ELOOP otherwise:
    openat2 RESOLVE_NO_SYMLINKS); where a profile refuses openat2, the last component only."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return _bindings.open_no_symlinks(path, flags)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM):
            raise
    return os.open(path, flags)  # a container profile that refuses openat2 (Docker before 20.10)


def _add_path_rule(fd: int, path: str | int, dir_access: int, file_access: int, notes: list[str]) -> None:
    """Rules name canonical paths, so no component may be a symlink: one planted after the
    policy was resolved, in the middle (a directory swapped for a link) or at the end,
    gets no rule (its target keeps its own rights) instead of silently granting the target.
    A missing path is skipped and noted (nothing to grant). An int ``path`` is a
    descriptor the caller opened."""
    if isinstance(path, int):
        pfd = path
    else:
        try:
            pfd = open_rule_path(path)
        except FileNotFoundError:
            notes.append(f"{path}: does not exist, no rule added")
            return
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            notes.append(f"{path}: a symlink on the path (changed since the policy was resolved), no rule added")
            return
    try:
        st = os.fstat(pfd)
        if stat.S_ISLNK(st.st_mode):
            notes.append(f"{path}: is a symlink, no rule added")
            return
        acc = dir_access if stat.S_ISDIR(st.st_mode) else file_access
        if acc:
            _bindings.add_path_beneath(fd, pfd, acc)
    finally:
        if pfd is not path:
            os.close(pfd)
