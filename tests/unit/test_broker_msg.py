"""The broker's msghdr/iovec/cmsg parsing, on bytes built here (no kernel, no target)."""

from __future__ import annotations

import errno
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsandbox.linux._broker_fail import Fail
from lsandbox.linux._broker_msg import (
    CMSG,
    MSGHDR,
    SCM_CREDENTIALS,
    SCM_RIGHTS,
    SOL_SOCKET,
    MsgHdr,
    slice_iovecs,
    total,
    translate_control,
)


def _iov(*pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack("=QQ", base, ln) for base, ln in pairs)


def test_msghdr_fields() -> None:
    m = MsgHdr(MSGHDR.pack(0x1000, 16, 0x2000, 3, 0x3000, 24, 0))
    assert (m.name, m.namelen, m.iov, m.iovlen, m.control, m.controllen) == (0x1000, 16, 0x2000, 3, 0x3000, 24)


@given(st.lists(st.tuples(st.integers(0, 1 << 40), st.integers(0, 1000)), max_size=8),
       st.integers(0, 9000), st.integers(0, 9000))
def test_slice_covers_exactly_the_range(pairs: list[tuple[int, int]], start: int, size: int) -> None:
    segs = _iov(*pairs)
    flat = [base + i for base, ln in pairs for i in range(ln)]  # every byte's address
    cut = slice_iovecs(segs, start, size)
    got = [base + i for base, ln in struct.iter_unpack("=QQ", cut) for i in range(ln)]
    assert got == flat[start:start + size]
    assert total(cut) == len(got)


def _cmsg(level: int, ctype: int, data: bytes) -> bytes:
    raw = CMSG.pack(CMSG.size + len(data), level, ctype) + data
    return raw + b"\0" * (-len(raw) % 8)


def test_rights_are_translated_and_credentials_refused() -> None:
    raw = _cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack("=2i", 7, 9))
    mine = {7: os.dup(0), 9: os.dup(0)}
    out, fds = translate_control(raw, mine.__getitem__)
    try:
        assert fds == [mine[7], mine[9]]
        assert struct.unpack_from("=2i", out, CMSG.size) == (mine[7], mine[9])
    finally:
        for fd in fds:
            os.close(fd)
    with pytest.raises(Fail) as e:
        translate_control(_cmsg(SOL_SOCKET, SCM_CREDENTIALS, b"\0" * 12), mine.__getitem__)
    assert e.value.err == errno.EPERM


def test_a_failing_getfd_leaks_nothing() -> None:
    raw = _cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack("=2i", 1, 2))
    got: list[int] = []

    def getfd(theirs: int) -> int:
        if theirs == 2:
            raise Fail(errno.EBADF)
        got.append(os.dup(0))
        return got[-1]

    with pytest.raises(Fail):
        translate_control(raw, getfd)
    with pytest.raises(OSError):
        os.fstat(got[0])  # closed by translate_control


def test_bad_cmsg_length() -> None:
    with pytest.raises(Fail) as e:
        translate_control(CMSG.pack(4, SOL_SOCKET, SCM_RIGHTS), lambda t: t)
    assert e.value.err == errno.EINVAL
