"""seccomp_bpf without the kernel: encoding, assembler, compiler shape, interpreter."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seccomp_bpf as sb
from seccomp_bpf import _consts as C
from seccomp_bpf._asm import Op

X86 = sb.AUDIT_ARCH_X86_64


def test_sock_filter_roundtrip():
    prog = (sb.SockFilter(0x20, 0, 0, 4), sb.SockFilter(0x15, 1, 2, 0xC000003E), sb.SockFilter(6, 0, 0, 0x7FFF0000))
    assert sb.decode_program(sb.encode_program(prog)) == prog
    assert len(sb.encode_program(prog)) == 24
    with pytest.raises(ValueError):
        sb.SockFilter(0x15, 256, 0, 0)
    with pytest.raises(ValueError):
        sb.decode_program(b"\0" * 7)


def test_assembler_refuses_unresolved_label():
    a = sb.Assembler()
    a.emit(C.BPF_JMP | C.BPF_JEQ, 1, jt="nowhere", jf=None)
    a.emit(C.BPF_RET, 0)
    with pytest.raises(sb.AssemblyError, match="unresolved label 'nowhere'"):
        a.assemble()


def test_assembler_refuses_oversized_program():
    items = [Op(C.BPF_LD | C.BPF_W | C.BPF_ABS, 0)] * 4096 + [Op(C.BPF_RET, 0)]
    with pytest.raises(sb.AssemblyError, match="4097 instructions; the kernel accepts at most 4096"):
        sb.assemble(items)
    assert len(sb.assemble(items[1:])) == 4096


def test_assembler_refuses_backward_jump():
    a = sb.Assembler()
    a.place("top")
    a.emit(C.BPF_LD | C.BPF_W | C.BPF_ABS, 0)
    a.emit(C.BPF_JMP | C.BPF_JEQ, 1, jt="top", jf=None)
    with pytest.raises(sb.AssemblyError, match="backward"):
        a.assemble()


def test_long_jump_gets_trampoline():
    a = sb.Assembler()
    a.emit(C.BPF_LD | C.BPF_W | C.BPF_ABS, 0)
    a.emit(C.BPF_JMP | C.BPF_JEQ, 7, jt="far", jf=None)
    for _ in range(300):
        a.emit(C.BPF_LD | C.BPF_W | C.BPF_ABS, 4)
    a.emit(C.BPF_RET, 1)
    a.place("far")
    a.emit(C.BPF_RET, 2)
    prog = a.assemble()
    assert any(i.code == C.BPF_JMP | C.BPF_JA for i in prog)
    assert sb.simulate(prog, sb.SeccompData(7, X86)) == 2
    assert sb.simulate(prog, sb.SeccompData(8, X86)) == 1


def test_thousand_rule_program_with_long_jumps():
    names = [n for n in sb.syscall_names("x86_64")][:100]
    rules = []
    for i, n in enumerate(names):
        for j in range(10):
            rules.append(sb.Rule(n, sb.errno(1 + (i * 10 + j) % 4000), (sb.Arg(j % 6).masked_eq(0xFFFFFFFF, 1000 + i),)))
    assert len(rules) == 1000
    prog = sb.compile_filter(sb.Filter("x86_64", rules, sb.ALLOW))
    assert 1000 < len(prog) <= sb.BPF_MAXINSNS
    assert any(i.code == C.BPF_JMP | C.BPF_JA and i.k > 255 for i in prog.instructions)
    for i, n in enumerate(names):
        nr = sb.syscall_number(n, "x86_64")
        for j in range(6):
            args = [0] * 6
            args[j] = 1000 + i
            want = C.RET_ERRNO | (1 + (i * 10 + j) % 4000)
            assert sb.simulate(prog, sb.SeccompData(nr, X86, 0, tuple(args))) == want
        assert sb.simulate(prog, sb.SeccompData(nr, X86)) == C.RET_ALLOW


def test_arch_and_x32_checks():
    prog = sb.compile_filter(sb.Filter("x86_64", [sb.Rule("ptrace", sb.errno(1))], sb.ALLOW))
    assert sb.simulate(prog, sb.SeccompData(39, X86)) == C.RET_ALLOW
    assert sb.simulate(prog, sb.SeccompData(39, sb.AUDIT_ARCH_I386)) == C.RET_KILL_PROCESS
    assert sb.simulate(prog, sb.SeccompData(39 | 0x40000000, X86)) == C.RET_KILL_PROCESS
    assert sb.simulate(prog, sb.SeccompData(101, X86)) == C.RET_ERRNO | 1
    arm = sb.compile_filter(sb.Filter("aarch64", [sb.Rule("ptrace", sb.errno(1))], sb.ALLOW))
    assert sb.simulate(arm, sb.SeccompData(117, sb.AUDIT_ARCH_AARCH64)) == C.RET_ERRNO | 1
    assert sb.simulate(arm, sb.SeccompData(117, X86)) == C.RET_KILL_PROCESS


def test_dispatch_is_logarithmic():
    names = sb.syscall_names("x86_64")[:300]
    prog = sb.compile_filter(sb.Filter("x86_64", [sb.Rule(n, sb.errno(1)) for n in names], sb.ALLOW))
    # count the instructions executed for the last syscall: a binary search stays small
    last = sb.syscall_number(names[-1], "x86_64")
    steps = _trace_len(prog, sb.SeccompData(last, X86))
    assert steps < 30, steps


def test_unknown_names_are_refused_even_with_skip_unknown():
    """``skip_unknown`` drops a call this architecture lacks but another has; a name no
    architecture has (quotactl_path, a misspelling) is an error either way."""
    with pytest.raises(ValueError, match="misspelled"):
        sb.Filter("x86_64", [sb.Rule("quotactl_path", sb.errno(1))], sb.ALLOW, skip_unknown=True)
    with pytest.raises(ValueError, match="exists on x86_64"):
        sb.Filter("aarch64", [sb.Rule("iopl", sb.errno(1))], sb.ALLOW)
    assert not sb.Filter("aarch64", [sb.Rule("iopl", sb.errno(1))], sb.ALLOW, skip_unknown=True)._by_nr


def test_blocks_follow_their_leaf():
    """Each syscall's block is laid out right after its leaf of the search, and the arch
    checks' ``ret`` right after them: a deny list of 300 calls, each with a conditional
    rule, needs trampolines only for the few splits near the root."""
    names = sb.syscall_names("x86_64")[:300]
    rules = [sb.Rule(n, sb.errno(1), (sb.Arg(0).eq(1),)) for n in names]
    prog = sb.compile_filter(sb.Filter("x86_64", rules, sb.ALLOW))
    first = prog.instructions
    assert first[1].jf == 0 and first[2].code == C.BPF_RET  # foreign arch -> the next instruction
    ins = prog.instructions
    ja = C.BPF_JMP | C.BPF_JA
    # a trampoline: a conditional jump to the two "ja" right after it
    trampolines = [i for i in range(len(ins) - 2) if ins[i].code & 7 == C.BPF_JMP and ins[i].code != ja
                   and (ins[i].jt, ins[i].jf) == (0, 1) and ins[i + 1].code == ins[i + 2].code == ja]
    assert len(trampolines) <= 9, len(trampolines)  # at most one per level of the search
    for n in names:
        nr = sb.syscall_number(n, "x86_64")
        assert sb.simulate(prog, sb.SeccompData(nr, X86, 0, (1, 0, 0, 0, 0, 0))) == C.RET_ERRNO | 1
        assert sb.simulate(prog, sb.SeccompData(nr, X86)) == C.RET_ALLOW


def _trace_len(prog, data) -> int:
    insns = prog.instructions
    count = 0
    pc = 0
    a = 0
    raw = data.pack()
    import struct
    while True:
        ins = insns[pc]
        count += 1
        cls = ins.code & 7
        pc += 1
        if cls == C.BPF_LD:
            a = struct.unpack_from("=I", raw, ins.k)[0]
        elif cls == C.BPF_JMP:
            if ins.code & 0xF0 == C.BPF_JA:
                pc += ins.k
            else:
                op = ins.code & 0xF0
                cond = {C.BPF_JEQ: a == ins.k, C.BPF_JGT: a > ins.k, C.BPF_JGE: a >= ins.k}[op]
                pc += ins.jt if cond else ins.jf
        elif cls == C.BPF_RET:
            return count


def test_filter_validation():
    with pytest.raises(ValueError, match="no syscall"):
        sb.Filter("x86_64", [sb.Rule("not_a_syscall", sb.ALLOW)], sb.ALLOW)
    with pytest.raises(ValueError, match="unreachable"):
        sb.Filter("x86_64", [sb.Rule("read", sb.errno(1)), sb.Rule("read", sb.errno(2), (sb.Arg(0).eq(1),))], sb.ALLOW)
    with pytest.raises(ValueError, match="never matches"):
        sb.Arg(0).masked_eq(0xF0, 0x1)
    with pytest.raises(ValueError):
        sb.Arg(6)


def test_disassembler_labels_and_names():
    prog = sb.compile_filter(sb.Filter("x86_64", [sb.Rule("ptrace", sb.errno(1)),
                                                  sb.Rule("ioctl", sb.errno(1), (sb.Arg(1).eq(0x5412),))], sb.ALLOW))
    text = sb.disassemble(prog)
    assert "AUDIT_ARCH_X86_64" in text and "(ptrace)" in text and "args[1].lo" in text
    assert "ret ERRNO(1)" in text and "ret KILL_PROCESS" in text and "L0:" in text


_vals = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**32 + 1, 2**63, 2**64 - 1]))


@st.composite
def conds(draw):
    arg = draw(st.integers(0, 5))
    kind = draw(st.sampled_from(["eq", "ne", "masked_eq", "lt", "le", "gt", "ge"]))
    v = draw(_vals)
    if kind == "masked_eq":
        mask = draw(_vals)
        return sb.Arg(arg).masked_eq(mask, v & mask)
    return getattr(sb.Arg(arg), kind)(v)


@settings(max_examples=400, deadline=None)
@given(cs=st.lists(conds(), min_size=1, max_size=3), args=st.lists(_vals, min_size=6, max_size=6))
def test_conditions_compile_to_their_meaning(cs, args):
    prog = sb.compile_filter(sb.Filter("x86_64", [sb.Rule("getppid", sb.errno(7), tuple(cs))], sb.ALLOW))
    # probe both the random args and args built to satisfy the first condition's boundary
    for probe in (tuple(args), tuple(cs[0].value if i == cs[0].arg else a for i, a in enumerate(args))):
        want = C.RET_ERRNO | 7 if all(c.holds(probe) for c in cs) else C.RET_ALLOW
        assert sb.simulate(prog, sb.SeccompData(110, X86, 0, probe)) == want


def test_raw_return_words_are_the_actions():
    """``seccomp_bpf.RET_*`` (what a launcher probes with, without the rule model) are the
    actions' words, and ``action_available`` answers alike for both (a query, no filter)."""
    import seccomp_bpf as sb

    for name in ("ALLOW", "KILL_PROCESS", "KILL_THREAD", "TRAP", "LOG", "USER_NOTIF"):
        assert getattr(sb, f"RET_{name}") == getattr(sb, name).raw
    assert sb.errno(5).raw == sb.RET_ERRNO | 5
    if sys.platform == "linux":
        assert sb.action_available(sb.RET_USER_NOTIF) == sb.action_available(sb.USER_NOTIF)
