"""Typed wrappers for the launcher's syscalls the standard library lacks (Python 3.10/3.11):
``unshare``, ``mount`` and the new mount API. ``-1`` becomes ``OSError(errno)``. (The broker's own calls live in
``_broker_sys``.)"""

from __future__ import annotations

import os
import sys

import seccomp_bpf

from ._ffi import ffi, lib

ARCH = seccomp_bpf.native_arch()
_NR = {name: seccomp_bpf.syscall_number(name, ARCH)
       for name in ("clone", "rt_sigprocmask", "unshare", "umount2", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
                    "mount_setattr")}

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return int(ret)


def unshare(flags: int) -> None:
    """unshare(2) (``os.unshare`` exists only from Python 3.12)."""
    ffi.errno = 0
    _check(lib.syscall(ffi.cast("long", _NR["unshare"]), ffi.cast("unsigned long", flags)), "unshare")


def clone_into_namespaces(flags: int) -> int:
    """A fork straight into new namespaces (``clone(2)`` with ``flags``, CLONE_NEW*, and
    SIGCHLD): with CLONE_NEWPID the child is PID 1 of its namespace at once, with no relay
    process to fork first. Returns the child's pid in the parent, 0 in the child.

    The raw syscall, not glibc's ``fork``: glibc's fork handlers (its malloc locks, the
    thread's cached TID) do not run, so it is only for a process that has one thread (no
    other thread can hold a lock the child would need); Python's at-fork hooks do not run
    either (the child runs only the launch's own code, then ``execve`` or ``_exit``)."""
    ffi.errno = 0
    zero = ffi.cast("unsigned long", 0)
    return _check(lib.syscall(ffi.cast("long", _NR["clone"]), ffi.cast("unsigned long", flags | _SIGCHLD),
                              zero, zero, zero, zero), "clone")


_SIGCHLD = 17  # the same number on every architecture lsandbox supports

SIG_BLOCK, SIG_SETMASK = 0, 2


def sigprocmask(how: int, mask: int) -> int:
    """``rt_sigprocmask(2)`` of this thread with a 64-bit mask (bit ``n - 1`` for signal
    ``n``); returns the previous mask. Unlike ``signal.pthread_sigmask`` it runs no Python
    signal handler, so none of the caller's can raise between two steps of a launch."""
    new, old = ffi.new("uint64_t *", mask), ffi.new("uint64_t *")
    ffi.errno = 0
    _check(lib.syscall(ffi.cast("long", _NR["rt_sigprocmask"]), ffi.cast("int", how), new, old,
                       ffi.cast("size_t", 8)), "rt_sigprocmask")
    return int(old[0])


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    src = source.encode() if source else ffi.NULL
    fst = fstype.encode() if fstype else ffi.NULL
    _check(lib.mount(src, target.encode(), fst, flags, ffi.NULL), f"mount {target}")


# The new mount API (open_tree/move_mount/fsopen: 5.2; mount_setattr: 5.12). One number on
# every architecture (the unified table).
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_FSOPEN = _NR["open_tree"], _NR["move_mount"], _NR["fsopen"]
SYS_FSCONFIG, SYS_FSMOUNT, SYS_MOUNT_SETATTR = _NR["fsconfig"], _NR["fsmount"], _NR["mount_setattr"]
AT_FDCWD = -100
AT_EMPTY_PATH, AT_RECURSIVE = 0x1000, 0x8000
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
MNT_DETACH = 2


def _long(n: int) -> object:
    return ffi.cast("long", n)


def _str(s: str) -> object:
    return ffi.new("char[]", s.encode())


def _call(nr: int, what: str, *args: object) -> int:
    ffi.errno = 0
    return _check(lib.syscall(_long(nr), *args), what)


def open_tree(path: str, flags: int, dirfd: int = AT_FDCWD) -> int:
    """A detached copy of the mount tree at ``path`` (with OPEN_TREE_CLONE), as an fd."""
    return _call(SYS_OPEN_TREE, f"open_tree {path}", _long(dirfd), _str(path),
                 _long(flags | OPEN_TREE_CLOEXEC))


def move_mount(fd: int, target: str) -> None:
    """Attach the detached tree ``fd`` at ``target``."""
    _call(SYS_MOVE_MOUNT, f"move_mount {target}", _long(fd), _str(""), _long(AT_FDCWD),
          _str(target), _long(MOVE_MOUNT_F_EMPTY_PATH))


def mount_setattr(target: str | int, attr_set: int, attr_clr: int = 0, *, recursive: bool = True) -> None:
    """Set (or clear) MOUNT_ATTR_* on the mount at ``target`` (a path or a mount fd) and,
    ``recursive``, every mount below it."""
    attr = ffi.new("char[32]")  # struct mount_attr {u64 attr_set, attr_clr, propagation, userns_fd}
    ffi.buffer(attr)[0:16] = attr_set.to_bytes(8, sys.byteorder) + attr_clr.to_bytes(8, sys.byteorder)
    flags = AT_RECURSIVE if recursive else 0
    if isinstance(target, int):
        dirfd, path, flags = target, "", flags | AT_EMPTY_PATH
        what = "mount_setattr"
    else:
        dirfd, path, what = AT_FDCWD, target, f"mount_setattr {target}"
    _call(SYS_MOUNT_SETATTR, what, _long(dirfd), _str(path), _long(flags), attr, _long(32))


def fs_mount(fstype: str, options: dict[str, str], attrs: int) -> int:
    """A new, detached filesystem of ``fstype`` (fsopen/fsconfig/fsmount) with mount
    attributes ``attrs``, as an fd."""
    fs = _call(SYS_FSOPEN, f"fsopen {fstype}", _str(fstype), _long(1))  # FSOPEN_CLOEXEC
    try:
        for key, value in options.items():
            _call(SYS_FSCONFIG, f"{fstype} option {key}={value}", _long(fs), _long(FSCONFIG_SET_STRING),
                  _str(key), _str(value), _long(0))
        _call(SYS_FSCONFIG, f"create {fstype}", _long(fs), _long(FSCONFIG_CMD_CREATE), ffi.NULL,
              ffi.NULL, _long(0))
        return _call(SYS_FSMOUNT, f"fsmount {fstype}", _long(fs), _long(1), _long(attrs))  # FSMOUNT_CLOEXEC
    finally:
        os.close(fs)


def umount(target: str, flags: int = 0) -> None:
    _call(_NR["umount2"], f"umount {target}", _str(target), _long(flags))


def mount_data(source: str | None, target: str, fstype: str | None, flags: int, data: str) -> None:
    """mount(2) with filesystem options (``data``)."""
    src = source.encode() if source else ffi.NULL
    fst = fstype.encode() if fstype else ffi.NULL
    _check(lib.mount(src, target.encode(), fst, flags, ffi.new("char[]", data.encode())), f"mount {target}")

