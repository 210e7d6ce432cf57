"""Typed wrappers for the syscalls the standard library lacks: raw ``clone`` with namespace
flags, ``mount``, ``openat2``, ``pidfd_getfd``, ``process_vm_readv``, ``connect``/``bind`` on
a raw sockaddr. ``-1`` becomes ``OSError(errno)``."""

from __future__ import annotations

import ctypes
import os
import signal

import seccomp_bpf

from ._ffi import SYS, ffi, lib

ARCH = seccomp_bpf.native_arch()
_NR = SYS.get(ARCH, SYS["x86_64"])

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
RESOLVE_NO_MAGICLINKS = 0x02
PIDFD_THREAD = os.O_EXCL


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return int(ret)


def clone_process(flags: int) -> int:
    """fork() with namespace ``flags``: returns 0 in the child, the child's pid in the parent.

    Python's own fork bookkeeping (locks, at-fork hooks, thread state) is run around the raw
    syscall through the C API functions ``os.fork`` itself uses.
    """
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    ffi.errno = 0
    pid = lib.syscall(ffi.cast("long", _NR["clone"]), ffi.cast("unsigned long", flags | signal.SIGCHLD),
                      ffi.cast("unsigned long", 0), ffi.NULL, ffi.NULL, ffi.cast("unsigned long", 0))
    err = ffi.errno
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return int(pid)


def unshare(flags: int) -> None:
    """unshare(2) (``os.unshare`` exists only from Python 3.12)."""
    ffi.errno = 0
    _check(lib.syscall(ffi.cast("long", _NR["unshare"]), ffi.cast("unsigned long", flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    src = source.encode() if source else ffi.NULL
    fst = fstype.encode() if fstype else ffi.NULL
    _check(lib.mount(src, target.encode(), fst, flags, ffi.NULL), f"mount {target}")


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    how = ffi.new("struct open_how *", {"flags": flags, "mode": 0, "resolve": resolve})
    cpath = ffi.new("char[]", path.encode("utf-8", "surrogateescape"))
    ffi.errno = 0
    # ``how`` and ``cpath`` live until the call returns (locals of this frame)
    return _check(lib.syscall(ffi.cast("long", _NR["openat2"]), ffi.cast("int", dirfd), cpath,
                              how, ffi.cast("size_t", ffi.sizeof("struct open_how"))), "openat2")


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    ffi.errno = 0
    return _check(lib.syscall(ffi.cast("long", _NR["pidfd_getfd"]), ffi.cast("int", pidfd),
                              ffi.cast("int", targetfd), ffi.cast("unsigned int", 0)), "pidfd_getfd")


class RemoteReader:
    """Reads the target's memory with ``process_vm_readv``; one preallocated buffer per
    broker thread (it lives as long as this object; the kernel writes into it during the call)."""

    SIZE = 4096

    def __init__(self) -> None:
        self.buf = ffi.new("char[]", self.SIZE)
        self.local = ffi.new("struct iovec *")
        self.remote = ffi.new("struct iovec *")
        self.local.iov_base = self.buf

    def read(self, pid: int, addr: int, size: int) -> bytes:
        size = min(size, self.SIZE)
        self.local.iov_len = size
        self.remote.iov_base = ffi.cast("void *", addr)
        self.remote.iov_len = size
        ffi.errno = 0
        n = lib.process_vm_readv(pid, self.local, 1, self.remote, 1, 0)
        if n < 0:
            err = ffi.errno
            raise OSError(err, f"process_vm_readv: {os.strerror(err)}")
        return ffi.unpack(self.buf, n)


def sock_call(fn: str, fd: int, addr: bytes) -> int:
    """``connect``/``bind`` with a raw sockaddr; returns 0 or a positive errno."""
    ffi.errno = 0
    ret = getattr(lib, fn)(fd, addr, len(addr))
    return 0 if ret == 0 else ffi.errno
