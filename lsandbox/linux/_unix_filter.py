"""Seccomp filter B: ``connect`` and ``bind`` go to the broker.

Every ``connect``/``bind`` notifies, whatever the address family: the broker performs the
call itself on the target's socket (taken with pidfd_getfd), so nothing it checked is ever
re-run by the kernel with memory or fds the target could have changed (no CONTINUE).
``sendto``/``sendmsg``/``sendmmsg`` do not notify: on AF_UNIX stream and seqpacket sockets
the kernel ignores a destination address, and AF_UNIX datagram sockets are refused by
filter A (see ``_filter_a``), so no AF_UNIX datagram can name an unchecked destination.
"""

from __future__ import annotations

import seccomp_bpf as sb


def build_notify_filter(arch: str) -> sb.Program:
    rules = [
        sb.Rule("connect", sb.USER_NOTIF),
        sb.Rule("bind", sb.USER_NOTIF),
    ]
    return sb.compile_filter(sb.Filter(arch, rules, sb.ALLOW))
