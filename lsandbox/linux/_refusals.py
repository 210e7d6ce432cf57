"""``socket()`` refusals, reported: only when denials are asked for (``--log-denials``,
``--events``, ``log_denials=True``).

Filter A refuses ``socket(AF_INET/AF_INET6)`` while the network is off and AF_UNIX datagram
sockets while no socket path is allowed, with EACCES, in the kernel: nothing sees it, so a
command that fails on it (``npm install`` retrying EAI_AGAIN) leaves an empty report. A
seccomp ERRNO cannot be observed from outside, and across stacked filters the kernel takes
the most restrictive action (ERRNO beats USER_NOTIF), so filter B cannot simply notify the
same calls. When reporting is asked for, the plan uses variants of both filters instead:

* filter A lets exactly these calls through (its rules, with ALLOW rules put first);
* filter B (which holds the task's one listener) notifies exactly the same calls;
* the broker answers every such notification EACCES, as filter A would have, and records
  an event naming the rule (``_broker_ops``: ``op_socket``).

The call never runs: a notified call the broker answers with an error is not executed, and
if the broker is gone the listener is closed and it fails (ENOSYS). Without reporting the
filters are the plain ones and nothing here runs: reporting costs nothing unless asked for.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Sequence

import seccomp_bpf as sb

from ._filter_a import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    LOW32,
    SOCK_SEQPACKET,
    SOCK_STREAM,
    filter_a_rules,
)

FAMILIES = {AF_UNIX: "AF_UNIX", AF_INET: "AF_INET", AF_INET6: "AF_INET6"}
TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}
ANSWER = errno.EACCES  # what filter A answers for these calls


def _domain(d: int) -> sb.Cond:
    return sb.Arg(0).masked_eq(LOW32, d)


def notify_rules(*, network: bool, unix_dgram: bool) -> tuple[sb.Rule, ...]:
    """Filter B's extra rules: notify the socket calls filter A would refuse with EACCES."""
    rules: list[sb.Rule] = []
    if not network:
        rules += [sb.Rule("socket", sb.USER_NOTIF, (_domain(d),)) for d in (AF_INET, AF_INET6)]
    if not unix_dgram:
        for call in ("socket", "socketpair"):
            rules += [sb.Rule(call, sb.ALLOW, (_domain(AF_UNIX), sb.Arg(1).masked_eq(0xF, kind)))
                      for kind in (SOCK_STREAM, SOCK_SEQPACKET)]
            rules.append(sb.Rule(call, sb.USER_NOTIF, (_domain(AF_UNIX),)))
    return tuple(rules)


def _passed_through(*, network: bool, unix_dgram: bool) -> list[sb.Rule]:
    """Filter A's extra first rules: let through what :func:`notify_rules` notifies (a
    superset is harmless: the broker refuses everything it is notified of)."""
    rules: list[sb.Rule] = []
    if not network:
        rules += [sb.Rule("socket", sb.ALLOW, (_domain(d),)) for d in (AF_INET, AF_INET6)]
    if not unix_dgram:
        rules += [sb.Rule(call, sb.ALLOW, (_domain(AF_UNIX),)) for call in ("socket", "socketpair")]
    return rules


@functools.cache
def build_filter_a_reporting(arch: str, *, network: bool, unix_dgram: bool,
                             truncate_guard: bool = False, netlink: bool = True, pidns: bool = True) -> sb.Program:
    rules = [*_passed_through(network=network, unix_dgram=unix_dgram),
             *filter_a_rules(arch, network=network, unix_dgram=unix_dgram, truncate_guard=truncate_guard,
                             netlink=netlink, pidns=pidns)]
    return sb.compile_filter(sb.Filter(arch, tuple(rules), sb.ALLOW))


def describe(op: str, args: tuple[int, ...]) -> dict:
    """The event for a refused ``socket``/``socketpair`` call (the broker adds pid/process)."""
    domain, kind = args[0] & LOW32, args[1] & 0xF
    fam = FAMILIES.get(domain, str(domain))
    if domain == AF_UNIX:
        rule = "no AF_UNIX socket path is allowed: datagram sockets refused (seccomp filter A)"
    else:
        rule = "network.enabled = false: socket() refused (seccomp filter A)"
    return {"kind": "network" if domain != AF_UNIX else "unix_socket", "op": op,
            "address": f"{fam} {TYPES.get(kind, str(kind))}", "verdict": "deny", "rule": rule,
            "layer": "seccomp"}


def unobservable(ro_binds: Sequence[str]) -> list[str]:
    """Statements of the refusals a report cannot contain here, and why (with denials asked
    for): a write under a read-only bind mount fails with EROFS in the filesystem itself,
    with no Landlock or seccomp decision to record."""
    if not ro_binds:
        return []
    shown = ", ".join(ro_binds[:4]) + (f" and {len(ro_binds) - 4} more" if len(ro_binds) > 4 else "")
    return [f"not observable: writes into the read-only carve-outs ({shown}) fail with EROFS "
            "from a read-only mount, which records nothing"]
