"""The child's reports to the supervisor: small typed records over the CLOEXEC report pipe.

Every process between the fork and the command (the relay where there is one, init, the
command before its ``execve``) writes whole records with one ``write`` each: a fixed header (kind, step, errno,
value, text length) and UTF-8 text. A record is at most ``PIPE_BUF`` bytes, so records of
different processes never interleave. The supervisor decodes them into :class:`Report`s and
acts on the kind and step, never on the text: the text is only ever shown to the user.

``Kind`` and ``Step`` are plain integer constants, not ``enum`` classes: this module is
imported by every launch, and making an enum class costs more than the rest of it.
"""

from __future__ import annotations

import os
import struct

from lsandbox_records import Record


class Kind:
    """What a record says."""

    NOTE = 1  # text for the user; the sandbox runs
    SETUP = 2  # a setup step failed (``step``, ``errno``); the child exits 125
    EXEC = 3  # execve of the command failed (``errno``); the child exits 126/127
    STATUS = 4  # the command ended: ``value`` is its wait status
    RESTRICTED = 5  # ``value``: the pid that restricted itself (init), for audit matching
    NAMESPACES_REFUSED = 6  # unshare refused (``errno``): the supervisor runs the fallback plan
    NETNS_REFUSED = 7  # only the network namespace refused: running without it (a note)


class Step:
    """Where in the child a record comes from."""

    START = 0  # before any step (pdeathsig, fds)
    UNSHARE = 1
    NAMESPACES = 2  # uid/gid maps, loopback, the read-only mount view
    PROXY = 3  # the proxied network's listener hand-over
    PROCFS = 4
    CHDIR = 5
    CAPABILITIES = 6
    RESTRICT = 7  # no_new_privs, Landlock, filters B and A
    INIT = 8  # init forking the command, serving as PID 1
    EXEC = 9


KINDS = frozenset(v for k, v in vars(Kind).items() if k.isupper())
STEPS = frozenset(v for k, v in vars(Step).items() if k.isupper())
_HEADER = struct.Struct("<BBHqH")  # kind, step, errno, value, text length
MAX_TEXT = 4000  # header + text stay below PIPE_BUF (4096): one atomic write


class Report(Record):
    kind: int  # a Kind
    step: int = Step.START  # a Step
    errno: int = 0
    value: int = 0
    text: str = ""


def encode(report: Report) -> bytes:
    text = report.text.replace("\n", " ").encode(errors="replace")[:MAX_TEXT]
    return _HEADER.pack(report.kind, report.step, report.errno & 0xFFFF, report.value, len(text)) + text


def send(fd: int, kind: int, *, step: int = Step.START, errno: int = 0, value: int = 0, text: str = "") -> None:
    os.write(fd, encode(Report(kind, step, errno, value, text)))


def decode(data: bytes) -> list[Report]:
    """The records in ``data``; a truncated tail (a writer killed mid-way cannot cause one:
    each record is one write) is ignored."""
    out: list[Report] = []
    at, size = 0, _HEADER.size
    while at + size <= len(data):
        kind, step, err, value, length = _HEADER.unpack_from(data, at)
        at += size
        text = data[at:at + length].decode(errors="replace")
        at += length
        if kind in KINDS and step in STEPS:  # else not from this version of the child
            out.append(Report(kind, step, err, value, text))
    return out


def read_all(fd: int) -> list[Report]:
    """Every record until all writers closed the pipe; closes ``fd``."""
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    return decode(data)
