"""Brokered sends with an address: ``sendto``, ``sendmsg`` and ``sendmmsg``.

The broker performs them with the payload copied out of the target (SCM_RIGHTS fds fetched
with ``pidfd_getfd``; SCM_CREDENTIALS refused). Cost: every ``sendmsg``/``sendmmsg`` of the
workload (also on TCP/UDP sockets) pays a notification round trip plus the copy; plain
``send``/``write`` on connected sockets and ``sendto`` without an address pay nothing.

Memory per in-flight send is bounded: a datagram (any non-stream socket) larger than
``max(SO_SNDBUF, 64 KiB)`` is refused with EMSGSIZE before anything is copied (the kernel
refuses an AF_UNIX datagram larger than its send buffer anyway, and a UDP one above
64 KiB); a stream send is copied and sent ``STREAM_CHUNK`` bytes at a time. A message's
iovecs are read with one ``process_vm_readv`` (up to 1,024 ranges per call), and
``sendmmsg``'s headers with one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

import seccomp_bpf as sb

from . import _broker_sys as sysc
from . import _waits
from ._broker_decide import Denied, Quiet
from ._broker_fail import Fail
from ._broker_msg import (
    CONTROL_MAX,
    IOVEC,
    MMSG_SIZE,
    MSGHDR,
    UIO_MAXIOV,
    MsgHdr,
    checked_total,
    slice_iovecs,
    translate_control,
)
from ._broker_ops import INTERRUPTED, POLL_S, Held
from ._sockaddr import AF_UNIX, family

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._broker import Broker
    from ._broker_ops import Reply

STREAM_CHUNK = 256 << 10  # bytes of a stream send held at once
MIN_DGRAM_LIMIT = 64 << 10  # datagrams up to max(SO_SNDBUF, this) are copied, larger: EMSGSIZE
MSG_DONTWAIT = 0x40
SOCK_STREAM = 1


class _Wait:
    """The waiting state of one brokered send (its deadline spans all its chunks)."""

    __slots__ = ("waiting", "deadline", "stream")

    def __init__(self) -> None:
        self.waiting, self.deadline, self.stream = False, 0.0, -1


def dest(b: Broker, n: sb.Notification, held: Held, sock: int,
         addr: bytes | None) -> bytes | None | Denied | Quiet:
    """Decide a send's destination: the address to use (a pin it needs is ``held``), or the
    verdict that refuses it."""
    if addr is None:
        return None
    dom = sysc.so_domain(sock)
    if dom == AF_UNIX and family(addr) == AF_UNIX:
        target = b.targets.unix_target(n.pid, addr, "sendto")
        if not isinstance(target, tuple):
            return target
        held.fd(target[1])
        return target[0]
    if dom != AF_UNIX:
        refused = b.inet_allowed(n, dom, addr, bind=False)
        if refused is not None:
            return refused
    return addr


def op_sendto(b: Broker, n: sb.Notification) -> Reply:
    fd, buf, size, flags, aptr, alen = n.args
    addr = b.read_addr(n, aptr, alen) if aptr else None
    with Held() as held:
        sock = held.fd(b.getfd(n, fd))
        to = dest(b, n, held, sock, addr)
        if isinstance(to, (Denied, Quiet)):
            return to
        return transmit(b, n, sock, IOVEC.pack(buf, size), size, to, b"", flags & 0xFFFFFFFF)


def op_sendmsg(b: Broker, n: sb.Notification) -> Reply:
    hdr = b.read(n, n.args[1], MSGHDR.size)
    with Held() as held:
        sock = held.fd(b.getfd(n, n.args[0]))
        return _sendmsg_one(b, n, sock, hdr, n.args[2] & 0xFFFFFFFF)


def op_sendmmsg(b: Broker, n: sb.Notification) -> Reply:
    fd, vec, vlen, flags = n.args[0], n.args[1], min(n.args[2] & 0xFFFFFFFF, UIO_MAXIOV), n.args[3]
    if vlen == 0:
        return 0
    headers = b.read(n, vec, vlen * MMSG_SIZE)  # every mmsghdr in one read
    with Held() as held:
        sock = held.fd(b.getfd(n, fd))
        sent = 0
        for i in range(vlen):
            try:
                ln = _sendmsg_one(b, n, sock, headers[i * MMSG_SIZE:i * MMSG_SIZE + MSGHDR.size],
                                  flags & 0xFFFFFFFF)
            except (Fail, OSError):
                if sent == 0:
                    raise
                break
            if not isinstance(ln, int):
                if sent == 0:
                    return ln
                break
            b.valid(n)  # the target still waits in this call: its pid is not another's yet
            sysc.write_memory(n.pid, vec + i * MMSG_SIZE + MSGHDR.size, struct.pack("=I", ln))
            sent += 1
        return sent


def _sendmsg_one(b: Broker, n: sb.Notification, sock: int, hdr: bytes, flags: int) -> Reply:
    m = MsgHdr(hdr)
    addr = b.read_addr(n, m.name, m.namelen) if m.name and m.namelen else None
    if m.iovlen > UIO_MAXIOV:
        raise Fail(errno.EMSGSIZE)
    segs = b.read(n, m.iov, m.iovlen * IOVEC.size) if m.iovlen else b""
    size = checked_total(segs)
    with Held() as held:
        control = b""
        if m.control and m.controllen:
            raw = b.read(n, m.control, min(m.controllen, CONTROL_MAX))
            control, fds = translate_control(raw, lambda t: b.getfd(n, t))
            for passed in fds:
                held.fd(passed)
        to = dest(b, n, held, sock, addr)
        if isinstance(to, (Denied, Quiet)):
            return to
        return transmit(b, n, sock, segs, size, to, control, flags)


def transmit(b: Broker, n: sb.Notification, sock: int, segs: bytes, size: int,
             to: bytes | None, control: bytes, flags: int) -> int:
    """Send the target's ``size`` bytes at ``segs`` (its ``struct iovec`` array) as the kernel
    would, with bounded memory. Up to 64 KiB is read and sent in one go (the common case:
    no socket type needed); above that a non-stream socket gets one datagram if it fits
    ``SO_SNDBUF`` (else EMSGSIZE) and a stream socket ``STREAM_CHUNK`` bytes at a time. A
    stream send goes on until all is sent, or, once some bytes are, until it would block on
    a non-blocking call or a signal or ``SO_SNDTIMEO`` stops it: then the partial count, as
    the kernel returns it (only a stream send can be partial)."""
    chunk = size
    if size > MIN_DGRAM_LIMIT:
        if _waits.sock_type(sock) == SOCK_STREAM:
            chunk = STREAM_CHUNK
        elif size > _waits.send_buffer(sock):
            raise Fail(errno.EMSGSIZE)
    wait = _Wait()
    sent = 0
    try:
        while True:
            part = segs if sent == 0 and chunk >= size else slice_iovecs(segs, sent, chunk)
            data = _read_segments(b, n, part, min(chunk, size - sent))
            try:
                k = _send_one(b, n, sock, data, to, control if sent == 0 else b"", flags, wait)
            except OSError:
                if sent:
                    return sent  # what the kernel returns once some bytes went out
                raise
            if k < 0:  # the wait ended: interrupted or timed out
                if sent:
                    return sent
                raise Fail(errno.EINTR if k == -INTERRUPTED else errno.EAGAIN)
            sent += k
            if sent >= size or (k < len(data) and _nonblocking(sock, flags)):
                return sent
    finally:
        if wait.waiting:
            b.pool.wait_end()


def _nonblocking(sock: int, flags: int) -> bool:
    return bool(flags & MSG_DONTWAIT) or bool(fcntl.fcntl(sock, fcntl.F_GETFL) & os.O_NONBLOCK)


def _send_one(b: Broker, n: sb.Notification, sock: int, data: bytes, to: bytes | None,
              control: bytes, flags: int, wait: _Wait) -> int:
    """One ``sendmsg`` (MSG_DONTWAIT): the count sent; when it would block and the target's
    call blocks, wait for room as a connect does (POLLOUT on a stream socket; a datagram's
    room is the receiver's, which poll does not show, so that is retried every few ms), and
    return ``-INTERRUPTED``/``-TIMED_OUT`` when the wait ends. ``wait`` carries the call's
    deadline across the sends of one stream call."""
    delay = 0.001
    while True:
        try:
            return int(b.bare(b.sys_sendmsg, sock, data, to, control, flags | MSG_DONTWAIT))
        except OSError as e:
            if e.errno != errno.EAGAIN or _nonblocking(sock, flags):
                raise
        if not wait.waiting:
            wait.waiting = True
            b.pool.wait_begin()
            timeout = _waits.send_timeout(sock)
            wait.deadline = time.monotonic() + timeout if timeout else 0.0
            wait.stream = sock if _waits.sock_type(sock) == SOCK_STREAM else -1
        ended = b.pause(n, wait.deadline, delay, wait.stream)
        if ended:
            return -ended
        delay = min(delay * 2, POLL_S)


def _read_segments(b: Broker, n: sb.Notification, segs: bytes, size: int) -> bytes:
    try:
        data = sysc.read_vectored(n.pid, segs, size)
    except OSError as e:
        raise Fail(errno.EFAULT if e.errno in (errno.EFAULT, 14) else errno.ESRCH) from e
    b.valid(n)
    return data
