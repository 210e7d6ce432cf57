"""Our syscall tables agree with libseccomp's resolver on every name both know."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import seccomp_bpf as sb


@pytest.mark.skipif(shutil.which("scmp_sys_resolver") is None,
                    reason="scmp_sys_resolver (Debian package seccomp) not installed")
@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_tables_agree_with_libseccomp(arch):
    names = sb.syscall_names(arch)
    assert len(names) > 300
    # one resolver process per name is slow; the resolver accepts one name per call, so batch
    # through a shell loop
    script = 'for n in "$@"; do scmp_sys_resolver -a ' + arch + ' "$n"; done'
    out = subprocess.run(["sh", "-c", script, "sh", *names], capture_output=True, text=True,
                         check=True).stdout.split()
    assert len(out) == len(names)
    known = 0
    for name, theirs in zip(names, out, strict=True):
        theirs_nr = int(theirs)
        if theirs_nr < 0:
            continue  # newer than this libseccomp
        known += 1
        assert sb.syscall_number(name, arch) == theirs_nr, name
    assert known > 300


def test_well_known_numbers():
    assert sb.syscall_number("getppid", "x86_64") == 110
    assert sb.syscall_number("getppid", "aarch64") == 173
    assert sb.syscall_number("pidfd_getfd", "x86_64") == 438
    assert sb.syscall_number("landlock_restrict_self", "aarch64") == 446
    assert not sb.has_syscall("open", "aarch64")



def test_landlock_numbers_are_the_tables_numbers():
    """landlock keeps its four numbers itself (it imports nothing else from this repository)."""
    from landlock import _ffi as ll

    for arch in sb.ARCHES:
        assert (ll.SYS_CREATE_RULESET, ll.SYS_ADD_RULE, ll.SYS_RESTRICT_SELF) == tuple(
            sb.syscall_number(f"landlock_{n}", arch) for n in ("create_ruleset", "add_rule", "restrict_self"))
        assert ll.SYS_OPENAT2 == sb.syscall_number("openat2", arch)
