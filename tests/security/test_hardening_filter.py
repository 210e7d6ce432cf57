"""Set-id bits, device nodes and inode flags (issue 12, "What to build" 3 and 6).

End to end in every mode (root and nobody, with and without namespaces): files the sandbox
creates never carry set-id bits, no device node is made (``mknod x b 7 0``, ``mknod x c 10
257`` = /dev/userfaultfd), inode flags are not changed, and the new entries of filter A's
deny list answer EPERM. Then each layer alone against the real kernel, as root with every
capability (so that only that layer stands in the way): filter A refuses the modes, and
Landlock, with the rights the plan grants a writable root, refuses device nodes.

Shown to fail without the fix: with ``_file_rules`` returning [] (and the inode-flag
ioctls, TIOCSETD, file_setattr and lsm_set_self_attr taken out of filter A), chmod 4755,
open(O_CREAT, 04755), mknod S_IFREG|04755 and O_TMPFILE 04755 succeed in every mode and
leave set-id files behind, openat2 works, FS_IOC_SETFLAGS succeeds, and
``test_filter_a_alone`` fails; with ``fs_rights`` granting ``from_write`` whole again,
``test_landlock_alone_refuses_device_nodes`` makes a node.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

import pytest

import landlock as ll
import seccomp_bpf as sb
from lsandbox.linux._filter_a import build_filter_a
from lsandbox.linux._plan import fs_rights
from lsandbox.policy import FsAccess
from tests._sandbox import world_dir
from tests._util import run_in_child
from tests.security._hardening import MODE_IDS, MODES, probe

pytestmark = [pytest.mark.kernel, pytest.mark.security]

FILES = r"""
import fcntl, stat
W = sys.argv[1]
p = os.path.join(W, "f")
open(p, "w").close()
t("chmod_4755", lambda: os.chmod(p, 0o4755))
t("chmod_2755", lambda: os.chmod(p, 0o2755))
t("chmod_755", lambda: os.chmod(p, 0o755))
fd = os.open(p, os.O_RDONLY)
t("fchmod_6755", lambda: os.fchmod(fd, 0o6755))
t("open_creat_4755", lambda: os.close(os.open(os.path.join(W, "g"), os.O_CREAT | os.O_WRONLY, 0o4755)))
t("open_tmpfile_2755", lambda: os.close(os.open(W, os.O_TMPFILE | os.O_WRONLY, 0o2755)))
t("mknod_reg_4755", lambda: os.mknod(os.path.join(W, "h"), stat.S_IFREG | 0o4755))
t("mknod_b_7_0", lambda: os.mknod(os.path.join(W, "b"), stat.S_IFBLK | 0o600, os.makedev(7, 0)))
t("mknod_c_10_257", lambda: os.mknod(os.path.join(W, "c"), stat.S_IFCHR | 0o600, os.makedev(10, 257)))
t("mkfifo", lambda: os.mkfifo(os.path.join(W, "fifo")))
how = ctypes.create_string_buffer(24)  # struct open_how {flags, mode, resolve}: O_CREAT, 04755
how.raw = (0o100 | 1).to_bytes(8, "little") + (0o4755).to_bytes(8, "little") + bytes(8)
path = ctypes.create_string_buffer(os.path.join(W, "o2").encode())  # kept alive across the call
R["openat2"] = sc(437, -100, ctypes.addressof(path), ctypes.addressof(how), 24)
flags = bytearray(8)
fcntl.ioctl(fd, 0x80086601, flags)  # FS_IOC_GETFLAGS: reading works
t("setflags_unchanged", lambda: fcntl.ioctl(fd, 0x40086602, bytes(flags)))  # FS_IOC_SETFLAGS, same value
gen = bytearray(8)
fcntl.ioctl(fd, 0x80087601, gen)  # FS_IOC_GETVERSION: reading works
t("setversion", lambda: fcntl.ioctl(fd, 0x40087602, bytes(gen)))  # same generation
t("ext4_setversion", lambda: fcntl.ioctl(fd, 0x40086604, bytes(gen)))
# fs-verity, fscrypt (policy, remove key) and btrfs (subvolume, snapshot): answered by the
# filesystem outside (ENOTTY, EOPNOTSUPP, EINVAL, ENOTDIR), never reaching it inside
R["fs_meta"] = {hex(c): "" for c in (0x40806685, 0x800C6613, 0xC0406618, 0x5000940E, 0x50009418, 0x4008941A)}
for c in R["fs_meta"]:
    t("fs_meta " + c, lambda: fcntl.ioctl(fd, int(c, 16), bytearray(4096)))
    R["fs_meta"][c] = R.pop("fs_meta " + c)
ldisc = ctypes.c_int(0)
R["tiocsetd"] = sc(16 if os.uname().machine == "x86_64" else 29, 0, 0x5423, ctypes.addressof(ldisc))
R["lsm_set_self_attr"] = sc(460, 0, 0, 0, 0)
R["setid_files"] = sorted(n for n in os.listdir(W) if os.lstat(os.path.join(W, n)).st_mode & 0o6000)
R["devices"] = sorted(n for n in os.listdir(W) if stat.S_ISCHR(os.lstat(os.path.join(W, n)).st_mode)
                      or stat.S_ISBLK(os.lstat(os.path.join(W, n)).st_mode))
