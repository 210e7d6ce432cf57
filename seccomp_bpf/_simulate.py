"""A userspace interpreter for classic seccomp BPF: the test oracle.

It runs a program on a ``seccomp_data`` exactly as the kernel's checker allows (loads from
the 64-byte ``seccomp_data`` only, forward jumps, scratch memory, ALU on A/X) and returns
the raw 32-bit verdict. Differential tests compare it with the real kernel.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from . import _consts as C
from ._insn import SockFilter, decode_program

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._compiler import Program


@dataclass(frozen=True)
class SeccompData:
    nr: int
    arch: int
    instruction_pointer: int = 0
    args: tuple[int, ...] = (0, 0, 0, 0, 0, 0)

    def pack(self) -> bytes:
        args = tuple(a & 0xFFFFFFFFFFFFFFFF for a in self.args) + (0,) * (6 - len(self.args))
        return struct.pack("=iIQ6Q", self.nr, self.arch, self.instruction_pointer & 0xFFFFFFFFFFFFFFFF, *args)


class SimulationError(ValueError):
    pass


def simulate(program: Program | bytes | Sequence[SockFilter], data: SeccompData) -> int:
    """Run ``program`` (a Program, its encoded bytes or a sequence of SockFilter) on ``data``;
    return the verdict."""
    insns: Sequence[SockFilter]
    from . import _compiler  # the tests' oracle: not on a launch path

    if isinstance(program, bytes):
        insns = decode_program(program)
    elif isinstance(program, _compiler.Program):
        insns = program.instructions
    else:
        insns = program
    raw = data.pack()
    A = X = 0
    mem = [0] * C.BPF_MEMWORDS
    pc = 0
    n = len(insns)
    while pc < n:
        ins = insns[pc]
        code, k = ins.code, ins.k
        cls = code & 0x07
        pc += 1
        if cls == C.BPF_LD:
            mode = code & 0xE0
            if mode == C.BPF_ABS and (code & 0x18) == C.BPF_W:
                if k % 4 or k + 4 > C.SECCOMP_DATA_SIZE:
                    raise SimulationError(f"bad load offset {k}")
                A = struct.unpack_from("=I", raw, k)[0]
            elif mode == C.BPF_IMM:
                A = k
            elif mode == C.BPF_MEM:
                A = mem[k]
            elif mode == C.BPF_LEN:
                A = C.SECCOMP_DATA_SIZE
            else:
                raise SimulationError(f"unsupported load {code:#x}")
        elif cls == C.BPF_LDX:
            mode = code & 0xE0
            X = {C.BPF_IMM: k, C.BPF_LEN: C.SECCOMP_DATA_SIZE}.get(mode, mem[k] if mode == C.BPF_MEM else None)  # type: ignore[assignment]
            if X is None:
                raise SimulationError(f"unsupported ldx {code:#x}")
        elif cls == C.BPF_ST:
            mem[k] = A
        elif cls == C.BPF_STX:
            mem[k] = X
        elif cls == C.BPF_ALU:
            op = code & 0xF0
            src = X if code & C.BPF_X else k
            if op == C.BPF_ADD:
                A = (A + src) & 0xFFFFFFFF
            elif op == C.BPF_SUB:
                A = (A - src) & 0xFFFFFFFF
            elif op == C.BPF_MUL:
                A = (A * src) & 0xFFFFFFFF
            elif op == C.BPF_DIV:
                if src == 0:
                    return 0
                A = A // src
            elif op == C.BPF_MOD:
                if src == 0:
                    return 0
                A = A % src
            elif op == C.BPF_OR:
                A |= src
            elif op == C.BPF_AND:
                A &= src
            elif op == C.BPF_XOR:
                A ^= src
            elif op == C.BPF_LSH:
                A = (A << src) & 0xFFFFFFFF if src < 32 else 0
            elif op == C.BPF_RSH:
                A = A >> src if src < 32 else 0
            elif op == C.BPF_NEG:
                A = (-A) & 0xFFFFFFFF
            else:
                raise SimulationError(f"unsupported alu {code:#x}")
        elif cls == C.BPF_JMP:
            op = code & 0xF0
            if op == C.BPF_JA:
                pc += k
                continue
            src = X if code & C.BPF_X else k
            if op == C.BPF_JEQ:
                cond = A == src
            elif op == C.BPF_JGT:
                cond = A > src
            elif op == C.BPF_JGE:
                cond = A >= src
            elif op == C.BPF_JSET:
                cond = bool(A & src)
            else:
                raise SimulationError(f"unsupported jump {code:#x}")
            pc += ins.jt if cond else ins.jf
        elif cls == C.BPF_RET:
            src = code & 0x18
            return A if src == C.BPF_A else k
        elif cls == C.BPF_MISC:
            if code & 0xF8 == C.BPF_TXA:
                A = X
            else:
                X = A
    raise SimulationError("fell off the end of the program")
