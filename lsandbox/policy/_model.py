"""The immutable policy model every backend consumes.

A profile (after ``extends``, built-ins, flags and administrator requirements are applied)
resolves to one :class:`Policy`. Backends never see TOML, never expand ``~`` and never
resolve symlinks: every path here is already canonical (see ``_paths.canonicalize``).

Filesystem and AF_UNIX rules both use *longest match*: a rule covers its path and everything
below it (by whole components), and the most specific rule covering a path decides. That one
rule gives the familiar shapes: ``/`` read + a workspace write + ``.git`` read inside it
(a read-only carve-out) + ``~/.ssh`` deny (a deny-read path).

``origin`` fields say where a rule came from (``config.toml:12``, ``--allow-unix-socket``,
``:workspace``) for ``explain`` and error messages; they never take part in equality, so a
command-line flag and the equivalent config key produce equal policies.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from lsandbox_records import Record, field

from ._domains import DomainRule, NetMode
from ._environment import EnvironmentPolicy
from ._paths import is_within

TYPE_CHECKING = False  # ``typing`` stays off the launch path; type checkers see True
if TYPE_CHECKING:
    from typing import Any


class FsAccess(str, enum.Enum):
    """What a filesystem rule grants below its path."""

    READ = "read"  # read files, list directories, execute
    WRITE = "write"  # READ plus create, write, truncate, remove, rename
    DENY = "deny"  # nothing, not even read


class SocketAccess(str, enum.Enum):
    """What an AF_UNIX rule grants below its path (Codex spells NONE "none" or "deny")."""

    ALLOW = "allow"
    NONE = "none"


#: Device files every backend leaves readable and writable whatever the policy says, because
#: ordinary programs (shells redirecting to /dev/null, ttys) break without them. Both backends
#: use this one list so they stay in parity; ``explain`` shows it.
DEVICE_FILES_RW: tuple[str, ...] = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
)


def _longest_match(path: str, rules: Iterable[Any]) -> Any | None:
    best = None
    for rule in rules:
        if is_within(path, rule.path) and (best is None or len(rule.path) > len(best.path)):
            best = rule
    return best


class FsRule(Record):
    """``path`` (canonical, absolute) and everything below it get ``access``."""

    path: str
    access: FsAccess
    origin: str = field(default="", compare=False)  # where the rule came from (messages)


class UnixSocketRule(Record):
    """AF_UNIX ``connect``/``bind``/``sendto`` at ``path`` or below it get ``access``."""

    path: str
    access: SocketAccess
    origin: str = field(default="", compare=False)  # where the rule came from (messages)


class FilesystemPolicy(Record):
    """Filesystem rules, sorted by path, at most one per path."""

    rules: tuple[FsRule, ...] = ()

    def __post_init__(self) -> None:
        paths = [r.path for r in self.rules]
        if len(set(paths)) != len(paths):
            raise ValueError("FilesystemPolicy: duplicate rule paths")
        object.__setattr__(self, "rules", tuple(sorted(self.rules, key=lambda r: r.path)))

    def access(self, path: str) -> FsAccess:
        """The access the policy grants at canonical ``path`` (DENY when no rule covers it)."""
        rule = _longest_match(path, self.rules)
        return FsAccess.DENY if rule is None else rule.access

    def rule_for(self, path: str) -> FsRule | None:
        """The rule that decides ``path``, or None."""
        return _longest_match(path, self.rules)

    def _paths(self, access: FsAccess) -> tuple[str, ...]:
        return tuple(r.path for r in self.rules if r.access is access)

    @property
    def read_roots(self) -> tuple[str, ...]:
        """Paths granted READ (including carve-outs; see :attr:`read_only`)."""
        return self._paths(FsAccess.READ)

    @property
    def write_roots(self) -> tuple[str, ...]:
        return self._paths(FsAccess.WRITE)

    @property
    def read_only(self) -> tuple[str, ...]:
        """Read-only carve-outs: READ rules whose nearest enclosing rule is WRITE."""
        out = []
        for r in self.rules:
            if r.access is FsAccess.READ:
                parent = self._parent_rule(r)
                if parent is not None and parent.access is FsAccess.WRITE:
                    out.append(r.path)
        return tuple(out)

    @property
    def deny_read(self) -> tuple[str, ...]:
        """Paths inside a readable or writable rule that must not be read at all."""
        out = []
        for r in self.rules:
            if r.access is FsAccess.DENY:
                parent = self._parent_rule(r)
                if parent is not None and parent.access is not FsAccess.DENY:
                    out.append(r.path)
        return tuple(out)

    def _parent_rule(self, rule: FsRule) -> FsRule | None:
        return _longest_match(rule.path, (r for r in self.rules if r.path != rule.path))


#: The port of the filtering proxy's listener (Codex's default ``proxy_url`` port).
DEFAULT_PROXY_PORT = 3128


class NetworkPolicy(Record):
    """Network access. ``unix_sockets`` is sorted by path, at most one rule per path;
    ``domains`` sorted by pattern, at most one rule per pattern.

    ``enabled`` with ``domains`` (or ``mode = LIMITED``) is the *proxied* network
    (:attr:`proxied`): TCP only through the filtering proxy on the loopback ``proxy_port``,
    host names decided by ``domains`` (``_domains.decide``); ``allow_local_binding`` lets the
    proxy reach loopback/private/link-local addresses and the command listen on loopback."""

    enabled: bool = False
    unix_sockets: tuple[UnixSocketRule, ...] = ()
    dangerously_allow_all_unix_sockets: bool = False
    mode: NetMode = NetMode.FULL
    domains: tuple[DomainRule, ...] = ()
    allow_local_binding: bool = False
    proxy_port: int = DEFAULT_PROXY_PORT

    def __post_init__(self) -> None:
        paths = [r.path for r in self.unix_sockets]
        if len(set(paths)) != len(paths):
            raise ValueError("NetworkPolicy: duplicate unix_sockets paths")
        object.__setattr__(
            self, "unix_sockets", tuple(sorted(self.unix_sockets, key=lambda r: r.path))
        )
        patterns = [r.pattern for r in self.domains]
        if len(set(patterns)) != len(patterns):
            raise ValueError("NetworkPolicy: duplicate domains patterns")
        object.__setattr__(self, "domains", tuple(sorted(self.domains, key=lambda r: r.pattern)))

    @property
    def proxied(self) -> bool:
        """Network on, but only through the filtering proxy (by host name)."""
        return self.enabled and (self.mode is NetMode.LIMITED or bool(self.domains))

    def rule_for(self, path: str) -> UnixSocketRule | None:
        """The AF_UNIX rule deciding canonical ``path`` (longest match), or None."""
        return _longest_match(path, self.unix_sockets)

    def unix_socket_access(self, path: str) -> SocketAccess:
        """Verdict for an AF_UNIX pathname socket at canonical ``path``.

        The longest matching rule wins; with no match the answer is NONE unless
        ``dangerously_allow_all_unix_sockets``. (The sandbox-local socket directory is always
        allowed; it is decided by the backend, which creates it per run.)
        """
        rule = _longest_match(path, self.unix_sockets)
        if rule is not None:
            return rule.access
        return SocketAccess.ALLOW if self.dangerously_allow_all_unix_sockets else SocketAccess.NONE


class Policy(Record):
    """A fully resolved sandbox policy."""

    filesystem: FilesystemPolicy = field(default_factory=FilesystemPolicy)
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    name: str = field(default="", compare=False)  # labels: two policies that differ only
    description: str = field(default="", compare=False)  # here enforce the same thing
    environment: EnvironmentPolicy = field(default_factory=EnvironmentPolicy)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (``explain --format json``); no origins, stable order. The
        environment appears only when it is not the default (the caller's, unchanged)."""
        out = {
            "filesystem": [{"path": r.path, "access": r.access.value} for r in self.filesystem.rules],
            "network": {
                "enabled": self.network.enabled,
                "unix_sockets": {r.path: r.access.value for r in self.network.unix_sockets},
                "dangerously_allow_all_unix_sockets": self.network.dangerously_allow_all_unix_sockets,
                "mode": self.network.mode.value,
                "domains": {r.pattern: r.access.value for r in self.network.domains},
                "allow_local_binding": self.network.allow_local_binding,
                "proxy_port": self.network.proxy_port,
            },
        }
        if not self.environment.is_default:
            out["environment"] = self.environment.to_dict()
        return out
