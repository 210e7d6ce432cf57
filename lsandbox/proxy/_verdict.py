"""The proxy's decisions, pure: by the requested name first, then by what it resolved to.

Each refusal carries the rule that refused it (reported with the denial) and the
``x-proxy-error`` value Codex's proxy uses for the same case, so a client that reads it sees
the same answer under both.
"""

from __future__ import annotations

from lsandbox_records import Record

from ..policy._domains import (
    LIMITED_METHODS,
    DomainAccess,
    DomainRule,
    NetMode,
    decide,
    describe,
    ip_literal,
    normalize_host,
)
from ..policy._model import NetworkPolicy
from ._addresses import non_public


class Refusal(Record):
    rule: str  # what refused it, for the denial report
    code: str  # x-proxy-error


def by_name(net: NetworkPolicy, host: str, method: str) -> tuple[DomainRule | None, Refusal | None]:
    """The deciding rule for ``host`` and, when refused, why."""
    host = normalize_host(host)
    rule = decide(net.domains, host)
    if rule is None:
        return None, Refusal(describe(None, host), "blocked-by-allowlist")
    if rule.access is DomainAccess.DENY:
        return rule, Refusal(describe(rule, host), "blocked-by-denylist")
    if net.mode is NetMode.LIMITED and method == "CONNECT":  # Codex's rule without its MITM
        return rule, Refusal('network.mode = "limited": CONNECT is refused (the methods inside a '
                             "tunnel cannot be checked)", "blocked-by-method-policy")
    if net.mode is NetMode.LIMITED and method not in LIMITED_METHODS:
        return rule, Refusal(f'network.mode = "limited": {method} is not one of '
                             f'{", ".join(sorted(LIMITED_METHODS))}', "blocked-by-method-policy")
    return rule, None


def by_address(net: NetworkPolicy, host: str, rule: DomainRule, addrs: list[str]) -> Refusal | None:
    """Refuse when any resolved address is not public, unless the policy says so (see
    ``_addresses``)."""
    if net.allow_local_binding:
        return None
    host = normalize_host(host)
    named = (ip_literal(host) or host == "localhost") and rule.pattern == host
    if named:
        return None
    for addr in addrs:
        why = non_public(addr)
        if why:
            return Refusal(f"{host} resolves to {addr} ({why}): network.allow_local_binding = false",
                           "blocked-by-policy")
    return None
