"""Filters A and B, encoded ahead of time: the launch path looks them up, it never compiles.

Both filters are functions of a handful of booleans (and the architecture), not of the
policy's paths or addresses: filter A of (network, unix_dgram, truncate_guard, report,
netlink), filter B of (network, datagrams, report, paths, meta). Every combination is
compiled by ``scripts/generate.py`` into the committed modules ``_filters_x86_64`` and
``_filters_aarch64``; a unit test checks that each entry is what :func:`compile_filter_a` /
:func:`compile_filter_b` give now, and that regenerating gives the same bytes. So a launch
imports neither the rule compiler nor the assembler, and the filters it installs are the
ones the tests simulate.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import seccomp_bpf as sb

#: The parameters, in key order. Filter A: see ``_filter_a.filter_a_rules`` and
#: ``_refusals`` (report). Filter B: see ``_unix_filter.build_notify_filter``, ``_refusals``
#: (report), ``_split`` (paths: creating calls, meta: file metadata).
A_PARAMS = ("network", "unix_dgram", "truncate_guard", "report", "netlink")
B_PARAMS = ("network", "datagrams", "report", "paths", "meta")


def _variants(arch: str) -> tuple[dict[tuple[bool, ...], str], dict[tuple[bool, ...], str]]:
    if arch == "x86_64":
        from . import _filters_x86_64

        return _filters_x86_64.A, _filters_x86_64.B
    if arch == "aarch64":
        from . import _filters_aarch64

        return _filters_aarch64.A, _filters_aarch64.B
    raise ValueError(f"unsupported architecture {arch!r}")


def filter_a_bytes(arch: str, *, network: bool, unix_dgram: bool, truncate_guard: bool,
                   report: bool = False, netlink: bool = True) -> bytes:
    """Filter A for these parameters, encoded (``seccomp_bpf.install_filter`` takes it)."""
    return bytes.fromhex(_variants(arch)[0][network, unix_dgram, truncate_guard, report, netlink])


def filter_b_bytes(arch: str, *, network: bool, datagrams: bool, report: bool = False,
                   paths: bool = False, meta: bool = False) -> bytes:
    """Filter B for these parameters, encoded."""
    return bytes.fromhex(_variants(arch)[1][network, datagrams, report, paths, meta])


def compile_filter_a(arch: str, *, network: bool, unix_dgram: bool, truncate_guard: bool,
                     report: bool = False, netlink: bool = True) -> sb.Program:
    """Filter A compiled from its rules (the generator, the tests, ``explain --format bpf``).
    ``report``: the variant that lets refused ``socket()`` calls through to filter B, which
    notifies them so that the broker can report them (``_refusals``)."""
    if report:
        from ._refusals import build_filter_a_reporting

        return build_filter_a_reporting(arch, network=network, unix_dgram=unix_dgram,
                                        truncate_guard=truncate_guard, netlink=netlink)
    from ._filter_a import build_filter_a

    return build_filter_a(arch, network=network, unix_dgram=unix_dgram, truncate_guard=truncate_guard,
                          netlink=netlink)


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
