"""Filters A and B, encoded ahead of time: the launch path reads them, it never compiles.

Both filters are functions of a handful of booleans (and the architecture), not of the
policy's paths or addresses: filter A of (network, unix_dgram, truncate_guard, report,
netlink, pidns), filter B of (network, datagrams, report, paths, meta). Every combination is
compiled by ``scripts/generate.py`` into the committed data files ``_filters_x86_64.bin`` and
``_filters_aarch64.bin``; a unit test checks that each entry is what :func:`compile_filter_a` /
:func:`compile_filter_b` give now, and that regenerating gives the same bytes. So a launch
imports neither the rule compiler nor the assembler, and the filters it installs are the
ones the tests simulate.

The file is a table then the programs: ``MAGIC``, then one (offset, length) pair of
little-endian u32 per parameter combination (filter A's first, in ``itertools.product``
order: the first parameter is the most significant bit), then the distinct programs. A
launch reads the table and its one program (two ``pread``), not every variant. A file that
is not such a table, or is cut short, fails the launch (:class:`SetupError`): no program is
guessed.
"""

from __future__ import annotations

import os

from .._errors import SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import seccomp_bpf as sb

#: The parameters, in key order. Filter A: see ``_filter_a.filter_a_rules`` and
#: ``_refusals`` (report). Filter B: see ``_unix_filter.build_notify_filter``, ``_refusals``
#: (report), ``_split`` (paths: creating calls, meta: file metadata).
A_PARAMS = ("network", "unix_dgram", "truncate_guard", "report", "netlink", "pidns")
B_PARAMS = ("network", "datagrams", "report", "paths", "meta")
ARCHES = ("x86_64", "aarch64")
MAGIC = b"lsbpf\x00\x02\x00"  # format version 2 (filter A of six parameters)
SLOTS = 2 ** len(A_PARAMS) + 2 ** len(B_PARAMS)
HEADER_SIZE = len(MAGIC) + 8 * SLOTS


def path(arch: str) -> str:
    """The data file of ``arch``, beside this module."""
    if arch not in ARCHES:
        raise ValueError(f"unsupported architecture {arch!r}")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"_filters_{arch}.bin")


def _slot(base: int, key: tuple[bool, ...]) -> int:
    index = 0
    for bit in key:
        index = index * 2 + bool(bit)
    return base + index


def _read(arch: str, slot: int) -> bytes:
    try:
        fd = os.open(path(arch), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SetupError(f"{path(arch)}: cannot read the seccomp filters ({e.strerror}; run `make generate`)") from None
    try:
        header = os.pread(fd, HEADER_SIZE, 0)
        if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
            raise SetupError(f"{path(arch)}: not a filter table (run `make generate`)")
        at = len(MAGIC) + 8 * slot
        offset = int.from_bytes(header[at:at + 4], "little")
        length = int.from_bytes(header[at + 4:at + 8], "little")
        code = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(code) != length or not length or length % 8:
        raise SetupError(f"{path(arch)}: filter {slot} is truncated (run `make generate`)")
    return code


def filter_a_bytes(arch: str, *, network: bool, unix_dgram: bool, truncate_guard: bool,
                   report: bool = False, netlink: bool = True, pidns: bool = True) -> bytes:
    """Filter A for these parameters, encoded (``seccomp_bpf.install_filter`` takes it)."""
    return _read(arch, _slot(0, (network, unix_dgram, truncate_guard, report, netlink, pidns)))


def filter_b_bytes(arch: str, *, network: bool, datagrams: bool, report: bool = False,
                   paths: bool = False, meta: bool = False) -> bytes:
    """Filter B for these parameters, encoded."""
    return _read(arch, _slot(2 ** len(A_PARAMS), (network, datagrams, report, paths, meta)))


def encode_table(a_programs: list[bytes], b_programs: list[bytes]) -> bytes:
    """The data file for these programs (one per combination, in key order), each distinct
    program stored once (``scripts/generate.py``)."""
    programs = [*a_programs, *b_programs]
    if len(programs) != SLOTS:
        raise ValueError(f"{len(programs)} programs for {SLOTS} combinations")
    offsets: dict[bytes, int] = {}
    body = bytearray()
    for code in programs:
        if code not in offsets:
            offsets[code] = HEADER_SIZE + len(body)
            body += code
    table = b"".join(offsets[c].to_bytes(4, "little") + len(c).to_bytes(4, "little") for c in programs)
    return MAGIC + table + bytes(body)


def compile_filter_a(arch: str, *, network: bool, unix_dgram: bool, truncate_guard: bool,
                     report: bool = False, netlink: bool = True, pidns: bool = True) -> sb.Program:
    """Filter A compiled from its rules (the generator, the tests, ``explain --format bpf``).
    ``report``: the variant that lets refused ``socket()`` calls through to filter B, which
    notifies them so that the broker can report them (``_refusals``)."""
    if report:
        from ._refusals import build_filter_a_reporting

        return build_filter_a_reporting(arch, network=network, unix_dgram=unix_dgram,
                                        truncate_guard=truncate_guard, netlink=netlink, pidns=pidns)
    from ._filter_a import build_filter_a

    return build_filter_a(arch, network=network, unix_dgram=unix_dgram, truncate_guard=truncate_guard,
                          netlink=netlink, pidns=pidns)


def compile_filter_b(arch: str, *, network: bool, datagrams: bool, report: bool = False,
                     paths: bool = False, meta: bool = False) -> sb.Program:
    """Filter B compiled from its rules. ``report``: also notify the ``socket()`` calls filter A
    would refuse (``_refusals``); ``paths``: the creating calls in split directories,
    ``meta``: file metadata calls (both without namespaces, ``_split``)."""

    from ._split import meta_rules
    from ._split import notify_rules as path_rules
    from ._unix_filter import build_notify_filter

    extra: tuple[sb.Rule, ...] = ()
    if report:
        from ._refusals import notify_rules

        extra = notify_rules(network=network, unix_dgram=datagrams)
    if paths:
        extra += path_rules(arch)
    if meta:
        extra += meta_rules(arch)
    return build_notify_filter(arch, datagrams=datagrams, extra=extra)
