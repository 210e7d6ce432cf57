"""Red-team findings against the first promise, each a real attack from inside the sandbox.

Fixed here: the sandbox's init (PID 1 of its PID namespace) was reachable through /proc/1
(its report pipe to the supervisor, its memory). Held, kept as regressions: the i386
(``int 0x80``) and x32 syscall entry points on x86_64. Fixed too: read rights on
``/`` no longer reach the device nodes under ``/dev`` (root read consoles' screens, and below
Landlock ABI 5 used /dev/userfaultfd and /dev/kvm).
"""

from __future__ import annotations

import json
import os

import pytest

from tests._sandbox import PY
from tests.security._hardening import PRELUDE, lsandbox, probe

pytestmark = [pytest.mark.kernel, pytest.mark.security]

ABIS = {"best": {}, "abi1": {"LANDLOCK_MAX_ABI": "1"}, "abi2": {"LANDLOCK_MAX_ABI": "2"}}

# Every descriptor of init opened for writing and fed report records the supervisor trusts
# (lsandbox.linux._reports: a SETUP failure and a NOTE); then init's memory and environment.
# Before the fix the command could forge a setup failure (a failed launch, exit 125), a status
# (garbage crashed the CLI) or fill the pipe so that init blocked writing the real status and
# the run never ended.
INIT = r"""
import struct
forged = 0
for n in range(64):
    try:
        fd = os.open("/proc/1/fd/%d" % n, os.O_WRONLY)
    except OSError:
        continue
    try:
        os.write(fd, struct.pack("<BBHqH", 2, 0, 0, 0, 20) + b"forged by the command"[:20]
                 + struct.pack("<BBHqH", 1, 0, 0, 0, 11) + b"forged note")
        forged += 1
    except OSError:
        pass
    os.close(fd)
R["forged"] = forged
t("mem", lambda: os.close(os.open("/proc/1/mem", os.O_RDONLY)))  # needs ptrace attach access
t("environ", lambda: open("/proc/1/environ").read())
R["init"] = open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode()
sys.stdout.write("@@" + json.dumps(R) + "\n")
sys.stdout.flush()
os._exit(3)
"""


@pytest.mark.parametrize("abi", list(ABIS))
@pytest.mark.parametrize("user", ["root", "nobody"])
def test_init_is_out_of_the_commands_reach(user, abi):
    """Applies with a PID namespace (without one the command is the supervisor's direct
    child, which Landlock's ptrace scoping already keeps out of reach)."""
    r = lsandbox(["run", "--", PY, "-c", PRELUDE + INIT], nobody=user == "nobody", env=ABIS[abi])
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    got = json.loads(line[2:])
    if "python" not in got["init"] and "lsandbox" not in got["init"]:
        pytest.skip("no PID namespace here: PID 1 is not the sandbox's init")
    assert r.returncode == 3, (r.returncode, r.stderr)  # the command's own status, not 125
    assert "forged" not in r.stderr, r.stderr
    assert got["forged"] == 0, got
    assert got["mem"] == "EACCES" and got["environ"] == "EACCES", got


# x86_64 code run from a 64-bit process: ``int 0x80`` enters the i386 syscall table
# (AUDIT_ARCH_I386), ``syscall`` with bit 30 set enters x32. Filter A kills both, whatever
# the number: here i386 mount (21), unshare (310), setns (346), socketcall (102) and x32
# mount, each in a forked child whose fate is recorded.
ENTRIES = r"""
import mmap, struct
def code(blob):
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(blob)
    f = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
    f._m = m
    return f
def i386(nr):  # push rbx; mov eax, nr; xor ebx/ecx/edx; int 0x80; pop rbx; ret
    return code(b"\x53\xb8" + struct.pack("<I", nr) + b"\x31\xdb\x31\xc9\x31\xd2\xcd\x80\x5b\xc3")
def x32(nr):  # xor rdi/rsi/rdx; mov eax, nr | X32; syscall; ret
    return code(b"\x48\x31\xff\x48\x31\xf6\x48\x31\xd2\xb8" + struct.pack("<I", nr | 0x40000000)
                + b"\x0f\x05\xc3")
for name, f in (("i386_mount", i386(21)), ("i386_unshare", i386(310)), ("i386_setns", i386(346)),
                ("i386_socketcall", i386(102)), ("x32_mount", x32(165))):
    pid = os.fork()
    if pid == 0:
        f()
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    R[name] = "SIGSYS" if os.WIFSIGNALED(st) and os.WTERMSIG(st) == 31 else "ran"
"""