"""

REFUSED = ("chmod_4755", "chmod_2755", "fchmod_6755", "open_creat_4755", "open_tmpfile_2755", "mknod_reg_4755",
           "mknod_b_7_0", "mknod_c_10_257", "setflags_unchanged", "setversion", "ext4_setversion", "tiocsetd",
           "lsm_set_self_attr")


@pytest.fixture
def wdir():
    d = world_dir("lsb-setid-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_no_setid_files_no_device_nodes(mode, wdir):
    _name, nobody, env = mode
    got = probe(FILES, [wdir], nobody=nobody, env=env, flags=("-w", wdir))
    assert {k: got[k] for k in REFUSED} == dict.fromkeys(REFUSED, "EPERM"), got
    assert got["openat2"] == "ENOSYS"
    assert set(got["fs_meta"].values()) == {"EPERM"}, got["fs_meta"]
    assert got["chmod_755"] == "ok" and got["mkfifo"] == "ok"
    assert got["setid_files"] == [] and got["devices"] == []
    for name in os.listdir(wdir):  # and from outside
        assert not os.lstat(os.path.join(wdir, name)).st_mode & 0o6000, name


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_inode_ioctls_refused_at_landlock_abi_1_without_namespaces(nobody, wdir):
    """The old-kernel case of the inode ioctls (no mount view, the oldest Landlock): filter A
    alone refuses them (without it SETVERSION answers "ok" here too)."""
    if nobody and os.geteuid() != 0:
        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    if __import__("landlock").kernel_abi() < 1:
        pytest.skip("no Landlock on this kernel: lsandbox run refuses to start without namespaces")
    got = probe(FILES, [wdir], nobody=nobody, env={"LSANDBOX_NO_NAMESPACES": "1", "LANDLOCK_MAX_ABI": "1"},
                flags=("-w", wdir))
    assert got["setversion"] == got["ext4_setversion"] == got["setflags_unchanged"] == "EPERM", got
    assert set(got["fs_meta"].values()) == {"EPERM"}, got["fs_meta"]


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_same_probes_unsandboxed(nobody, wdir):
    """The attacks are real: outside the sandbox the same user makes set-id files (root also
    device nodes), sets inode flags, and openat2 exists."""
    got = probe(FILES, [wdir], nobody=nobody, env={}, sandboxed=False)
    assert got["chmod_4755"] == got["open_creat_4755"] == got["mknod_reg_4755"] == "ok"
    assert got["setflags_unchanged"] != "EPERM"  # "ok" where the filesystem has inode flags
    assert got["setversion"] != "EPERM" and got["ext4_setversion"] != "EPERM"  # "ok" on ext4
    assert "EPERM" not in got["fs_meta"].values(), got["fs_meta"]
    assert got["openat2"] == "ok" or (got["openat2"] == "ENOSYS" and _kernel() < (5, 6))
    assert got["tiocsetd"] != "EPERM" and got["lsm_set_self_attr"] != "EPERM"
    assert got["setid_files"]
    if not nobody:
        assert got["mknod_b_7_0"] == got["mknod_c_10_257"] == "ok"


def _kernel() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int(minor.split("-")[0])


def _err(fn) -> str:  # noqa: ANN001
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def _with_filter_a(d: str) -> dict:
    sb.set_no_new_privs()
    sb.install_filter(build_filter_a(sb.native_arch(), network=False))
    p = os.path.join(d, "f")
    open(p, "w").close()
    return {"chmod": _err(lambda: os.chmod(p, 0o4755)),
            "mknod_blk": _err(lambda: os.mknod(os.path.join(d, "b"), stat.S_IFBLK | 0o600, os.makedev(7, 0))),
            "mknod_chr": _err(lambda: os.mknod(os.path.join(d, "c"), stat.S_IFCHR | 0o600, os.makedev(1, 3)))}


def test_filter_a_alone(wdir):
    """Root with every capability, no Landlock: filter A alone refuses the modes."""
    got = run_in_child(_with_filter_a, wdir).unwrap()
    assert got == {"chmod": "EPERM", "mknod_blk": "EPERM", "mknod_chr": "EPERM"}
    assert os.listdir(wdir) == ["f"]


def _with_landlock_plan_rights(d: str, abi: int) -> str:
    rs = ll.Ruleset(handled_fs=ll.AccessFs.from_all(abi), max_abi=abi)
    rs.add_path(d, fs_rights(FsAccess.WRITE, abi))
    rs.restrict_self()
    # /dev/null's numbers: harmless even if it were made
    return _err(lambda: os.mknod(os.path.join(d, "c"), stat.S_IFCHR | 0o666, os.makedev(1, 3)))


@pytest.mark.parametrize("abi", [a for a in (1, 2, 3, ll.kernel_abi()) if 0 < a <= ll.kernel_abi()] or [0])
def test_landlock_alone_refuses_device_nodes(wdir, abi):
    """Root with CAP_MKNOD, no seccomp: the rights the plan grants a writable root make no
    device node, on every ABI (MAKE_CHAR/MAKE_BLOCK handled, never granted)."""
    if not abi:
        pytest.skip("no Landlock on this kernel (Linux 5.13)")
    assert run_in_child(_with_landlock_plan_rights, wdir, abi).unwrap() == "EACCES"
    assert os.listdir(wdir) == []
