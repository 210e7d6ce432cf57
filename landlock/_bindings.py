"""One typed function per Landlock syscall; ``-1`` becomes ``OSError(errno)``."""

from __future__ import annotations

import os

from ._ffi import (
    SYS_ADD_RULE,
    SYS_CREATE_RULESET,
    SYS_OPENAT2,
    SYS_RESTRICT_SELF,
    ffi,
    ffi_packed,
    lib,
)

CREATE_RULESET_VERSION = 1 << 0
CREATE_RULESET_ERRATA = 1 << 1
RULE_PATH_BENEATH = 1
RULE_NET_PORT = 2
PR_SET_NO_NEW_PRIVS = 38
AT_FDCWD = -100
RESOLVE_NO_SYMLINKS = 0x04


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return int(ret)


def _sys(nr: int, *args: object) -> int:
    ffi.errno = 0
    return lib.syscall(ffi.cast("long", nr), *args)


def create_ruleset_raw(fs: int, net: int, scoped: int, size: int) -> int:
    """Create a ruleset fd. ``size`` selects how much of the attr the kernel reads (8 for
    ABI 1-3, 16 for ABI 4-5, 24 for ABI 6+) so older kernels never see unknown fields."""
    attr = ffi.new("struct landlock_ruleset_attr *", {  # lives until the call returns
        "handled_access_fs": fs, "handled_access_net": net, "scoped": scoped})
    return _check(_sys(SYS_CREATE_RULESET, attr, ffi.cast("size_t", size), ffi.cast("uint32_t", 0)),
                  "landlock_create_ruleset")


def query(flag: int) -> int:
    """ABI version (CREATE_RULESET_VERSION) or errata bitmask (CREATE_RULESET_ERRATA)."""
    return _check(_sys(SYS_CREATE_RULESET, ffi.NULL, ffi.cast("size_t", 0), ffi.cast("uint32_t", flag)),
                  "landlock_create_ruleset")


def add_path_beneath(ruleset_fd: int, parent_fd: int, access: int) -> None:
    attr = ffi_packed.new("struct landlock_path_beneath_attr *", {  # lives until the call returns
        "allowed_access": access, "parent_fd": parent_fd})
    ptr = ffi.cast("void *", int(ffi_packed.cast("uintptr_t", attr)))
    _check(_sys(SYS_ADD_RULE, ffi.cast("int", ruleset_fd), ffi.cast("int", RULE_PATH_BENEATH), ptr,
                ffi.cast("uint32_t", 0)), "landlock_add_rule(path_beneath)")


def add_net_port(ruleset_fd: int, port: int, access: int) -> None:
    attr = ffi.new("struct landlock_net_port_attr *", {"allowed_access": access, "port": port})
    _check(_sys(SYS_ADD_RULE, ffi.cast("int", ruleset_fd), ffi.cast("int", RULE_NET_PORT), attr,
                ffi.cast("uint32_t", 0)), "landlock_add_rule(net_port)")


def restrict_self(ruleset_fd: int, flags: int) -> None:
    _check(_sys(SYS_RESTRICT_SELF, ffi.cast("int", ruleset_fd), ffi.cast("uint32_t", flags)),
           "landlock_restrict_self")


def set_no_new_privs() -> None:
    if lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ffi.errno
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")


def open_no_symlinks(path: str, flags: int) -> int:
    """``openat2(AT_FDCWD, path, {flags, 0, RESOLVE_NO_SYMLINKS})``: a symlink anywhere on
    ``path`` answers ELOOP (a trailing one, with O_PATH|O_NOFOLLOW, is opened itself).
    Every kernel with Landlock has openat2 (5.6)."""
    how = ffi.new("uint64_t[3]", [flags, 0, RESOLVE_NO_SYMLINKS])  # struct open_how
    raw = ffi.new("char[]", os.fsencode(path))
    return _check(_sys(SYS_OPENAT2, ffi.cast("int", AT_FDCWD), raw, how, ffi.cast("size_t", 24)), "openat2")
