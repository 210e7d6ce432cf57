"""The read-only mount view (lsandbox.linux._mount_view) under attack.

Landlock has no right for chmod, chown, utimes, xattrs or inode flags, and handles truncate
only from ABI 3: outside the writable roots those go through Landlock alone. Each probe is a
real call from inside the sandbox, as root and as nobody, at the best Landlock ABI, at ABI 1
and 2, without Landlock (the view alone), and with the pre-5.12 (classic remount) path; the same probe run unsandboxed shows it
really changes the file.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests._sandbox import LSANDBOX, PY, rmtree, world_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security]

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

PROBE = r"""
import errno, fcntl, json, os, struct, sys
W, O = sys.argv[1:3]
R = {}
def t(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def setflags():
    fd = os.open(O + "/f", os.O_RDONLY)
    try:
        buf = fcntl.ioctl(fd, 0x80086601, b"\0" * 8)  # FS_IOC_GETFLAGS
        fcntl.ioctl(fd, 0x40086602, buf)  # FS_IOC_SETFLAGS (chattr), same flags
    finally:
        os.close(fd)
def write(p):
    with open(p, "w") as f:
        f.write("x")
R["chmod"] = t(lambda: os.chmod(O + "/f", 0o777))
R["chown"] = t(lambda: os.chown(O + "/f", os.getuid(), os.getgid()))
R["utime"] = t(lambda: os.utime(O + "/f", (0, 0)))
R["xattr"] = t(lambda: os.setxattr(O + "/f", "user.lsb", b"x"))
R["chattr"] = t(setflags)
R["truncate"] = t(lambda: os.truncate(O + "/f", 0))
R["mkfifo"] = t(lambda: os.mkfifo(O + "/fifo"))
R["rename"] = t(lambda: os.rename(O + "/f", O + "/g"))
R["deny_chmod"] = t(lambda: os.chmod(W + "/secret/key", 0o644))
R["deny_write"] = t(lambda: write(W + "/secret/new"))
R["deny_file_chmod"] = t(lambda: os.chmod(W + "/secret.txt", 0o644))
R["deny_file_write"] = t(lambda: write(W + "/secret.txt"))
R["ws_write"] = t(lambda: write(W + "/sub/new"))  # (a deny inside W splits its Landlock rule:
R["ws_chmod"] = t(lambda: os.chmod(W + "/sub/new", 0o600))  # new top-level files are refused)
R["tmp_write"] = t(lambda: (write(T := "/tmp/lsb-hv-" + os.urandom(6).hex()), os.unlink(T)))
R["git_write"] = t(lambda: write(W + "/.git/x"))
R["devnull"] = t(lambda: write("/dev/null"))
R["shm"] = t(lambda: (write(S := "/dev/shm/lsb-hv-" + os.urandom(6).hex()), os.unlink(S)))
R["sockdir"] = t(lambda: write(os.environ.get("LSANDBOX_SOCKET_DIR", "/nonexistent") + "/x"))
try:
    os.mknod(W + "/sub/null", 0o20666, os.makedev(1, 3))
    R["device_open"] = t(lambda: write(W + "/sub/null"))
except OSError as e:
    R["device_open"] = "mknod:" + errno.errorcode[e.errno]
print(json.dumps(R))
"""

CLASSES = ("chmod", "chown", "utime", "xattr", "chattr", "truncate", "mkfifo", "rename",
           "deny_file_chmod", "deny_file_write")
ENVS = {"best": {}, "abi1": {"LANDLOCK_MAX_ABI": "1"}, "abi2": {"LANDLOCK_MAX_ABI": "2"},
        "no-landlock": {"LANDLOCK_MAX_ABI": "0"},  # the view carries the write policy alone
        "classic": {"LSANDBOX_NO_MOUNT_SETATTR": "1"}}


@pytest.fixture
def world():
    """A workspace (with .git, a denied directory and a denied file) and a directory outside
    the roots holding a file the probing user owns (so that only the sandbox stops it)."""
    ws, out = world_dir("lsb-hv-ws-"), world_dir("lsb-hv-out-")
    os.mkdir(f"{ws}/.git")
    os.mkdir(f"{ws}/sub")
    os.mkdir(f"{ws}/secret", 0o777)
    for p in (f"{ws}/secret/key", f"{ws}/secret.txt", f"{out}/f"):
        with open(p, "w") as f:
            f.write("data")
    yield ws, out
    rmtree(ws)
    rmtree(out)


def _own(world: tuple[str, str], uid: int) -> None:
    for root in world:
        for dirpath, dirs, files in os.walk(root):
            for n in (dirpath, *(os.path.join(dirpath, x) for x in dirs + files)):
                os.chown(n, uid, uid)
                os.chmod(n, 0o777 if os.path.isdir(n) else 0o666)
    os.chmod(f"{world[0]}/secret/key", 0o600)
    os.chmod(f"{world[0]}/secret.txt", 0o600)


def _run(world: tuple[str, str], user: str, env: dict[str, str], sandboxed: bool = True) -> dict:
    ws, out = world
    _own(world, 65534 if user == "nobody" else 0)
    cfg = f"{ws}.toml"
    with open(cfg, "w") as f:
        f.write(f'[permissions.p]\nextends = ":workspace"\n'
                f'filesystem = {{ "{ws}/secret" = "deny", "{ws}/secret.txt" = "deny" }}\n')
    os.chmod(cfg, 0o644)
    try:
        argv = [LSANDBOX, "run", "-c", cfg, "-p", "p", "--"] if sandboxed else []
        e = {**os.environ, **env}
        e.pop("LSANDBOX_REQUIREMENTS", None)
        r = subprocess.run([*(NOBODY if user == "nobody" else []), *argv, PY, "-c", PROBE, ws, out],
                           capture_output=True, text=True, cwd=ws, env=e, timeout=60)
    finally:
        os.unlink(cfg)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("mode", list(ENVS))
def test_outside_the_roots_everything_is_read_only(world, user, mode):
    got = _run(world, user, ENVS[mode])
    assert {k: got[k] for k in CLASSES} == dict.fromkeys(CLASSES, "EROFS"), got
    # masked: an empty directory of mode 0000 (EACCES without capabilities; ENOENT for a root
    # that still has CAP_DAC_READ_SEARCH), read-only
    assert got["deny_chmod"] in ("EACCES", "ENOENT"), got
    assert got["deny_write"] in ("EACCES", "EROFS"), got
    assert open(f"{world[1]}/f").read() == "data"
    assert os.stat(f"{world[1]}/f").st_mode & 0o777 == 0o666
    assert os.stat(f"{world[0]}/secret/key").st_mode & 0o777 == 0o600


@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("mode", list(ENVS))
def test_writable_places_stay_writable(world, user, mode):
    got = _run(world, user, ENVS[mode])
    for k in ("ws_write", "ws_chmod", "tmp_write", "devnull", "shm", "sockdir"):
        assert got[k] == "ok", (k, got)
    assert got["git_write"] == "EROFS", got
    # writable roots are nodev: a device node there (if it could be made at all) does not open
    assert got["device_open"] in ("EACCES", "EPERM") or got["device_open"].startswith("mknod:"), got


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_the_probe_really_attacks(world, user):
    """Unsandboxed, the same calls change the file outside (so EROFS above is the view's)."""
    got = _run(world, user, {}, sandboxed=False)
    assert {k: got[k] for k in ("chmod", "chown", "utime", "chattr", "truncate", "rename")} == dict.fromkeys(
        ("chmod", "chown", "utime", "chattr", "truncate", "rename"), "ok"), got
    assert got["deny_chmod"] == "ok" and got["deny_file_chmod"] == "ok"


def test_masked_paths_look_empty(world):
    """A denied directory is an empty read-only directory of mode 0000, a denied file an
    empty read-only file of mode 0000 (stat works: Landlock does not govern it)."""
    ws, _ = world
    cfg = f"{ws}.toml"
    with open(cfg, "w") as f:
        f.write(f'[permissions.p]\nextends = ":workspace"\n'
                f'filesystem = {{ "{ws}/secret" = "deny", "{ws}/secret.txt" = "deny" }}\n')
    probe = (f"import os; st = os.stat({ws!r} + '/secret'); f = os.stat({ws!r} + '/secret.txt'); "
             "print(oct(st.st_mode), oct(f.st_mode), f.st_size)")
    try:
        r = subprocess.run([LSANDBOX, "run", "-c", cfg, "-p", "p", "--", PY, "-c", probe],
                           capture_output=True, text=True, cwd=ws, timeout=60)
    finally:
        os.unlink(cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0o40000", "0o100000", "0"]


def test_without_namespaces_no_view(world):
    """LSANDBOX_NO_NAMESPACES=1: no mount namespace, so no view (that mode's open classes are
    reported by doctor/explain)."""
    e = {**os.environ, "LSANDBOX_NO_NAMESPACES": "1"}
    r = subprocess.run([LSANDBOX, "run", "--", "sh", "-c", "grep ' / / ' /proc/self/mountinfo; echo $$"],
                       capture_output=True, text=True, cwd=world[0], env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    line, pid = r.stdout.splitlines()
    assert " / / rw," in line and pid != "2"


def _apply_bogus_view() -> str:
    from lsandbox.linux import _sys
    from lsandbox.linux._mount_view import WRITE, MountView, apply_view

    _sys.unshare(_sys.CLONE_NEWNS)
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    try:
        apply_view(MountView(steps=((WRITE, "/nonexistent-lsb"),), clones=("/nonexistent-lsb",)),
                   root=True, userns=False)
    except OSError as e:
        return str(e)
    return "applied"


def test_a_mount_the_view_cannot_make_fails_the_launch():
    """Nothing is skipped: a mount that fails raises, naming it (the child reports it and
    exits 125: ``lsandbox: error: sandbox setup failed: ... mount view: ...``)."""
    from tests._util import run_in_child

    got = run_in_child(_apply_bogus_view).unwrap()
    assert "mount view: open_tree /nonexistent-lsb: No such file or directory" in got, got


def test_denial_summary_names_the_view():
    """The view answers before Landlock (no audit record): the summary says so, never a
    silent '(none observed)' alone."""
    r = subprocess.run([LSANDBOX, "run", "--log-denials", "--", "sh", "-c", "echo x > /etc/lsb-hv-x"],
                       capture_output=True, text=True, cwd="/tmp", timeout=60)
    assert "Read-only file system" in r.stderr and not os.path.exists("/etc/lsb-hv-x")
    assert "refused by the read-only mount view (EROFS) before Landlock" in r.stderr, r.stderr
