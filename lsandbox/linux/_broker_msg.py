"""The target's ``msghdr``, ``iovec`` and control messages, parsed from bytes the broker read.

Kept apart from the I/O so the layout (x86-64/aarch64 LP64) and the checks the kernel makes
(``UIO_MAXIOV``, cmsg lengths) are in one place. SCM_CREDENTIALS is refused: the
supervisor's credentials would vouch for it. SCM_RIGHTS descriptors are the target's and
are translated to the broker's copies by the caller's ``getfd``.
"""

from __future__ import annotations

import errno
import os
import struct

from ._broker_fail import Fail

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

UIO_MAXIOV = 1024
SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
IOVEC = struct.Struct("=QQ")
CMSG = struct.Struct("=Qii")  # len, level, type
MMSG_SIZE = MSGHDR.size + 8  # mmsghdr: msghdr + unsigned msg_len (+ padding)
CONTROL_MAX = 1 << 16  # control bytes read per message


class MsgHdr:
    """The pointers and lengths of one ``struct msghdr`` (addresses in the target)."""

    __slots__ = ("name", "namelen", "iov", "iovlen", "control", "controllen")

    def __init__(self, hdr: bytes) -> None:
        (self.name, self.namelen, self.iov, self.iovlen, self.control, self.controllen,
         _) = MSGHDR.unpack(hdr)


def total(iovecs: bytes) -> int:
    """The byte count of a ``struct iovec`` array."""
    return sum(struct.unpack(f"={len(iovecs) // 8}Q", iovecs)[1::2])


def checked_total(iovecs: bytes) -> int:
    """The byte count of a message's ``struct iovec`` array; EINVAL as the kernel's when
    it does not fit an ``ssize_t``."""
    size = total(iovecs)
    if size >= 1 << 63:
        raise Fail(errno.EINVAL)
    return size


def slice_iovecs(iovecs: bytes, start: int, size: int) -> bytes:
    """The ``struct iovec`` array covering bytes ``[start, start + size)`` of ``iovecs``."""
    words = struct.unpack(f"={len(iovecs) // 8}Q", iovecs)
    out: list[int] = []
    pos = 0
    for base, ln in zip(words[::2], words[1::2], strict=True):
        if pos + ln > start and size > 0:
            skip = max(0, start - pos)
            take = min(ln - skip, size)
            if take > 0:
                out += (base + skip, take)
                size -= take
        pos += ln
        if size <= 0:
            break
    return struct.pack(f"={len(out)}Q", *out)


def translate_control(raw: bytes, getfd: Callable[[int], int]) -> tuple[bytes, list[int]]:
    """``raw`` control messages with every SCM_RIGHTS descriptor replaced by ``getfd`` of it;
    returns (the bytes to send, the descriptors to close after the send)."""
    out = bytearray(raw)
    fds: list[int] = []
    off = 0
    try:
        while off + CMSG.size <= len(raw):
            clen, level, ctype = CMSG.unpack_from(raw, off)
            if clen < CMSG.size or off + clen > len(raw):
                raise Fail(errno.EINVAL)
            if level == SOL_SOCKET and ctype == SCM_CREDENTIALS:
                raise Fail(errno.EPERM)
            if level == SOL_SOCKET and ctype == SCM_RIGHTS:
                count = (clen - CMSG.size) // 4
                theirs = struct.unpack_from(f"={count}i", raw, off + CMSG.size)
                ours = []
                for t in theirs:
                    ours.append(getfd(t))
                    fds.append(ours[-1])
                struct.pack_into(f"={count}i", out, off + CMSG.size, *ours)
            off += (clen + 7) & ~7
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return bytes(out), fds
