"""System calls the broker needs that the standard library lacks, via ctypes.

Each wrapper turns ``-1`` + errno into ``OSError``. The broker makes a handful of these
calls per notification, each far cheaper than the seccomp round trip around them. (The per-thread credential calls are in ``_identity``.)
"""

from __future__ import annotations

import ctypes
import os
import struct

import seccomp_bpf as sb
from lsandbox_records import Record

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_connect = _libc.connect
_connect.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
_bind = _libc.bind
_bind.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
_sendto = _libc.sendto
_sendto.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
                    ctypes.c_char_p, ctypes.c_uint)
_sendto.restype = ctypes.c_ssize_t

_ARCH = sb.native_arch()
SYS_PIDFD_GETFD = sb.syscall_number("pidfd_getfd", _ARCH)
SYS_PROCESS_VM_READV = sb.syscall_number("process_vm_readv", _ARCH)
SYS_KCMP = sb.syscall_number("kcmp", _ARCH)
SYS_PROCESS_VM_WRITEV = sb.syscall_number("process_vm_writev", _ARCH)
KCMP_FILES = 2
PIDFD_THREAD = os.O_EXCL  # Linux 6.9: a pidfd for a thread, not only a thread-group leader


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def read_memory(pid: int, addr: int, size: int) -> bytes:
    """``process_vm_readv`` of ``size`` bytes at ``addr`` in thread ``pid``'s address space.
    A short read (the range crosses into unmapped memory) raises EFAULT, as the kernel's own
    copy from the target would fail."""
    if size == 0:
        return b""
    buf = ctypes.create_string_buffer(size)  # lives until this frame returns the copy
    local = _IoVec(ctypes.addressof(buf), size)
    remote = _IoVec(addr, size)
    n = _syscall(SYS_PROCESS_VM_READV, ctypes.c_long(pid), ctypes.byref(local), ctypes.c_ulong(1),
                 ctypes.byref(remote), ctypes.c_ulong(1), ctypes.c_ulong(0))
    if n < 0:
        raise _fail("process_vm_readv")
    if n != size:
        raise OSError(14, "process_vm_readv: short read")
    return buf.raw


def read_vectored(pid: int, iovecs: bytes, total: int) -> bytes:
    """``process_vm_readv`` of the remote ranges ``iovecs`` (a ``struct iovec`` array, as in
    the target's memory; at most 1,024, the kernel's IOV_MAX) into one buffer of ``total``
    bytes: one system call however many ranges. A short read raises EFAULT as
    :func:`read_memory` does."""
    if total == 0:
        return b""
    count = len(iovecs) // 16
    buf = ctypes.create_string_buffer(total)
    local = _IoVec(ctypes.addressof(buf), total)
    n = _syscall(SYS_PROCESS_VM_READV, ctypes.c_long(pid), ctypes.byref(local), ctypes.c_ulong(1),
                 iovecs, ctypes.c_ulong(count), ctypes.c_ulong(0))
    if n < 0:
        raise _fail("process_vm_readv")
    if n != total:
        raise OSError(14, "process_vm_readv: short read")
    return buf.raw


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    """Duplicate the target's fd ``targetfd`` into this process (close-on-exec)."""
    fd = _syscall(SYS_PIDFD_GETFD, ctypes.c_int(pidfd), ctypes.c_int(targetfd), ctypes.c_uint(0))
    if fd < 0:
        raise _fail("pidfd_getfd")
    return int(fd)


def connect(fd: int, addr: bytes) -> None:
    if _connect(fd, addr, len(addr)) != 0:
        raise _fail("connect")


def bind(fd: int, addr: bytes) -> None:
    if _bind(fd, addr, len(addr)) != 0:
        raise _fail("bind")


def sendto(fd: int, data: bytes, flags: int, addr: bytes) -> int:
    n = _sendto(fd, data, len(data), flags, addr, len(addr))
    if n < 0:
        raise _fail("sendto")
    return int(n)



_sendmsg = _libc.sendmsg
_sendmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_sendmsg.restype = ctypes.c_ssize_t
_unshare = _libc.unshare
_unshare.argtypes = (ctypes.c_int,)
CLONE_FS = 0x200


