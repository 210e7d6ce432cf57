"""A readable listing of a program, with jump targets as labels (``explain --format bpf``)."""

from __future__ import annotations

from . import _consts as C
from ._rules import action_from_raw
from ._tables import syscall_name

_FIELDS = {C.OFF_NR: "nr", C.OFF_ARCH: "arch", C.OFF_IP_LO: "ip.lo", C.OFF_IP_HI: "ip.hi"}
_ARCH_NAMES = {C.AUDIT_ARCH_X86_64: "AUDIT_ARCH_X86_64", C.AUDIT_ARCH_AARCH64: "AUDIT_ARCH_AARCH64",
               C.AUDIT_ARCH_I386: "AUDIT_ARCH_I386"}


def _field(k: int) -> str:
    if k in _FIELDS:
        return _FIELDS[k]
    if C.OFF_ARGS <= k < C.SECCOMP_DATA_SIZE:
        i, half = divmod(k - C.OFF_ARGS, 8)
        return f"args[{i}].{'hi' if half else 'lo'}"
    return f"[{k}]"


def disassemble(program: object, arch: str | None = None) -> str:
    insns = list(getattr(program, "instructions", program))  # type: ignore[call-overload]
    arch = arch or getattr(program, "arch", None) or None
    targets: set[int] = set()
    for i, ins in enumerate(insns):
        if ins.code & 0x07 == C.BPF_JMP:
            if ins.code & 0xF0 == C.BPF_JA:
                targets.add(i + 1 + ins.k)
            else:
                targets.update((i + 1 + ins.jt, i + 1 + ins.jf))
    names = {t: f"L{n}" for n, t in enumerate(sorted(targets))}
    lines = []
    last_load = None
    for i, ins in enumerate(insns):
        if i in names:
            lines.append(f"{names[i]}:")
        code, k = ins.code, ins.k
        cls = code & 0x07
        if cls == C.BPF_LD and code & 0xE0 == C.BPF_ABS:
            last_load = _field(k)
            text = f"ld  {last_load}"
        elif cls == C.BPF_ALU:
            ops = {C.BPF_AND: "and", C.BPF_OR: "or", C.BPF_ADD: "add", C.BPF_SUB: "sub",
                   C.BPF_RSH: "rsh", C.BPF_LSH: "lsh", C.BPF_XOR: "xor"}
            text = f"{ops.get(code & 0xF0, f'alu{code:#x}')} #{k:#x}"
        elif cls == C.BPF_JMP and code & 0xF0 == C.BPF_JA:
            text = f"ja  {names[i + 1 + k]}"
        elif cls == C.BPF_JMP:
            op = {C.BPF_JEQ: "jeq", C.BPF_JGT: "jgt", C.BPF_JGE: "jge", C.BPF_JSET: "jset"}.get(code & 0xF0, "j?")
            val = f"#{k:#x}"
            if last_load == "nr" and arch and op in ("jeq", "jge", "jgt"):
                nm = syscall_name(k, arch)
                val = f"#{k}" + (f" ({nm})" if nm else "")
            elif last_load == "arch" and k in _ARCH_NAMES:
                val = _ARCH_NAMES[k]
            text = f"{op} {val}, {names[i + 1 + ins.jt]}, {names[i + 1 + ins.jf]}"
        elif cls == C.BPF_RET:
            text = f"ret {action_from_raw(k)}"
        else:
            text = f"code={code:#06x} jt={ins.jt} jf={ins.jf} k={k:#x}"
        lines.append(f"  {i:4d}: {text}")
    return "\n".join(lines) + "\n"
