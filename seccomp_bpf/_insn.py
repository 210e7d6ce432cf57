"""``struct sock_filter``: one classic BPF instruction, immutable, with encode/decode."""

from __future__ import annotations

import struct

from lsandbox_records import Record

_FMT = struct.Struct("=HBBI")
SIZE = _FMT.size  # 8


class SockFilter(Record):
    """``code`` (u16), ``jt``/``jf`` (u8 relative jumps), ``k`` (u32)."""

    code: int
    jt: int
    jf: int
    k: int

    def __post_init__(self) -> None:
        if not (0 <= self.code <= 0xFFFF and 0 <= self.jt <= 255 and 0 <= self.jf <= 255
                and 0 <= self.k <= 0xFFFFFFFF):
            raise ValueError(f"instruction field out of range: {self}")

    def encode(self) -> bytes:
        return _FMT.pack(self.code, self.jt, self.jf, self.k)

    @classmethod
    def decode(cls, data: bytes) -> SockFilter:
        return cls(*_FMT.unpack(data))


def encode_program(insns: list[SockFilter] | tuple[SockFilter, ...]) -> bytes:
    return b"".join(i.encode() for i in insns)


def decode_program(data: bytes) -> tuple[SockFilter, ...]:
    if len(data) % SIZE:
        raise ValueError(f"program length {len(data)} is not a multiple of {SIZE}")
    return tuple(SockFilter.decode(data[i : i + SIZE]) for i in range(0, len(data), SIZE))
