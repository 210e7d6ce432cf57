"""The kernel interface: ``seccomp(2)`` and the user-notification ioctls.

``seccomp(2)`` goes through cffi (it takes a pointer to a ``sock_fprog``). The notification
ioctls are on the broker's hot path (one RECV, one or more ID_VALID and one SEND per
brokered syscall), so they use ``fcntl.ioctl`` on buffers preallocated per thread and
``struct``, which costs less than a cffi call with its buffer handling. Errors are
``OSError`` with the errno the kernel returned.

Why there is no CONTINUE helper in the broker: ``SECCOMP_USER_NOTIF_FLAG_CONTINUE`` lets
the kernel run the syscall with the target's *current* memory and fds after the supervisor
looked at them: a racing thread can swap the address in between (seccomp_unotify(2) warns
about exactly this). ``NOTIF_FLAG_CONTINUE`` is exported only for completeness.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import os
import struct
from _thread import _local  # threading.local itself, without importing threading

from lsandbox_records import Record

from ._ffi import ffi, lib
from ._tables import native_arch, syscall_number

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._compiler import Program
    from ._rules import Action

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3

FLAG_TSYNC = 1 << 0
FLAG_LOG = 1 << 1
FLAG_SPEC_ALLOW = 1 << 2
FLAG_NEW_LISTENER = 1 << 3
FLAG_TSYNC_ESRCH = 1 << 4
FLAG_WAIT_KILLABLE_RECV = 1 << 5

NOTIF_FLAG_CONTINUE = 1
ADDFD_FLAG_SETFD = 1
ADDFD_FLAG_SEND = 2
USER_NOTIF_FD_SYNC_WAKE_UP = 1

PR_SET_NO_NEW_PRIVS = 38


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("!") << 8) | nr


def _iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (ord("!") << 8) | nr


_NOTIF = struct.Struct("=QIIiIQ6Q")  # id, pid, flags, data{nr, arch, ip, args[6]}
_RESP = struct.Struct("=QqiI")  # id, val, error, flags
_ADDFD = struct.Struct("=QIIII")  # id, flags, srcfd, newfd, newfd_flags
_U64 = struct.Struct("=Q")
NOTIF_SIZE, RESP_SIZE = _NOTIF.size, _RESP.size  # 80, 24

IOCTL_NOTIF_RECV = _iowr(0, _NOTIF.size)
IOCTL_NOTIF_SEND = _iowr(1, _RESP.size)
IOCTL_NOTIF_ID_VALID = _iow(2, 8)
IOCTL_NOTIF_ADDFD = _iow(3, _ADDFD.size)
IOCTL_NOTIF_SET_FLAGS = _iow(4, 8)


_NR_SECCOMP = ffi.cast("long", syscall_number("seccomp", native_arch()))


def _syscall_seccomp(op: int, flags: int, arg: object) -> int:
    ffi.errno = 0
    ret = lib.syscall(_NR_SECCOMP, ffi.cast("unsigned int", op),
                      ffi.cast("unsigned int", flags), arg)
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"seccomp: {os.strerror(err)}")
    return int(ret)


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)``: required to install a filter without CAP_SYS_ADMIN."""
    if lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ffi.errno
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")


def install_filter(program: Program | bytes, *, flags: int = 0) -> int | None:
    """Install ``program`` on the calling thread (all threads with FLAG_TSYNC).

    ``program`` may also be the encoded instructions (``Program.to_bytes()``): a launcher can
    encode in one process and install in a forked child without building objects there.
    Returns the listener fd when ``FLAG_NEW_LISTENER`` is set, else None. The caller must have
    set no_new_privs or hold CAP_SYS_ADMIN. Irreversible: call it in the process to confine.
    """
    code = program if isinstance(program, bytes) else program.to_bytes()
    if not code or len(code) % 8:
        raise ValueError(f"a filter program is a non-empty multiple of 8 bytes, not {len(code)}")
    n = len(code) // 8
    # Both buffers live until the syscall returns (locals of this frame); the kernel copies them.
    buf = ffi.new("struct sock_filter[]", n)
    ffi.memmove(buf, code, len(code))
    prog = ffi.new("struct sock_fprog *", {"len": n, "filter": buf})
    ret = _syscall_seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)
    return ret if flags & FLAG_NEW_LISTENER else None


def action_available(action: Action | int) -> bool:
    """``SECCOMP_GET_ACTION_AVAIL``: does this kernel know the action?"""
    raw = action if isinstance(action, int) else action.raw
    val = ffi.new("uint32_t *", raw & 0xFFFF0000)  # lives until the call returns
    try:
        _syscall_seccomp(SECCOMP_GET_ACTION_AVAIL, 0, val)
    except OSError as e:
        if e.errno == _errno.EOPNOTSUPP:
            return False
        raise
    return True


