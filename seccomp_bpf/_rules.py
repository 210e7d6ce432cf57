"""Actions, argument conditions, rules and filters: what a program should do, validated when
built (seccompiler's habit) so the compiler only ever sees sound input."""

from __future__ import annotations

import enum

from lsandbox_records import Record, field

from . import _consts as C
from ._tables import has_syscall


class Action(Record):
    """A seccomp return value. ``raw`` is the SECCOMP_RET_* word the filter returns."""

    raw: int
    name: str

    def __str__(self) -> str:
        return self.name


ALLOW = Action(C.RET_ALLOW, "ALLOW")
KILL_PROCESS = Action(C.RET_KILL_PROCESS, "KILL_PROCESS")
KILL_THREAD = Action(C.RET_KILL_THREAD, "KILL_THREAD")
TRAP = Action(C.RET_TRAP, "TRAP")
LOG = Action(C.RET_LOG, "LOG")
USER_NOTIF = Action(C.RET_USER_NOTIF, "USER_NOTIF")


def errno(n: int) -> Action:
    """``SECCOMP_RET_ERRNO`` with ``n`` (0..4095: the kernel caps the data at MAX_ERRNO)."""
    if not 0 <= n <= 4095:
        raise ValueError(f"errno {n} out of range 0..4095")
    return Action(C.RET_ERRNO | n, f"ERRNO({n})")


def action_from_raw(raw: int) -> Action:
    for a in (ALLOW, KILL_PROCESS, KILL_THREAD, TRAP, LOG, USER_NOTIF):
        if a.raw == raw:
            return a
    if raw & C.RET_ACTION_FULL == C.RET_ERRNO:
        return errno(raw & C.RET_DATA)
    return Action(raw, f"RET({raw:#x})")


class Op(enum.Enum):
    EQ = "=="
    NE = "!="
    MASKED_EQ = "&="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class Cond(Record):
    """``args[arg] OP value`` on the full 64-bit argument (``(args[arg] & mask) == value``
    for MASKED_EQ). Compiled as two 32-bit halves: the high word is never ignored."""

    arg: int
    op: Op
    value: int
    mask: int = 0xFFFFFFFFFFFFFFFF

    def __post_init__(self) -> None:
        if not 0 <= self.arg <= 5:
            raise ValueError(f"argument index {self.arg} out of range 0..5")
        for v in (self.value, self.mask):
            if not 0 <= v <= 0xFFFFFFFFFFFFFFFF:
                raise ValueError(f"value {v:#x} does not fit in 64 bits (pass negative numbers as & 0xFFFFFFFFFFFFFFFF)")
        if self.op is Op.MASKED_EQ and self.value & ~self.mask:
            raise ValueError(f"masked value {self.value:#x} has bits outside mask {self.mask:#x}: never matches")

    def holds(self, args: tuple[int, ...] | list[int]) -> bool:
        a = args[self.arg] & 0xFFFFFFFFFFFFFFFF
        v = self.value
        return {
            Op.EQ: a == v, Op.NE: a != v, Op.MASKED_EQ: (a & self.mask) == v,
            Op.LT: a < v, Op.LE: a <= v, Op.GT: a > v, Op.GE: a >= v,
        }[self.op]

    def __str__(self) -> str:
        if self.op is Op.MASKED_EQ:
            return f"(arg{self.arg} & {self.mask:#x}) == {self.value:#x}"
        return f"arg{self.arg} {self.op.value} {self.value:#x}"


class Arg:
    """Builder: ``Arg(1).eq(5)``, ``Arg(0).masked_eq(0xff, 1)``."""

    def __init__(self, index: int) -> None:
        if not 0 <= index <= 5:
            raise ValueError(f"argument index {index} out of range 0..5")
        self.index = index

    def _c(self, op: Op, value: int, mask: int = 0xFFFFFFFFFFFFFFFF) -> Cond:
        return Cond(self.index, op, value & 0xFFFFFFFFFFFFFFFF, mask & 0xFFFFFFFFFFFFFFFF)

    def eq(self, v: int) -> Cond:
        return self._c(Op.EQ, v)

    def ne(self, v: int) -> Cond:
        return self._c(Op.NE, v)

    def masked_eq(self, mask: int, v: int) -> Cond:
        return self._c(Op.MASKED_EQ, v, mask)

    def lt(self, v: int) -> Cond:
        return self._c(Op.LT, v)

    def le(self, v: int) -> Cond:
        return self._c(Op.LE, v)

    def gt(self, v: int) -> Cond:
        return self._c(Op.GT, v)

    def ge(self, v: int) -> Cond:
        return self._c(Op.GE, v)


class Rule(Record):
    """``syscall`` gets ``action`` when every condition holds (no conditions: always)."""

    syscall: str
    action: Action
    conditions: tuple[Cond, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))


class Filter(Record):
    """Rules for one architecture. For each syscall, its rules are tried in order and the
    first whose conditions all hold decides; a syscall with no matching rule gets
    ``default_action``. A foreign ``arch`` (and, on x86_64, an x32 syscall number) gets
    ``bad_arch_action``."""

    arch: str
    rules: tuple[Rule, ...]
    default_action: Action
    bad_arch_action: Action = KILL_PROCESS
    # drop rules for syscalls this arch lacks but another has, instead of raising; a name no
    # architecture has (a misspelling) is an error either way
    skip_unknown: bool = False
    # derived from rules in __post_init__: not an argument, not compared, not shown
    _by_nr: dict[int, list[Rule]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ._tables import syscall_number

        if self.arch not in C.ARCHES:
            raise ValueError(f"unsupported architecture {self.arch!r}")
        object.__setattr__(self, "rules", tuple(self.rules))
        by_nr: dict[int, list[Rule]] = {}
        decided: set[int] = set()  # syscalls already settled by an unconditional rule
        for r in self.rules:
            if not has_syscall(r.syscall, self.arch):
                elsewhere = [a for a in C.ARCHES if has_syscall(r.syscall, a)]
                if self.skip_unknown and elsewhere:
                    continue
                raise ValueError(f"no syscall {r.syscall!r} on {self.arch}" + (
                    f" (it exists on {', '.join(elsewhere)})" if elsewhere
                    else " (nor on any architecture with a table here: misspelled?)"))
            nr = syscall_number(r.syscall, self.arch)
            if nr in decided:
                raise ValueError(f"rule for {r.syscall} after an unconditional one is unreachable")
            rules = by_nr.setdefault(nr, [])
            if not r.conditions:
                decided.add(nr)
                if r.action == self.default_action and not rules:
                    continue  # identical to the default: nothing to compile
            rules.append(r)
        object.__setattr__(self, "_by_nr", {nr: rs for nr, rs in by_nr.items() if rs})
