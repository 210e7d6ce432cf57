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


def non_public(addr: str) -> str:
    """Why ``addr`` is not a public unicast address ("" when it is)."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attr, why in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                      ("is_unspecified", "unspecified"), ("is_multicast", "multicast"),
                      ("is_private", "private")):
        if getattr(ip, attr):
            return why
    return "" if ip.is_global else "reserved"