class _MsgHdr(ctypes.Structure):
    _fields_ = (("name", ctypes.c_char_p), ("namelen", ctypes.c_uint),
                ("iov", ctypes.POINTER(_IoVec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_char_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int))


def sendmsg(fd: int, data: bytes, name: bytes | None, control: bytes, flags: int) -> int:
    """``sendmsg`` of one contiguous buffer (the target's iovecs gathered: the same bytes on
    the wire) with a raw address and raw control data."""
    buf = ctypes.create_string_buffer(data, len(data))  # alive until the call returns
    iov = _IoVec(ctypes.addressof(buf), len(data))
    hdr = _MsgHdr(name, len(name) if name else 0, ctypes.pointer(iov), 1,
                  control if control else None, len(control), 0)
    n = _sendmsg(fd, ctypes.addressof(hdr), flags)
    if n < 0:
        raise _fail("sendmsg")
    return int(n)


def write_memory(pid: int, addr: int, data: bytes) -> None:
    """``process_vm_writev`` (used only to report ``sendmmsg``'s per-message lengths)."""
    buf = ctypes.create_string_buffer(data, len(data))  # alive until the call returns
    local = _IoVec(ctypes.addressof(buf), len(data))
    remote = _IoVec(addr, len(data))
    n = _syscall(SYS_PROCESS_VM_WRITEV, ctypes.c_long(pid),
                 ctypes.byref(local), ctypes.c_ulong(1), ctypes.byref(remote), ctypes.c_ulong(1),
                 ctypes.c_ulong(0))
    if n != len(data):
        raise _fail("process_vm_writev")


def unshare_fs() -> None:
    """Give the calling thread its own cwd (so a broker thread may ``fchdir`` alone)."""
    if _unshare(CLONE_FS) != 0:
        raise _fail("unshare(CLONE_FS)")


_getsockopt = _libc.getsockopt
_getsockopt.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
SOL_SOCKET, SO_DOMAIN = 1, 39


def so_domain(fd: int) -> int:
    """``getsockopt(SO_DOMAIN)``: the family of the socket object behind ``fd``."""
    val, size = ctypes.c_int(0), ctypes.c_uint(4)  # locals: alive for the call
    if _getsockopt(fd, SOL_SOCKET, SO_DOMAIN, ctypes.byref(val), ctypes.byref(size)) != 0:
        raise _fail("getsockopt(SO_DOMAIN)")
    return val.value


_statx = _libc.statx
_statx.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)
AT_EMPTY_PATH, STATX_BASIC_STATS, STATX_BTIME = 0x1000, 0x7FF, 0x800
_STX_HEAD = struct.Struct("=IIQIIIHH QQQQ")  # mask .. attributes_mask (64 bytes)
_STX_TS = struct.Struct("=qI4x")


class Statx(Record):
    mode: int
    dev: int
    ino: int
    ctime_ns: int
    btime_ns: int | None  # None where the filesystem keeps no birth time


def statx(fd: int) -> Statx:
    """``statx(fd, "", AT_EMPTY_PATH)`` with the birth time (os.stat has none on Linux)."""
    buf = ctypes.create_string_buffer(256)
    if _statx(fd, b"", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, buf) != 0:
        raise _fail("statx")
    raw = buf.raw
    mask, _, _, _, _, _, mode, _, ino, _, _, _ = _STX_HEAD.unpack_from(raw, 0)
    bsec, bnsec = _STX_TS.unpack_from(raw, 80)
    csec, cnsec = _STX_TS.unpack_from(raw, 96)
    major, minor = struct.unpack_from("=II", raw, 136)
    btime = bsec * 1_000_000_000 + bnsec if mask & STATX_BTIME else None
    return Statx(mode, os.makedev(major, minor), ino, csec * 1_000_000_000 + cnsec, btime)


def same_fd_table(pid1: int, pid2: int) -> bool:
    """``kcmp(KCMP_FILES)``: do the two tasks share one descriptor table?"""
    r = _syscall(SYS_KCMP, ctypes.c_long(pid1), ctypes.c_long(pid2), ctypes.c_long(KCMP_FILES),
                 ctypes.c_ulong(0), ctypes.c_ulong(0))
    if r < 0:
        raise _fail("kcmp")
    return r == 0
