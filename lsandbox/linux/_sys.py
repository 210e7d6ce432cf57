"""Typed wrappers for the launcher's syscalls the standard library lacks (Python 3.10/3.11):
``unshare`` and ``mount``. ``-1`` becomes ``OSError(errno)``. (The broker's own calls live in
``_broker_sys``.)"""

from __future__ import annotations

import os

import seccomp_bpf

from ._ffi import SYS, ffi, lib

ARCH = seccomp_bpf.native_arch()
_NR = SYS.get(ARCH, SYS["x86_64"])

CLONE_NEWNS = 0x00020000
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


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    src = source.encode() if source else ffi.NULL
    fst = fstype.encode() if fstype else ffi.NULL
    _check(lib.mount(src, target.encode(), fst, flags, ffi.NULL), f"mount {target}")
