"""The broker's AF_UNIX decision: rules + canonical path + operation -> a typed verdict.

Pure (no kernel, no filesystem), so it is unit-tested on its own and the C fast path's
exported table (``_fastpath.export_rules``) is checked against it. What needs the kernel
(the socket directory known by inode, planted sockets) is decided around it, by
``_broker_target`` and ``_provenance``.
"""

from __future__ import annotations

import errno
import os

from lsandbox_records import Record

from ..policy._longest import PathTable
from ..policy._model import FilesystemPolicy, FsAccess, Policy, SocketAccess, UnixSocketRule
from ._probes import QUIET_PROBES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    Op: TypeAlias = Literal["connect", "bind", "sendto"]


class Allowed(Record):
    """The call is performed."""


class Denied(Record):
    """Refused with an event (``path``, ``rule``); ``err`` is the call's result (EACCES, or
    ECONNREFUSED for an abstract name: answered as a name that does not exist)."""

    path: str
    rule: str
    err: int = errno.EACCES


class Quiet(Record):
    """Refused with ``err`` and no event (a probe of a well-known socket that is not there)."""

    err: int


if TYPE_CHECKING:
    Verdict: TypeAlias = Allowed | Denied | Quiet

ALLOWED = Allowed()


class UnixRules:
    """What the decision reads of a policy: the AF_UNIX rules as a longest-match table, the
    allow-all switch, and the filesystem rules (a bind needs a writable directory)."""

    __slots__ = ("table", "allow_all", "fs")

    def __init__(self, table: PathTable[UnixSocketRule], allow_all: bool, fs: FilesystemPolicy) -> None:
        self.table, self.allow_all, self.fs = table, allow_all, fs

    @classmethod
    def from_policy(cls, policy: Policy) -> UnixRules:
        net = policy.network
        return cls(net.unix_table, net.dangerously_allow_all_unix_sockets, policy.filesystem)


def decide(rules: UnixRules, path: str, op: Op) -> Verdict:
    """The verdict on ``op`` at canonical ``path`` (the socket for connect and sendto, the
    name to create for bind): the deepest rule covering it, else none unless allow-all; a
    bind also needs the directory to be writable under the filesystem rules."""
    rule = rules.table.get(path)
    if rule is not None:
        if rule.access != SocketAccess.ALLOW:
            return Denied(path, f"{rule.path} = {rule.access.value}")
    elif not rules.allow_all:
        if path in QUIET_PROBES and op != "bind":
            return Quiet(errno.ENOENT)  # nscd and the like: no socket, no report (_probes)
        return Denied(path, "no rule")
    if op == "bind":
        parent = os.path.dirname(path)
        if rules.fs.access(parent) != FsAccess.WRITE:
            return Denied(path, f"bind: {parent} is not writable")
    return ALLOWED


def decide_abstract(rules: UnixRules, display: str, op: Op) -> Verdict:
    """Abstract names are outside the sandbox's reach from the supervisor (see ``_broker``):
    refused unless allow-all; connect and send as a name that does not exist."""
    if rules.allow_all:
        return ALLOWED
    return Denied(display, "abstract names are not brokered",
                  errno.EACCES if op == "bind" else errno.ECONNREFUSED)
