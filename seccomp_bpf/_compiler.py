"""Rules -> a classic BPF program.

Shape (chosen so the kernel's constant-action cache, Linux 5.11+, can prove that every
syscall without argument conditions always gets the same verdict; the cache emulates the
program per syscall number and gives up on a number whose path loads an argument or the
instruction pointer):

1. load ``arch``; a foreign architecture -> ``bad_arch_action``;
2. load ``nr``; on x86_64 a number with the x32 bit (>= 0x40000000) -> ``bad_arch_action``
   (both ``ret`` placed right there, so these checks need no trampoline);
3. a binary search over the syscall numbers that have rules (``jge`` splits, linear
   ``jeq`` runs of at most 4 at the leaves): O(log n) comparisons, never a chain of 300;
4. per syscall, right after its leaf: unconditional rule -> ``ret`` directly; conditional
   rules load only the argument halves they test, inside that syscall's block;
5. everything else -> ``default_action``.

64-bit argument comparisons are done on the high then the low 32-bit word.
"""

from __future__ import annotations

import time

from lsandbox_records import Record, field

from . import _consts as C
from ._asm import Assembler
from ._insn import SockFilter, encode_program
from ._rules import Cond, Filter, Op, Rule

LD_ABS = C.BPF_LD | C.BPF_W | C.BPF_ABS
JEQ = C.BPF_JMP | C.BPF_JEQ | C.BPF_K
JGT = C.BPF_JMP | C.BPF_JGT | C.BPF_K
JGE = C.BPF_JMP | C.BPF_JGE | C.BPF_K
JA = C.BPF_JMP | C.BPF_JA
AND = C.BPF_ALU | C.BPF_AND | C.BPF_K
RET = C.BPF_RET | C.BPF_K
LEAF = 4


class Program(Record):
    """An assembled program ready for ``install_filter``."""

    instructions: tuple[SockFilter, ...]
    arch: str = ""
    compile_seconds: float = field(default=0.0, compare=False)  # a measurement, not content

    def to_bytes(self) -> bytes:
        return encode_program(self.instructions)

    def __len__(self) -> int:
        return len(self.instructions)


def _lo(arg: int) -> int:
    return C.OFF_ARGS + 8 * arg  # little-endian: low word first (x86_64, aarch64)


def _hi(arg: int) -> int:
    return C.OFF_ARGS + 8 * arg + 4


def _emit_cond(a: Assembler, c: Cond, ok: str, fail: str) -> None:
    """Jump to ``ok`` when ``c`` holds on the 64-bit argument, else to ``fail``."""
    vh, vl = c.value >> 32, c.value & 0xFFFFFFFF
    if c.op in (Op.EQ, Op.NE, Op.MASKED_EQ):
        t, f = (ok, fail) if c.op is not Op.NE else (fail, ok)
        mh, ml = c.mask >> 32, c.mask & 0xFFFFFFFF
        if mh:  # a zero high mask means the high word cannot matter
            a.emit(LD_ABS, _hi(c.arg))
            if mh != 0xFFFFFFFF:
                a.emit(AND, mh)
            nxt = a.label("lo")
            a.emit(JEQ, vh, jt=nxt, jf=f)
            a.place(nxt)
        if ml:
            a.emit(LD_ABS, _lo(c.arg))
            if ml != 0xFFFFFFFF:
                a.emit(AND, ml)
            a.emit(JEQ, vl, jt=t, jf=f)
        else:
            a.emit(JA, target=t)
        return
    # ordered comparisons: decide on the high word unless equal, then on the low word
    nxt = a.label("lo")
    a.emit(LD_ABS, _hi(c.arg))
    if c.op in (Op.GT, Op.GE):
        a.emit(JGT, vh, jt=ok, jf=None)
        a.emit(JEQ, vh, jt=nxt, jf=fail)
        a.place(nxt)
        a.emit(LD_ABS, _lo(c.arg))
        a.emit(JGT if c.op is Op.GT else JGE, vl, jt=ok, jf=fail)
    else:  # LT, LE
        a.emit(JGT, vh, jt=fail, jf=None)
        a.emit(JEQ, vh, jt=nxt, jf=ok)
        a.place(nxt)
        a.emit(LD_ABS, _lo(c.arg))
        # lo < v  <=>  not (lo >= v);  lo <= v  <=>  not (lo > v)
        a.emit(JGE if c.op is Op.LT else JGT, vl, jt=fail, jf=ok)


def _emit_syscall_block(a: Assembler, rules: list[Rule], default: str) -> None:
    for r in rules:
        if not r.conditions:
            a.emit(RET, r.action.raw)
            return
        fail = a.label("next_rule")
        for c in r.conditions:
            ok = a.label("cond_ok")
            _emit_cond(a, c, ok, fail)
            a.place(ok)
        a.emit(RET, r.action.raw)
        a.place(fail)
    a.emit(JA, target=default)


def _emit_search(a: Assembler, nrs: list[int], flt: Filter, default: str) -> None:
    """Binary search on the loaded ``nr`` (accumulator) over sorted ``nrs``. Each leaf's
    syscall blocks follow the leaf itself, so the leaf's jumps stay short; only the few
    ``jge`` splits near the root jump over more than 255 instructions (one trampoline each)."""
    if len(nrs) <= LEAF:
        blocks = {nr: a.label(f"sys{nr}_") for nr in nrs}
        for nr in nrs:
            a.emit(JEQ, nr, jt=blocks[nr], jf=None)
        a.emit(JA, target=default)
        for nr in nrs:
            a.place(blocks[nr])
            _emit_syscall_block(a, flt._by_nr[nr], default)
        return
    mid = len(nrs) // 2
    right = a.label("ge")
    a.emit(JGE, nrs[mid], jt=right, jf=None)
    _emit_search(a, nrs[:mid], flt, default)
    a.place(right)
    _emit_search(a, nrs[mid:], flt, default)


def compile_filter(flt: Filter) -> Program:
    """Compile ``flt`` into an assembled :class:`Program`."""
    t0 = time.perf_counter()
    a = Assembler()
    bad, ok = "bad_arch", "arch_ok"
    a.emit(LD_ABS, C.OFF_ARCH)
    a.emit(JEQ, C.ARCHES[flt.arch], jt=ok, jf=None)
    a.place(bad)  # near the top: the arch checks jump to it without a trampoline
    a.emit(RET, flt.bad_arch_action.raw)
    a.place(ok)
    a.emit(LD_ABS, C.OFF_NR)
    if flt.arch == "x86_64":
        x32 = a.label("x32")
        search = a.label("search")
        a.emit(JGE, C.X32_SYSCALL_BIT, jt=x32, jf=search)
        a.place(x32)
        a.emit(RET, flt.bad_arch_action.raw)
        a.place(search)
    default = "default"
    _emit_search(a, sorted(flt._by_nr), flt, default)
    a.place(default)
    a.emit(RET, flt.default_action.raw)
    insns = a.assemble()
    return Program(insns, flt.arch, time.perf_counter() - t0)
