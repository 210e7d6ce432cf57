"""How a brokered call that would block waits: the command's signals and socket timeouts.

Filter B is installed with ``SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`` where the kernel has
it: once the broker has received a notification, the target waits *killably* only, so a
non-fatal signal does not make the kernel abandon a call the broker is performing (a
connect done twice, a send duplicated by the restart). Its cost is that the kernel cannot
interrupt the target: a handled ``SIGUSR1`` stays pending, and then even ``SIGTERM`` is not
delivered (the kernel's fatal-signal shortcut skips a thread that already has a signal
pending), so the command would sit in D state until ``SIGKILL``. So the broker does the
interrupting itself: while a call waits (a full
backlog, a full send buffer), every few milliseconds it reads the target thread's
``/proc/<tgid>/task/<tid>/status`` and, when a signal is pending (thread or process),
not blocked, and either caught or fatal by default, answers ``EINTR`` (or the bytes a
stream send had already sent, as the kernel does). The target then returns, runs its
handler or dies of the fatal signal. Answering ``EINTR`` rather than the kernel's
``ERESTARTSYS`` means an ``SA_RESTART`` handler sees ``EINTR`` instead of a transparent
restart: ``-ERESTARTSYS`` returned to a thread whose signal another thread dequeued
meanwhile would leak to user space as errno 512. Stop signals and signals ignored by
default do not interrupt (the kernel would restart the call after them).

Timeouts: the socket's own ``SO_SNDTIMEO`` (read from the socket object, which the
broker holds) bounds the wait; when it expires the call answers what the kernel answers:
``EAGAIN`` (``EINPROGRESS`` for a TCP connect), or the partial count of a stream send.
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_getsockopt = _libc.getsockopt
_getsockopt.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
SOL_SOCKET, SO_TYPE, SO_SNDBUF, SO_SNDTIMEO_OLD = 1, 3, 7, 21

# Signals that do not interrupt: stop signals (the call resumes after SIGCONT) and those
# whose default action is to ignore (SIGCHLD, SIGCONT, SIGURG, SIGWINCH).
_QUIET = sum(1 << (s - 1) for s in (17, 18, 19, 20, 21, 22, 23, 28))


def _mask(line: bytes) -> int:
    return int(line.split()[1], 16)


def interrupting_signal(tid: int) -> bool:
    """Does thread ``tid`` have a pending, unblocked signal that would interrupt a blocking
    call (caught, or fatal by default)? A vanished thread counts as interrupted."""
    try:
        with open(f"/proc/{tid}/status", "rb") as f:  # a thread's own view (SigPnd is per thread)
            raw = f.read()
    except OSError:
        return True
    m = {}
    for line in raw.split(b"\n"):
        key = line[:6]
        if key in (b"SigPnd", b"ShdPnd", b"SigBlk", b"SigIgn", b"SigCgt"):
            m[key] = _mask(line)
    pending = (m.get(b"SigPnd", 0) | m.get(b"ShdPnd", 0)) & ~m.get(b"SigBlk", 0) & ~m.get(b"SigIgn", 0)
    caught = m.get(b"SigCgt", 0)
    return bool(pending & (caught | ~_QUIET))


def _sockopt_int(fd: int, opt: int) -> int:
    val, size = ctypes.c_int(0), ctypes.c_uint(4)
    if _getsockopt(fd, SOL_SOCKET, opt, ctypes.byref(val), ctypes.byref(size)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return val.value


def sock_type(fd: int) -> int:
    return _sockopt_int(fd, SO_TYPE)


def send_buffer(fd: int) -> int:
    return _sockopt_int(fd, SO_SNDBUF)


def send_timeout(fd: int) -> float:
    """The socket's ``SO_SNDTIMEO`` in seconds; 0 for none."""
    buf = ctypes.create_string_buffer(16)
    size = ctypes.c_uint(16)
    if _getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO_OLD, buf, ctypes.byref(size)) != 0:
        return 0.0
    sec, usec = struct.unpack("=qq", buf.raw)
    return sec + usec / 1e6


def so_error(fd: int) -> int:
    """``SO_ERROR``: the result of a connect that was in progress (and clears it)."""
    return _sockopt_int(fd, 4)
