"""Linux backend: policy -> Landlock + seccomp plan, launcher, AF_UNIX broker."""

from __future__ import annotations

from ..policy import Policy


def render_bpf(policy: Policy) -> str:
    """Filter A (and filter B) disassembled, for ``explain --format bpf``."""
    import landlock
    import seccomp_bpf as sb

    from ._filter_a import build_filter_a
    from ._plan import truncate_guard
    from ._unix_filter import build_notify_filter

    arch = sb.native_arch()
    a = build_filter_a(arch, network=policy.network.enabled,
                       unix_dgram=policy.network.dangerously_allow_all_unix_sockets,
                       truncate_guard=truncate_guard(landlock.abi_version()),
                       netlink=not policy.network.proxied)
    b = build_notify_filter(arch, datagrams=policy.network.dangerously_allow_all_unix_sockets or any(r.access.value == "allow" for r in policy.network.unix_sockets))
    return (f"; filter A: deny list, argument checks, socket() domains ({len(a)} instructions)\n"
            + sb.disassemble(a)
            + f"\n; filter B: connect/bind -> broker via user notification ({len(b)} instructions)\n"
            + sb.disassemble(b))
