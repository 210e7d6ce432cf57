"""The Ruleset builder: handle rights, add rules, restrict, and say what was enforced.

Compatibility is a caller's choice (rust-landlock's model): BEST_EFFORT drops what the kernel
lacks and reports it in the returned status; SOFT_REQUIREMENT drops nothing silently but
skips Landlock entirely when it is missing; HARD_REQUIREMENT raises, naming the missing right
and the ABI that has it. Rights are masked to the effective ABI *before* any syscall, so a
partially enforced ruleset is still a valid one.

REFER: it exists from ABI 2. On ABI 1, moving or linking a file to another directory is
*always* denied once Landlock restricts anything, so asking to handle REFER there is more
than satisfied (reported as a note, not as a dropped right); asking to *grant* REFER (a write
root) cannot be honoured: renames across directories fail (stricter, reported).
"""

from __future__ import annotations

import enum

from lsandbox_records import Record, field

from ._abi import abi_version
from ._access import AccessFs, AccessNet, RestrictFlags, Scope, since_abi
from ._raw import RawRuleset
from ._raw import attr_size as attr_size


class CompatLevel(enum.Enum):
    BEST_EFFORT = "best_effort"
    SOFT_REQUIREMENT = "soft_requirement"
    HARD_REQUIREMENT = "hard_requirement"


class Enforcement(enum.Enum):
    FULLY_ENFORCED = "fully_enforced"
    PARTIALLY_ENFORCED = "partially_enforced"
    NOT_ENFORCED = "not_enforced"


class LandlockUnsupportedError(OSError):
    """A hard requirement the kernel cannot meet."""


class RestrictStatus(Record, frozen=False):
    ruleset: Enforcement
    abi: int
    dropped_fs: AccessFs = AccessFs(0)
    dropped_net: AccessNet = AccessNet(0)
    dropped_scopes: Scope = Scope(0)
    dropped_flags: RestrictFlags = RestrictFlags(0)
    notes: list[str] = field(default_factory=list)


def _names(flags: enum.IntFlag) -> str:
    return ", ".join(f.name or str(f.value) for f in type(flags) if f & flags)


class Ruleset:
    """Build, then :meth:`restrict_self` (irreversible, for this thread and its children)."""

    def __init__(
        self,
        *,
        handled_fs: AccessFs = AccessFs(0),
        handled_net: AccessNet = AccessNet(0),
        scoped: Scope = Scope(0),
        compat: CompatLevel = CompatLevel.BEST_EFFORT,
        max_abi: int | None = None,
    ) -> None:
        self.abi = abi_version(max_abi)
        self.compat = compat
        self.requested_fs, self.requested_net, self.requested_scoped = handled_fs, handled_net, scoped
        self.notes: list[str] = []
        self.handled_fs = handled_fs & AccessFs.from_all(self.abi)
        self.handled_net = handled_net & AccessNet.from_all(self.abi)
        self.scoped = scoped & Scope.from_all(self.abi)
        self.dropped_fs = handled_fs & ~self.handled_fs
        self.dropped_net = handled_net & ~self.handled_net
        self.dropped_scopes = scoped & ~self.scoped
        if self.abi == 1 and self.dropped_fs & AccessFs.REFER:
            self.dropped_fs &= ~AccessFs.REFER
            self.notes.append("REFER: on ABI 1 reparenting (rename/link across directories) is "
                              "always denied, which is stricter than requested")
        self._check_missing()
        # The rules as plain ints, masked here: a Ruleset may be built in one process and
        # applied in a forked child, which then does no IntFlag arithmetic (each new flag
        # combination allocates a pseudo-member: in a child of a large process, copy-on-write
        # faults on the enum's caches).
        self._raw = RawRuleset(self.abi, int(self.handled_fs), int(self.handled_net), int(self.scoped))

    def _check_missing(self) -> None:
        if self.compat is not CompatLevel.HARD_REQUIREMENT:
            return
        if self.abi == 0:
            raise LandlockUnsupportedError(95, "Landlock is not supported or not enabled on this kernel")
        for dropped in (self.dropped_fs, self.dropped_net, self.dropped_scopes):
            for right in type(dropped):
                if right & dropped:
                    raise LandlockUnsupportedError(
                        95, f"Landlock {type(right).__name__}.{right.name} needs ABI "
                        f"{since_abi(right)}; this kernel provides ABI {self.abi}")

    def attr(self) -> tuple[int, int, int, int]:
        """(handled_access_fs, handled_access_net, scoped, size) as they would be passed."""
        return self._raw.attr()

    def add_path(self, path: str, access: AccessFs) -> Ruleset:
        """Allow ``access`` on ``path`` and beneath (masked to what is handled; a file gets
        only the rights that apply to files)."""
        self._raw.add_path(path, access)
        return self

    def add_path_fd(self, fd: int, access: AccessFs) -> Ruleset:
        """As :meth:`add_path`, beneath what ``fd`` (``O_PATH``, open until
        :meth:`restrict_self`) refers to: a path opened before it could be replaced."""
        self._raw.add_path_fd(fd, access)
        return self

    def add_net_port(self, port: int, access: AccessNet) -> Ruleset:
        self._raw.add_net_port(port, access)
        return self

    def restrict_self(self, flags: RestrictFlags = RestrictFlags(0), *, no_new_privs: bool = True) -> RestrictStatus:
        """Apply the ruleset to the calling thread. Sets no_new_privs first unless told not to
        (then the caller must have set it, or hold CAP_SYS_ADMIN)."""
        supported_flags = flags & RestrictFlags.from_all(self.abi)
        dropped_flags = flags & ~supported_flags
        if dropped_flags and self.compat is CompatLevel.HARD_REQUIREMENT:
            raise LandlockUnsupportedError(95, f"restrict_self flags {_names(dropped_flags)} need ABI "
                                               f"{since_abi(dropped_flags)}; this kernel provides ABI {self.abi}")
        status = RestrictStatus(Enforcement.FULLY_ENFORCED, self.abi, self.dropped_fs, self.dropped_net,
                                self.dropped_scopes, dropped_flags, list(self.notes))
        if not self._raw.restrict_self(int(supported_flags), no_new_privs=no_new_privs, notes=status.notes):
            status.ruleset = Enforcement.NOT_ENFORCED
            return status
        if status.dropped_fs or status.dropped_net or status.dropped_scopes or status.dropped_flags:
            status.ruleset = Enforcement.PARTIALLY_ENFORCED
        return status