def flag_supported(flag: int) -> bool:
    """Probe a filter flag without installing anything: the kernel validates flags before
    the program, so an invalid flag gives EINVAL while a NULL program gives EFAULT.
    WAIT_KILLABLE_RECV is only valid with NEW_LISTENER, so it is probed with it."""
    if flag & FLAG_WAIT_KILLABLE_RECV:
        flag |= FLAG_NEW_LISTENER
    try:
        _syscall_seccomp(SECCOMP_SET_MODE_FILTER, flag, ffi.NULL)
    except OSError as e:
        return e.errno == _errno.EFAULT
    return True  # pragma: no cover - a NULL program cannot succeed


def notif_sizes() -> tuple[int, int, int]:
    """(sizeof seccomp_notif, seccomp_notif_resp, seccomp_data) as the kernel sees them."""
    sizes = ffi.new("struct seccomp_notif_sizes *")  # lives until the call returns
    _syscall_seccomp(SECCOMP_GET_NOTIF_SIZES, 0, sizes)
    return sizes.seccomp_notif, sizes.seccomp_notif_resp, sizes.seccomp_data


class Notification(Record):
    id: int
    pid: int  # a thread id in the supervisor's pid namespace
    flags: int
    nr: int
    arch: int
    instruction_pointer: int
    args: tuple[int, int, int, int, int, int]


class _Buffers(_local):
    """Per-thread buffers: several broker threads may RECV/SEND at once. Each lives as long
    as its thread; ``fcntl.ioctl`` copies in and out of them during the call."""

    def __init__(self) -> None:
        self.notif = bytearray(NOTIF_SIZE)
        self.resp = bytearray(RESP_SIZE)
        self.u64 = bytearray(8)


_bufs = _Buffers()
_ZERO_NOTIF = bytes(NOTIF_SIZE)


def notif_recv(fd: int) -> Notification:
    """Receive one notification (blocks; poll the fd first). The kernel requires a zeroed
    buffer, so it is cleared before each call."""
    buf = _bufs.notif
    buf[:] = _ZERO_NOTIF
    fcntl.ioctl(fd, IOCTL_NOTIF_RECV, buf, True)
    nid, pid, flags, nr, arch, ip, *args = _NOTIF.unpack(buf)
    return Notification(nid, pid, flags, nr, arch, ip, tuple(args))


def notif_send(fd: int, id: int, *, val: int = 0, error: int = 0, flags: int = 0) -> None:
    """Answer notification ``id``: the syscall returns ``val``, or fails with ``error``
    (a positive errno; sent negated as the kernel expects)."""
    buf = _bufs.resp
    _RESP.pack_into(buf, 0, id, val, -error if error > 0 else error, flags)
    fcntl.ioctl(fd, IOCTL_NOTIF_SEND, buf, True)


def notif_id_valid(fd: int, id: int) -> bool:
    """Is the target still blocked in the syscall of notification ``id``?"""
    buf = _bufs.u64
    _U64.pack_into(buf, 0, id)
    try:
        fcntl.ioctl(fd, IOCTL_NOTIF_ID_VALID, buf, True)
    except OSError as e:
        if e.errno == _errno.ENOENT:
            return False
        raise
    return True


def notif_addfd(fd: int, id: int, srcfd: int, *, newfd: int | None = None, newfd_flags: int = 0,
                setfd: bool = False, send: bool = False) -> int:
    """Install ``srcfd`` into the target (at ``newfd`` with ``setfd``); returns the fd number in
    the target (with ``send``, also answers the notification with that number)."""
    flags = (ADDFD_FLAG_SETFD if setfd else 0) | (ADDFD_FLAG_SEND if send else 0)
    if setfd and newfd is None:
        raise ValueError("setfd needs newfd")
    buf = bytearray(_ADDFD.pack(id, flags, srcfd, newfd or 0, newfd_flags))
    return fcntl.ioctl(fd, IOCTL_NOTIF_ADDFD, buf, True)


def set_listener_flags(fd: int, flags: int) -> None:
    """``SECCOMP_IOCTL_NOTIF_SET_FLAGS`` (e.g. USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6+).

    Unlike the other notification ioctls, the argument is the flags *value*, not a pointer
    (the ioctl number's ``__u64`` notwithstanding): passing a buffer reads as an unknown flag
    and fails with EINVAL."""
    fcntl.ioctl(fd, IOCTL_NOTIF_SET_FLAGS, flags)
