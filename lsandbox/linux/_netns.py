"""The sandbox's own network namespace when the network is off: loopback only.

Network off is enforced without it (seccomp refuses ``socket(AF_INET/AF_INET6)``, Landlock
refuses TCP bind/connect); the namespace is a second, kernel-side layer: no interface but
``lo`` exists inside, and the *abstract* AF_UNIX namespace, which belongs to the network
namespace, is the sandbox's own (kernels without Landlock's abstract-socket scope, ABI < 6,
get that isolation from here).

Loopback is brought up, as a fresh namespace has it down, with one rtnetlink message built
here: importing pyroute2 would cost more than a whole launch, for one 32-byte message. The
tests use pyroute2 from outside to check what this module did.

Not used when the network is on (the host's network is the point) or with
``dangerously_allow_all_unix_sockets`` (abstract names outside must stay reachable), except
for the proxied network of ``network.domains``, which needs it: there the namespace holds the
proxy's listener (:func:`hand_over_proxy_listener`) and nothing else reaches out.
"""

from __future__ import annotations

import _socket  # not ``socket``: its Python wrapper's imports would slow every launch
import os
import struct

CLONE_NEWNET = 0x40000000
RTM_NEWLINK = 16
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
IFF_UP = 0x1
LOOPBACK_INDEX = 1  # lo is always ifindex 1 in a new namespace
_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change


def loopback_up() -> None:
    """Set ``lo`` up in the calling process's network namespace (needs CAP_NET_ADMIN there)."""
    body = _IFINFO.pack(_socket.AF_UNSPEC, 0, LOOPBACK_INDEX, IFF_UP, IFF_UP)
    msg = _NLMSG.pack(_NLMSG.size + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
    s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _socket.NETLINK_ROUTE)
    try:
        s.send(msg)
        reply = s.recv(4096)
    finally:
        s.close()
    _, kind, _, _, _ = _NLMSG.unpack_from(reply)
    if kind != NLMSG_ERROR:
        raise OSError(0, f"unexpected rtnetlink reply {kind}")
    err = -struct.unpack_from("=i", reply, _NLMSG.size)[0]
    if err:
        raise OSError(err, f"bringing up lo: {os.strerror(err)}")


def wanted(network_enabled: bool, allow_all_unix: bool) -> bool:
    return not network_enabled and not allow_all_unix


def hand_over_proxy_listener(port: int, sync: _socket.socket) -> None:
    """The proxied network's entrance: a TCP listener on ``127.0.0.1:port`` *inside* the
    sandbox's network namespace, made here (by init or the relay, before anything is restricted) and
    sent to the supervisor, which serves it with the filtering proxy; no copy stays here.
    A socket belongs to the namespace it was created in, so the sandbox reaches the proxy at
    its own loopback while the proxy's upstream connections leave from the host's."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(128)
        sync.sendmsg([b"P"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("=i", s.fileno()))])
    finally:
        s.close()
