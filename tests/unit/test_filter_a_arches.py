"""Filter A on every architecture seccomp_bpf has tables for: every variant compiles with
unknown names refused, per-architecture names are declared explicitly, and the argument
checks (set-id bits, device nodes, truncation below Landlock ABI 3, inode flags) decide as
intended, run through the BPF interpreter (the oracle for architectures this machine
cannot execute)."""

from __future__ import annotations

import errno
import itertools

import pytest

import landlock as ll
import seccomp_bpf as sb
from lsandbox.linux import _filter_a as fa
from lsandbox.policy import FsAccess

VARIANTS = list(itertools.product((False, True), repeat=3))
EPERM = sb.errno(errno.EPERM).raw
EACCES = sb.errno(errno.EACCES).raw
ENOSYS = sb.errno(errno.ENOSYS).raw
ALLOW = sb.ALLOW.raw


@pytest.mark.parametrize("arch", sorted(sb.ARCHES))
@pytest.mark.parametrize("network,unix_dgram,guard", VARIANTS)
def test_every_variant_compiles_for_every_arch(arch, network, unix_dgram, guard):
    rules = fa.filter_a_rules(arch, network=network, unix_dgram=unix_dgram, truncate_guard=guard)
    prog = sb.compile_filter(sb.Filter(arch, rules, sb.ALLOW))  # skip_unknown off: a bad name raises
    assert 0 < len(prog) <= sb.BPF_MAXINSNS
    names = {r.syscall for r in rules}
    assert names == {r.syscall for r in rules if sb.has_syscall(r.syscall, arch)}
    # nothing of the deny list is dropped on this architecture
    assert {n for n in fa.DENIED if fa.on(arch, n)} <= names
    assert fa.build_filter_a(arch, network=network, unix_dgram=unix_dgram, truncate_guard=guard).to_bytes() \
        == prog.to_bytes()


def test_issue_names():
    """quotactl_path is no syscall; quotactl_fd (443) is one and is denied."""
    assert "quotactl_path" not in fa.DENIED and "quotactl_fd" in fa.DENIED
    for arch in sb.ARCHES:
        assert sb.syscall_number("quotactl_fd", arch) == 443


def test_only_on_is_exact():
    """A name in ONLY_ON exists on exactly the architectures listed; every other name of
    filter A exists on every architecture."""
    for name, arches in fa.ONLY_ON.items():
        assert {a for a in sb.ARCHES if sb.has_syscall(name, a)} == set(arches), name
    everywhere = set(fa.DENIED) - set(fa.ONLY_ON)
    for arch in sb.ARCHES:
        assert all(sb.has_syscall(n, arch) for n in everywhere), arch


def _run(prog: sb.Program, arch: str, name: str, *args: int) -> int:
    data = sb.SeccompData(sb.syscall_number(name, arch), sb.ARCHES[arch], 0, (*args, 0, 0, 0, 0, 0, 0)[:6])
    return sb.simulate(prog, data)


O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_TMPFILE = 1, 2, 0o100, 0o1000, 0o20000000
S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO = 0o100000, 0o020000, 0o060000, 0o010000


