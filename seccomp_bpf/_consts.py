"""Classic BPF opcodes, seccomp return values and audit architectures (UAPI values).

Declared here rather than read from headers so nothing is needed at install time and the
values are pinned (the kernel never changes them).
"""

from __future__ import annotations

# instruction classes
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
# ld/ldx sizes and modes
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
# alu/jmp operations
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
# sources
BPF_K, BPF_X, BPF_A = 0x00, 0x08, 0x10
# misc
BPF_TAX, BPF_TXA = 0x00, 0x80

BPF_MAXINSNS = 4096  # kernel limit on a classic BPF program
BPF_MEMWORDS = 16

# struct seccomp_data offsets
OFF_NR = 0
OFF_ARCH = 4
OFF_IP_LO = 8
OFF_IP_HI = 12
OFF_ARGS = 16
SECCOMP_DATA_SIZE = 64

# return values (SECCOMP_RET_*)
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_ACTION_FULL = 0xFFFF0000
RET_DATA = 0x0000FFFF

# audit architectures
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
AUDIT_ARCH_ARM = 0x40000028
ARCHES = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}
X32_SYSCALL_BIT = 0x40000000
