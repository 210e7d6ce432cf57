"""Network by domain: the host-name rules the filtering proxy decides by.

Patterns (Codex's ``network.domains`` keys):

* ``example.org`` — that name only;
* ``*.example.org`` — its subdomains, not ``example.org`` itself;
* ``**.example.org`` — ``example.org`` and its subdomains;
* ``*`` — any name;
* an IP literal (``192.0.2.7``, ``::1``) — that address, asked for by number.

The rule: **the most specific matching pattern decides, and at equal specificity deny beats
allow; a name no pattern matches is refused.** An exact name is more specific than any
wildcard; between wildcards the longer suffix (more labels) is more specific; ``*`` is the
least specific. So ``"*.example.org" = "deny"`` with ``"api.example.org" = "allow"`` lets
``api.example.org`` through and nothing else below ``example.org`` (Codex lets a deny win
whatever its specificity; we follow the same longest-match rule as filesystem and socket
rules, and say so in the README). This is pure and shared by every backend: the proxy is the
same code on Linux and macOS.
"""

from __future__ import annotations

import enum

from lsandbox_records import Record, field


class NetMode(str, enum.Enum):
    """Codex's ``network.mode``: FULL allows every HTTP method to an allowed host; LIMITED
    only GET, HEAD and OPTIONS in plain HTTP (a CONNECT tunnel's contents cannot be seen, so
    HTTPS stays a tunnel, as in Codex)."""

    FULL = "full"
    LIMITED = "limited"


class DomainAccess(str, enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


class DomainRule(Record):
    """Host names matching ``pattern`` (see the module docstring) get ``access``."""

    pattern: str
    access: DomainAccess
    origin: str = field(default="", compare=False)  # where the rule came from (messages)


#: HTTP methods ``mode = "limited"`` lets through (Codex's read-only set).
LIMITED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def ip_literal(host: str) -> bool:
    """Whether ``host`` (normalized) is an IPv4 or IPv6 address rather than a name."""
    import ipaddress  # only where a domain policy is used

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets: the form patterns are compared in. An
    IPv4 address in any form the resolver takes (``2130706433``, ``127.1``, ``0x7f.1``,
    ``0177.0.0.1``: ``inet_aton``'s) becomes its dotted quad: it is an address, decided as
    one (a name rule such as ``*`` does not match it), and the proxy resolves it to that."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host[:-1] if host.endswith(".") and not host.endswith("..") else host
    return _numeric_ipv4(host) or host


def _numeric_ipv4(host: str) -> str | None:
    if not host or host.strip("0123456789abcdefx.") or not host[0].isdigit():
        return None
    import socket

    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _valid_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    for label in name.split("."):
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return False
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in label):
            return False
    return True


def check_pattern(raw: str) -> str:
    """The normalized pattern, or ValueError saying what is wrong with ``raw``."""
    p = normalize_host(raw)
    if p == "*":
        return p
    if ip_literal(p):
        return p
    base = p[3:] if p.startswith("**.") else p[2:] if p.startswith("*.") else p
    if "*" in base:
        raise ValueError(f"invalid domain pattern {raw!r}: '*' only as a whole first label "
                         "('*.example.org', '**.example.org') or alone ('*')")
    if not _valid_name(base):
        raise ValueError(f"invalid domain pattern {raw!r}: not a host name")
    return p


def _specificity(pattern: str, host: str) -> tuple[int, int] | None:
    """How specifically ``pattern`` matches ``host`` (greater is more specific), or None."""
    if pattern == "*":
        return (0, 0)
    if pattern.startswith("**."):
        base = pattern[3:]
        if host == base or host.endswith("." + base):
            return (1, base.count(".") + 1)
        return None
    if pattern.startswith("*."):
        base = pattern[2:]
        return (1, base.count(".") + 1) if host.endswith("." + base) else None
    return (2, 0) if host == pattern else None


def decide(rules: tuple[DomainRule, ...], host: str) -> DomainRule | None:
    """The rule that decides ``host`` (normalized), or None when no pattern matches (refused).
    IP literals match only a rule naming that same address."""
    host = normalize_host(host)
    literal = ip_literal(host)
    best: DomainRule | None = None
    best_key: tuple[int, int, int] | None = None
    for rule in rules:
        if literal:
            spec = (2, 0) if ip_literal(rule.pattern) and _same_ip(rule.pattern, host) else None
        else:
            spec = _specificity(rule.pattern, host)
        if spec is None:
            continue
        key = (*spec, 1 if rule.access is DomainAccess.DENY else 0)
        if best_key is None or key > best_key:
            best, best_key = rule, key
    return best


def _same_ip(a: str, b: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


def describe(rule: DomainRule | None, host: str) -> str:
    """The rule as reported with a denial (and in ``explain``)."""
    if rule is None:
        return f"no network.domains pattern matches {host}"
    return f'network.domains "{rule.pattern}" = "{rule.access.value}"' + (
        f" ({rule.origin})" if rule.origin else "")
