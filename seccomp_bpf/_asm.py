"""An assembler with symbolic labels.

Jump offsets are never counted by hand: conditional jumps name labels, and the assembler
lays the program out. Classic BPF conditional jumps reach at most 255 instructions ahead;
when a target is farther the assembler rewrites the jump to land on a ``BPF_JA``
trampoline placed right after it (``ja`` takes a 32-bit offset) and lays out again until
everything fits. Backward jumps do not exist in classic BPF and are refused.
"""

from __future__ import annotations

from lsandbox_records import Record, field

from ._consts import BPF_JA, BPF_JMP, BPF_MAXINSNS
from ._insn import SockFilter


class AssemblyError(ValueError):
    """A program that cannot be assembled (unresolved label, backward jump, too long)."""


class Label:
    """A position in the program. (Plain slotted classes, not records: a filter makes hundreds
    of these and ``Op`` per compile, and a record costs several times more to build.)"""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Label({self.name!r})"


class Op:
    """An instruction whose jumps may name labels. ``jt``/``jf`` for conditional jumps,
    ``target`` for ``BPF_JA``; ``None`` means "fall through" (offset 0)."""

    __slots__ = ("code", "k", "jt", "jf", "target")

    def __init__(self, code: int, k: int = 0, jt: str | None = None, jf: str | None = None,
                 target: str | None = None) -> None:
        self.code, self.k, self.jt, self.jf, self.target = code, k, jt, jf, target

    def __repr__(self) -> str:
        return f"Op({self.code:#x}, {self.k:#x}, jt={self.jt!r}, jf={self.jf!r}, target={self.target!r})"


class Assembler(Record, frozen=False):
    items: list[Op | Label] = field(default_factory=list)
    _counter: int = field(default=0, init=False, repr=False, compare=False)

    def label(self, prefix: str = "L") -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def place(self, name: str) -> None:
        self.items.append(Label(name))

    def emit(self, code: int, k: int = 0, jt: str | None = None, jf: str | None = None,
             target: str | None = None) -> None:
        self.items.append(Op(code, k & 0xFFFFFFFF, jt, jf, target))

    def assemble(self, max_len: int = BPF_MAXINSNS) -> tuple[SockFilter, ...]:
        return assemble(self.items, max_len=max_len)


def _layout(items: list[Op | Label]) -> dict[str, int]:
    pos: dict[str, int] = {}
    i = 0
    for it in items:
        if isinstance(it, Label):
            if it.name in pos:
                raise AssemblyError(f"label {it.name!r} defined twice")
            pos[it.name] = i
        else:
            i += 1
    return pos


def assemble(items: list[Op | Label], *, max_len: int = BPF_MAXINSNS) -> tuple[SockFilter, ...]:
    """Resolve labels into a program; raise :class:`AssemblyError` on any problem."""
    items = list(items)
    tramp = 0
    for _ in range(64):
        pos = _layout(items)
        fixed: list[Op | Label] = []
        changed = False
        idx = 0
        for it in items:
            if isinstance(it, Label):
                fixed.append(it)
                continue
            is_cond = (it.code & 0x07) == BPF_JMP and (it.code & 0xF0) != BPF_JA
            if is_cond:
                far = False
                for name in (it.jt, it.jf):
                    if name is None:
                        continue
                    if name not in pos:
                        raise AssemblyError(f"unresolved label {name!r}")
                    off = pos[name] - (idx + 1)
                    if off < 0:
                        raise AssemblyError(f"backward jump to {name!r}")
                    far = far or off > 255
                if far:
                    # jcond -> two adjacent trampolines: "ja jt-target" then "ja jf-target";
                    # a fall-through branch becomes a jump to just after the trampolines.
                    changed = True
                    tramp += 1
                    t_true, t_false, t_next = f"__t{tramp}", f"__f{tramp}", f"__n{tramp}"
                    fixed.append(Op(it.code, it.k, t_true, t_false))
                    fixed.append(Label(t_true))
                    fixed.append(Op(BPF_JMP | BPF_JA, target=it.jt or t_next))
                    fixed.append(Label(t_false))
                    fixed.append(Op(BPF_JMP | BPF_JA, target=it.jf or t_next))
                    fixed.append(Label(t_next))
                    idx += 1
                    continue
            fixed.append(it)
            idx += 1
        items = fixed
        if not changed:
            break
    else:  # pragma: no cover - each pass fixes at least one jump
        raise AssemblyError("trampoline insertion did not converge")

    pos = _layout(items)
    out: list[SockFilter] = []
    for it in items:
        if isinstance(it, Label):
            continue
        idx = len(out)

        def offset(name: str | None, _idx: int = idx) -> int:
            if name is None:
                return 0
            if name not in pos:
                raise AssemblyError(f"unresolved label {name!r}")
            o = pos[name] - (_idx + 1)
            if o < 0:
                raise AssemblyError(f"backward jump to {name!r}")
            return o

        if (it.code & 0x07) == BPF_JMP and (it.code & 0xF0) == BPF_JA:
            out.append(SockFilter(it.code, 0, 0, offset(it.target) if it.target else it.k))
        elif (it.code & 0x07) == BPF_JMP:
            out.append(SockFilter(it.code, offset(it.jt), offset(it.jf), it.k))
        else:
            out.append(SockFilter(it.code, 0, 0, it.k))
    if len(out) > max_len:
        raise AssemblyError(f"program has {len(out)} instructions; the kernel accepts at most {max_len}")
    if not out:
        raise AssemblyError("empty program")
    return tuple(out)
