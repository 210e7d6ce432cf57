"""Which resolved addresses the proxy may connect to.

The proxy resolves every host name itself and connects only to what it resolved: the
sandbox never chooses the address. A name allowed by ``domains`` may still resolve to the
machine itself or its private network (DNS rebinding, or a name planted to point at
``127.0.0.1``); those destinations are refused unless ``allow_local_binding`` is set, or
the request named the address itself (or ``localhost``) and an exact ``domains`` rule allows
it (Codex's rule). If *any* resolved address is non-public, the name is refused: trying the
public ones first would let a resolver that alternates answers pick the private one later.
"""

from __future__ import annotations

import ipaddress

#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, local-use NAT64,
#: SIIT's IPv4-translated): such an address reaches that IPv4 address, and is judged as it
_EMBEDDING = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96"))
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo's client, NAT64,
    SIIT, the deprecated IPv4-compatible ``::a.b.c.d``), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _EMBEDDING) or (int(ip) >> 32 == 0 and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public(addr: str) -> str:
    """Why ``addr`` is not a public unicast address ("" when it is). An IPv6 address that
    carries an IPv4 one is judged by that (Python's own tables call 64:ff9b::10.0.0.1
    global); site-local fec0::/10 is not public."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _SITE_LOCAL:
            return "site-local"
        v4 = _embedded_ipv4(ip)
        if v4 is not None:
            why = non_public(str(v4))
            return f"{why} (as {v4})" if why else ""
    for attr, why in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                      ("is_unspecified", "unspecified"), ("is_multicast", "multicast"),
                      ("is_private", "private")):
        if getattr(ip, attr):
            return why
    return "" if ip.is_global else "reserved"
