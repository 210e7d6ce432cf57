"""Which directories Landlock had to split, and the filter B rules that broker creation there.

Landlock rights are inherited by everything below a rule's directory, so a read-only
carve-out (``.git``) inside a writable root makes the planner (``landlock.plan_path_rules``)
give the root rights only on its existing children: nothing new can be created in the root
itself, nor in any directory between the root and the carve-out. With a mount namespace the
carve-out is a read-only bind mount instead and nothing is split. Without one (containers),
the path-operation broker (``_pathops``) performs creation in those directories on the
command's behalf; this module only finds them and names the calls filter B sends to it.

Pure and cheap (on the launch path): no ``ctypes``, no broker.
"""

from __future__ import annotations

import os

import landlock as ll
import seccomp_bpf as sb

from ..policy._longest import PathTable

#: Calls that create or move a name, trapped by filter B without namespaces when some
#: directory is split (``open``/``openat`` only with O_CREAT or O_TMPFILE: checked in BPF). The
#: legacy names exist on x86_64 only; aarch64's libc uses the ``*at`` calls.
CALLS = ("open", "creat", "openat", "mkdir", "mkdirat", "mknod", "mknodat", "symlink", "symlinkat",
         "link", "linkat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir")
O_CREAT = 0o100
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE, the same on every architecture (O_DIRECTORY is not)

#: The rights a writable root grants whose loss makes a directory "split" (creation refused).
_MAKE = (ll.FS_MAKE_REG | ll.FS_MAKE_DIR | ll.FS_MAKE_SYM | ll.FS_MAKE_FIFO | ll.FS_MAKE_SOCK
         | ll.FS_REMOVE_FILE | ll.FS_REMOVE_DIR)


def _within(p: str, root: str) -> bool:
    return p == root or root == "/" or p.startswith(root.rstrip("/") + "/")


def split_dirs(rules: dict[str, int]) -> tuple[str, ...]:
    """Directories (canonical, existing) where Landlock grants less creation than the
    longest-match ``rules`` say: each rule path that grants creation and has a rule below it
    granting less, and every directory between the two."""
    out: set[str] = set()
    table = PathTable(rules)
    for q, rq in rules.items():
        hit = table.parent(q)
        if hit is None:
            continue
        best = hit[0]
        lost = rules[best] & _MAKE & ~rq
        if not lost:
            continue
        d = os.path.dirname(q)
        while _within(d, best):
            if os.path.isdir(d):
                out.add(d)
            if d == best:
                break
            d = os.path.dirname(d)
    return tuple(sorted(out))


def notify_rules(arch: str) -> tuple[sb.Rule, ...]:
    """Filter B's extra rules: every creating call notifies, ``open``/``openat`` only with
    O_CREAT or O_TMPFILE (an open without them never reaches the broker: it costs nothing)."""
    known = set()
    for name in CALLS:
        try:
            sb.syscall_number(name, arch)
        except KeyError:
            continue
        known.add(name)
    rules = []
    for name, flags_arg in (("open", 1), ("openat", 2)):
        if name in known:
            for bit in (O_CREAT, O_TMPFILE_BIT):
                rules.append(sb.Rule(name, sb.USER_NOTIF, (sb.Arg(flags_arg).masked_eq(bit, bit),)))
    rules += [sb.Rule(name, sb.USER_NOTIF) for name in CALLS if name in known and name not in ("open", "openat")]
    return tuple(rules)


#: File metadata, decided by path without namespaces whether or not a directory is split
#: (``_metaops``): Landlock has no right for it and there is no read-only view.
META = ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "utime", "utimes",
        "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
        "fremovexattr", "setxattrat", "removexattrat")


def meta_rules(arch: str) -> tuple[sb.Rule, ...]:
    out = []
    for name in META:
        try:
            sb.syscall_number(name, arch)
        except KeyError:
            continue
        out.append(sb.Rule(name, sb.USER_NOTIF))
    return tuple(out)