@pytest.mark.parametrize("arch", sorted(sb.ARCHES))
@pytest.mark.parametrize("guard", [False, True])
def test_file_rules_decide(arch, guard):
    prog = fa.build_filter_a(arch, network=False, truncate_guard=guard)
    at = -100 & 0xFFFFFFFFFFFFFFFF  # AT_FDCWD
    cases = [
        (("fchmodat", at, 0, 0o4755), EPERM), (("fchmodat", at, 0, 0o2755), EPERM),
        (("fchmodat", at, 0, 0o1777), ALLOW), (("fchmodat2", at, 0, 0o6755, 0), EPERM),
        (("fchmod", 3, 0o4700), EPERM), (("fchmod", 3, 0o755), ALLOW),
        (("openat", at, 0, O_CREAT | O_WRONLY, 0o4755), EPERM),
        (("openat", at, 0, O_CREAT | O_WRONLY, 0o755), ALLOW),
        (("openat", at, 0, O_WRONLY, 0o4755), ALLOW),  # no O_CREAT: the mode is ignored
        (("openat", at, 0, O_TRUNC | O_WRONLY, 0o4755), ALLOW),
        (("openat", at, 0, O_CREAT | O_TRUNC | O_WRONLY, 0o6755), EPERM),
        (("openat", at, 0, O_TMPFILE | O_WRONLY, 0o2755), EPERM),
        (("mknodat", at, 0, S_IFBLK | 0o600, 0x700), EPERM), (("mknodat", at, 0, S_IFCHR | 0o600, 0), EPERM),
        (("mknodat", at, 0, S_IFREG | 0o4755, 0), EPERM), (("mknodat", at, 0, S_IFIFO | 0o644, 0), ALLOW),
        (("mknodat", at, 0, S_IFREG | 0o644, 0), ALLOW),
        (("openat2", at, 0, 0, 24), ENOSYS),
        (("openat", at, 0, O_TRUNC, 0), EACCES if guard else ALLOW),  # O_RDONLY | O_TRUNC
        (("openat", at, 0, O_TRUNC | 3, 0), EACCES if guard else ALLOW),
        (("openat", at, 0, O_TRUNC | O_WRONLY, 0), ALLOW), (("openat", at, 0, O_TRUNC | O_RDWR, 0), ALLOW),
        (("truncate", 0, 0), EACCES if guard else ALLOW), (("ftruncate", 3, 0), ALLOW),
        (("ioctl", 3, 0x40086602, 0), EPERM), (("ioctl", 3, 0x40046602, 0), EPERM),
        (("ioctl", 3, 0x401C5820, 0), EPERM), (("ioctl", 3, 0x80086601, 0), ALLOW),  # GETFLAGS
        (("ioctl", 3, 0x5423, 0), EPERM),  # TIOCSETD
        (("ioctl", 3, 0x40087602, 0), EPERM), (("ioctl", 3, 0x80087601, 0), ALLOW),  # SET/GETVERSION
        (("ioctl", 3, 0x40806685, 0), EPERM), (("ioctl", 3, 0xC0406618, 0), EPERM),  # verity, fscrypt key
        (("ioctl", 3, 0x50009418, 0), EPERM), (("ioctl", 3, 0x80089419, 0), ALLOW),  # btrfs SUBVOL_CREATE_V2/GETFLAGS
        (("ioctl", 3, 0xC0C09425, 0), EPERM),  # btrfs SET_RECEIVED_SUBVOL_32
        (("file_setattr", at, 0, 0, 0, 0), EPERM), (("lsm_set_self_attr", 0, 0, 0, 0), EPERM),
        # the kernel reads 32 bits of the mode and flags: high garbage changes nothing
        (("fchmodat", at, 0, (1 << 40) | 0o4755), EPERM),
        (("openat", at, 0, (1 << 40) | O_CREAT, (1 << 35) | 0o4755), EPERM),
    ]
    if arch == "x86_64":
        cases += [(("chmod", 0, 0o4755), EPERM), (("chmod", 0, 0o755), ALLOW), (("creat", 0, 0o4755), EPERM),
                  (("open", 0, O_CREAT, 0o2755), EPERM), (("open", 0, O_TRUNC, 0), EACCES if guard else ALLOW),
                  (("mknod", 0, S_IFCHR, 0), EPERM), (("mknod", 0, S_IFIFO | 0o644, 0), ALLOW),
                  (("_sysctl", 0), EPERM), (("iopl", 3), EPERM)]
    for (name, *args), want in cases:
        assert _run(prog, arch, name, *args) == want, (arch, name, [oct(a) for a in args])


@pytest.mark.parametrize("abi", range(1, 10))
def test_no_device_node_rights_granted(abi):
    """MAKE_CHAR/MAKE_BLOCK stay handled (denied) and are granted nowhere, on every ABI."""
    from lsandbox.linux._plan import fs_rights

    never = ll.AccessFs.MAKE_CHAR | ll.AccessFs.MAKE_BLOCK
    assert ll.AccessFs.from_all(abi) & never == never
    for access in FsAccess:
        assert not fs_rights(access, abi) & never
    assert fs_rights(FsAccess.WRITE, abi) & ll.AccessFs.MAKE_REG


def test_plan_grants_no_device_node_rights():
    from lsandbox.linux._features import features
    from lsandbox.linux._plan import build_plan
    from tests._sandbox import policy

    never = ll.AccessFs.MAKE_CHAR | ll.AccessFs.MAKE_BLOCK
    plan = build_plan(policy(":workspace", cwd="/tmp"), "/tmp", features())
    assert plan.handled_fs & never == never
    assert plan.landlock_rules and not [p for p, acc in plan.landlock_rules if acc & never]