ENTRY_MODES = {
    "root": (False, {}), "root-no-namespaces": (False, {"LSANDBOX_NO_NAMESPACES": "1"}),
    "nobody": (True, {}), "nobody-no-namespaces": (True, {"LSANDBOX_NO_NAMESPACES": "1"}),
    "nobody-abi1": (True, {"LANDLOCK_MAX_ABI": "1"}),
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 machine code")
@pytest.mark.parametrize("mode", list(ENTRY_MODES))
def test_foreign_syscall_entry_points_are_killed(mode):
    nobody, env = ENTRY_MODES[mode]
    got = probe(ENTRIES, [], nobody=nobody, env=env)
    assert set(got.values()) == {"SIGSYS"}, got


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 machine code")
def test_the_entry_points_run_unsandboxed():
    """The probe is real: outside the sandbox int 0x80 reaches the i386 table (the mount
    fails, unprivileged, without killing anything)."""
    got = probe(ENTRIES, [], nobody=True, env={}, sandboxed=False)
    assert got["i386_mount"] == "ran" and got["i386_unshare"] == "ran", got


DEVICES = r"""
import fcntl
def rd(p):
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.read(fd, 16)
    finally:
        os.close(fd)
t("vcs", lambda: rd("/dev/vcs"))
t("uffd_ioctl", lambda: fcntl.ioctl(os.open("/dev/userfaultfd", os.O_RDONLY), 0xAA00, 0))  # USERFAULTFD_IOC_NEW
"""


@pytest.mark.skipif(os.geteuid() != 0 or not (os.path.exists("/dev/vcs") and os.path.exists("/dev/userfaultfd")),
                    reason="needs root and /dev/vcs, /dev/userfaultfd (Linux 6.1)")
@pytest.mark.parametrize("mode", ["namespaces", "no-namespaces"])
def test_root_cannot_use_host_devices(mode):
    """Read rights on ``/`` reached every device node: as root (a 0600 root node needs no
    capability) /dev/vcs (the consoles' screens) was readable, and below Landlock ABI 5 (no
    IOCTL_DEV) /dev/userfaultfd handed out the userfaultfd filter A refuses (and /dev/kvm VMs,
    /dev/loop-control loop devices). Codex holds (bubblewrap's minimal /dev)."""
    env = {"LANDLOCK_MAX_ABI": "2"}
    if mode == "no-namespaces":
        env["LSANDBOX_NO_NAMESPACES"] = "1"
    got = probe(DEVICES, [], nobody=False, env=env)
    assert got == {"vcs": "EACCES", "uffd_ioctl": "EACCES"}, got


@pytest.mark.skipif(os.geteuid() != 0 or not (os.path.exists("/dev/vcs") and os.path.exists("/dev/userfaultfd")),
                    reason="needs root and /dev/vcs, /dev/userfaultfd (Linux 6.1)")
def test_host_devices_are_real_unsandboxed():
    got = probe(DEVICES, [], nobody=False, env={}, sandboxed=False)
    assert got == {"vcs": "ok", "uffd_ioctl": "ok"}, got


@pytest.mark.parametrize("mode", ["namespaces", "no-namespaces"])
def test_the_device_files_programs_need_still_work(mode):
    env = {"LSANDBOX_NO_NAMESPACES": "1"} if mode == "no-namespaces" else {}
    code = "\n".join(f"t({p!r}, lambda: os.close(os.open({p!r}, os.O_RDWR)))"
                     for p in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"))
    code += "\nt('ls', lambda: os.listdir('/dev'))"
    got = probe(code, [], nobody=True, env=env)
    assert set(got.values()) == {"ok"}, got


# Every mount-API, namespace and cross-process call filter A refuses, on the native 64-bit
# entry point (the i386/x32 ones are killed above), with harmless arguments.
SYSCALLS_X86_64 = r"""
buf = ctypes.create_string_buffer(b"tmpfs", 64); a = ctypes.addressof(buf)
tmp = ctypes.create_string_buffer(b"/tmp"); d = ctypes.addressof(tmp)
for name, nr, args in (
        ("fsopen", 430, (a, 0)), ("fspick", 433, (-100, d, 0)), ("open_tree", 428, (-100, d, 1)),
        ("open_tree_attr", 467, (-100, d, 1, 0, 0)), ("move_mount", 429, (-1, d, -100, d, 0)),
        ("fsmount", 432, (-1, 0, 0)), ("fsconfig", 431, (-1, 0, 0, 0, 0)),
        ("mount_setattr", 442, (-100, d, 0, 0, 0)), ("umount2", 166, (d, 0)), ("pivot_root", 155, (d, d)),
        ("chroot", 161, (d,)), ("setns", 308, (0, 0)), ("pidfd_getfd", 438, (0, 0, 0)),
        ("process_madvise", 440, (0, 0, 0, 0, 0)), ("kcmp", 312, (1, 1, 0, 0, 0)),
        ("unshare_newns", 272, (0x20000,)), ("clone_newuser", 56, (0x10000000 | 17, 0, 0, 0, 0)),
        ("syslog", 103, (3, a, 10)), ("fanotify_init", 300, (0, 0))):
    R[name] = sc(nr, *args)
"""

SYSCALL_MODES = {
    "root": (False, {}), "root-no-namespaces": (False, {"LSANDBOX_NO_NAMESPACES": "1"}),
    "nobody": (True, {}), "nobody-no-namespaces-abi1": (True, {"LSANDBOX_NO_NAMESPACES": "1", "LANDLOCK_MAX_ABI": "1"}),
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 syscall numbers")
@pytest.mark.parametrize("mode", list(SYSCALL_MODES))
def test_mount_api_and_cross_process_calls_refused(mode):
    nobody, env = SYSCALL_MODES[mode]
    got = probe(SYSCALLS_X86_64, [], nobody=nobody, env=env)
    assert set(got.values()) == {"EPERM"}, got
