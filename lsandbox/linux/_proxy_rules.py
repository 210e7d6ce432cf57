"""The broker's rule for TCP/IP calls under the proxied network (``network.domains``).

The command may reach only the proxy's listener on its own loopback (and, with
``allow_local_binding``, listen and connect on that loopback). The sandbox's network
namespace has nothing but ``lo``, so this is the second layer; it matters because the broker
performs the ``connect``/``bind`` itself, where the command's Landlock TCP rules do not
apply. Returns why a call is refused ("" when it is allowed), for the denial report.
"""

from __future__ import annotations

import _socket
import struct

from ..policy import NetworkPolicy
from ._sockaddr import AF_INET, AF_INET6


def _inet_address(fam: int, addr: bytes) -> tuple[str, int] | None:
    if fam == AF_INET and len(addr) >= 8:
        return _socket.inet_ntop(_socket.AF_INET, addr[4:8]), struct.unpack_from("!H", addr, 2)[0]
    if fam == AF_INET6 and len(addr) >= 24:
        return _socket.inet_ntop(_socket.AF_INET6, addr[8:24]), struct.unpack_from("!H", addr, 2)[0]
    return None


def _loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1") or ip.startswith("::ffff:127.")


def proxy_only_inet(net: NetworkPolicy, fam: int, addr: bytes, *, bind: bool) -> tuple[str, str]:
    """(address text, reason) — reason is "" when the call is allowed."""
    where = _inet_address(fam, addr)
    if where is None:
        return "(malformed address)", "malformed address"
    ip, port = where
    text = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    if net.allow_local_binding:
        if _loopback(ip) or (bind and ip in ("0.0.0.0", "::")):
            return text, ""
        return text, "network.domains: direct connections go through the proxy only"
    if bind:
        return text, "network.allow_local_binding = false"
    if _loopback(ip) and port == net.proxy_port:
        return text, ""
    return text, f"network.domains: only the proxy (127.0.0.1:{net.proxy_port}) is reachable directly"
