"""The per-run socket directory ($LSANDBOX_SOCKET_DIR) through ``lsandbox run``: the command
may rename it (it lives where the command can write), so nothing trusts its path. Swapping
it for a symlink reaches nothing outside, binds nothing outside, and cleanup deletes nothing
outside; directories of killed supervisors are removed by the next run, and only those.

Every case runs on both brokers (C fast path and pure Python), as root and as nobody, with
and without namespaces."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests._sandbox import LSANDBOX, PY, UnixServer, rmtree, world_dir
from tests.security._docker_run import docker_run

pytestmark = [pytest.mark.kernel, pytest.mark.security, pytest.mark.skipif(sys.platform != "linux", reason="Linux")]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
MODES = pytest.mark.parametrize("mode", ["fastpath", "python"])
USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
NS = pytest.mark.parametrize("ns", [True, False], ids=["ns", "no-ns"])

SWAP = r"""
import errno, json, os, socket, sys
out = sys.argv[1]
d = os.environ["LSANDBOX_SOCKET_DIR"]
def t(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
os.rename(d, d + ".old")  # before the first brokered call (the broker starts lazily)
os.symlink(out, d)  # the socket directory's path now leads outside
R = {"connect_swapped": t(lambda: socket.socket(socket.AF_UNIX).connect(d + "/srv.sock")),
     "bind_swapped": t(lambda: socket.socket(socket.AF_UNIX).bind(d + "/planted.sock"))}
own = socket.socket(socket.AF_UNIX)
R["bind_own"] = t(lambda: (own.bind(d + ".old/own.sock"), own.listen(8)))
R |= {"connect_own": t(lambda: socket.socket(socket.AF_UNIX).connect(d + ".old/own.sock")),
     "bind_moved": t(lambda: socket.socket(socket.AF_UNIX).bind(d + ".old/new.sock")),
     "missing": t(lambda: socket.socket(socket.AF_UNIX).connect(d + ".old/nothing.sock"))}
print("@@" + json.dumps(R))
"""


def _env(tmp: str, mode: str, ns: bool) -> dict[str, str]:
    env = {**os.environ, "TMPDIR": tmp}
    env.pop("LSANDBOX_BROKER_NO_FASTPATH", None)
    env.pop("LSANDBOX_NO_NAMESPACES", None)
    if mode == "python":
        env["LSANDBOX_BROKER_NO_FASTPATH"] = "1"
    if not ns:
        env["LSANDBOX_NO_NAMESPACES"] = "1"
    return env


def _ours(tmp: str) -> list[str]:
    return sorted(glob.glob(f"{tmp}/lsandbox-sock-*"))


@MODES
@USERS
@NS
def test_swapped_socket_dir_reaches_binds_and_deletes_nothing_outside(mode, nobody, ns):
    tmp, out = world_dir("lsb-sd-tmp-", "/tmp"), world_dir("lsb-sd-out-")
    srv = UnixServer(f"{out}/srv.sock")
    with open(f"{out}/keep.txt", "w") as f:
        f.write("mine")
    os.chmod(f"{out}/keep.txt", 0o666)
    try:
        argv = [*(NOBODY if nobody else []), LSANDBOX, "run", "-w", tmp, "--", PY, "-c", SWAP, out]
        res = subprocess.run(argv, env=_env(tmp, mode, ns), capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        got = json.loads(next(ln[2:] for ln in res.stdout.splitlines() if ln.startswith("@@")))
        assert got == {"connect_swapped": "EACCES", "bind_swapped": "EACCES", "bind_own": "ok", "connect_own": "ok",
                       "bind_moved": "ok", "missing": "ENOENT"}, got
        assert srv.accepts == 0
        assert sorted(os.listdir(out)) == ["keep.txt", "srv.sock"]  # nothing bound, nothing deleted
        left = _ours(tmp)  # the renamed directory was removed (through its descriptor); the
        assert len(left) == 1 and os.path.islink(left[0]), left  # command's symlink stays
    finally:
        srv.close()
        rmtree(tmp)
        rmtree(out)


def test_unusable_tmpdir_is_one_error_line_and_125():
    res = subprocess.run([LSANDBOX, "run", "--", "true"], env={**os.environ, "TMPDIR": "/nonexistent"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 125, res
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("lsandbox: error: "), res.stderr
    assert "/nonexistent" in res.stderr


def _wait_dirs(tmp: str, n: int) -> list[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [p for p in _ours(tmp) if p.endswith("-f")]
        if len(found) >= n:
            return found
        time.sleep(0.02)
    raise AssertionError(f"expected {n} socket directories in {tmp}: {_ours(tmp)}")


@MODES
@USERS
@NS
def test_killed_supervisors_directory_is_removed_by_the_next_run_and_only_it(mode, nobody, ns):
    tmp = world_dir("lsb-sd-stale-", "/tmp")
    env = _env(tmp, mode, ns)
    pre = NOBODY if nobody else []
    live = killed = None
    try:
        # decoys, none of which the next run may touch: an old-style (unlocked) name, a
        # symlink with our form of name, and (as root) one owned by another user
        os.mkdir(f"{tmp}/lsandbox-sock-0123456789ab", 0o700)
        os.mkdir(f"{tmp}/target", 0o777)
        open(f"{tmp}/target/precious", "w").close()
        os.symlink(f"{tmp}/target", f"{tmp}/lsandbox-sock-aaaaaaaaaaaa-f")
        decoys = {f"{tmp}/lsandbox-sock-0123456789ab", f"{tmp}/lsandbox-sock-aaaaaaaaaaaa-f"}
        if not nobody:
            os.mkdir(f"{tmp}/lsandbox-sock-bbbbbbbbbbbb-f", 0o700)
            os.chown(f"{tmp}/lsandbox-sock-bbbbbbbbbbbb-f", 65534, 65534)
            decoys.add(f"{tmp}/lsandbox-sock-bbbbbbbbbbbb-f")
        killed = subprocess.Popen([*pre, LSANDBOX, "run", "--", "sleep", "60"], env=env)
        (stale,) = set(_wait_dirs(tmp, len(decoys))) - decoys
        open(f"{stale}/left.txt", "w").close()
        os.mkdir(f"{stale}/sub")
        killed.send_signal(signal.SIGKILL)  # (setpriv execs lsandbox: this is the supervisor)
        killed.wait()
        assert os.path.isdir(stale)  # what SIGKILL leaves behind
        live = subprocess.Popen([*pre, LSANDBOX, "run", "--", "sh", "-c",
                                 'touch "$LSANDBOX_SOCKET_DIR/running"; exec sleep 60'], env=env)
        # the live run removes the stale directory meanwhile: wait for its own, not for a count
        deadline = time.monotonic() + 20
        while not (others := {p for p in _ours(tmp) if p.endswith("-f")} - decoys - {stale}):
            assert time.monotonic() < deadline, _ours(tmp)
            time.sleep(0.02)
        (mine,) = others
        # the command runs: the supervisor forwards SIGTERM now (a SIGTERM during its own start
        # ends it before it can clean up; the next run then removes the directory)
        deadline = time.monotonic() + 30
        while not os.path.exists(f"{mine}/running") and time.monotonic() < deadline:
            time.sleep(0.02)
        res = subprocess.run([*pre, LSANDBOX, "run", "--", "true"], env=env, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        assert set(_ours(tmp)) == decoys | {mine}  # the dead one gone, the live one and decoys kept
        assert os.path.exists(f"{tmp}/target/precious")
        live.send_signal(signal.SIGTERM)
        live.wait(timeout=30)
        assert set(_ours(tmp)) == decoys
    finally:
        for p in (killed, live):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        rmtree(tmp)


SWAP_CONNECT = r"""
import errno, os, socket, sys
d = os.environ["LSANDBOX_SOCKET_DIR"]
os.rename(d, d + ".old")
os.symlink(sys.argv[1], d)
try:
    socket.socket(socket.AF_UNIX).connect(d + "/srv.sock")
    print("@@ok")
except OSError as e:
    print("@@" + errno.errorcode[e.errno])
"""


@USERS
def test_swapped_socket_dir_under_docker_default_profile(nobody):
    """The NOTIF_ADDFD broker (pidfd_getfd refused, no namespaces; binds are not brokered
    there) decides the swapped directory the same way, and cleanup deletes nothing outside."""
    tmp, out = world_dir("lsb-sd-tmp-", "/tmp"), world_dir("lsb-sd-out-")
    srv = UnixServer(f"{out}/srv.sock")
    open(f"{out}/keep.txt", "w").close()
    try:
        argv = [*(NOBODY if nobody else []), LSANDBOX, "run", "-w", tmp, "--", PY, "-c", SWAP_CONNECT, out]
        res = docker_run(argv, _env(tmp, "fastpath", True))
        assert res.returncode == 0, res.stderr
        assert "@@EACCES" in res.stdout.split(), (res.stdout, res.stderr)
        assert srv.accepts == 0 and sorted(os.listdir(out)) == ["keep.txt", "srv.sock"]
        left = _ours(tmp)
        assert len(left) == 1 and os.path.islink(left[0]), left
    finally:
        srv.close()
        rmtree(tmp)
        rmtree(out)


FILL = r"""
import os, socket, sys
out, d = sys.argv[1], os.environ["LSANDBOX_SOCKET_DIR"]
os.symlink(out, d + "/link")  # cleanup must unlink the link, never what it points to
os.makedirs(d + "/sub/deeper")
open(d + "/sub/deeper/f", "w").close()
os.symlink(out + "/keep.txt", d + "/sub/keep")
s = socket.socket(socket.AF_UNIX)
s.bind(d + "/sub/s.sock")
print("@@done")
"""


@USERS
@NS
def test_cleanup_removes_everything_inside_and_follows_no_symlink(nobody, ns):
    tmp, out = world_dir("lsb-sd-tmp-", "/tmp"), world_dir("lsb-sd-out-")
    for name in ("keep.txt", "other"):
        open(f"{out}/{name}", "w").close()
        os.chmod(f"{out}/{name}", 0o666)
    try:
        argv = [*(NOBODY if nobody else []), LSANDBOX, "run", "-w", tmp, "--", PY, "-c", FILL, out]
        res = subprocess.run(argv, env=_env(tmp, "fastpath", ns), capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "@@done" in res.stdout, res.stderr
        assert "warning" not in res.stderr, res.stderr
        assert _ours(tmp) == [] and sorted(os.listdir(out)) == ["keep.txt", "other"]
    finally:
        rmtree(tmp)
        rmtree(out)


def _stale_scans(base: str) -> list[int]:
    """Three stale directories, one before each of three scans: the first scan of this
    process, one within the interval, one after it (the clock moved by the bookkeeping)."""
    from lsandbox.linux import _socket_dir

    out = []
    for i, age in enumerate((None, 0.0, _socket_dir.STALE_INTERVAL + 1)):
        os.mkdir(f"{base}/{_socket_dir.PREFIX}{i:012x}{_socket_dir.SUFFIX}", 0o700)  # nobody locks it
        key = (os.getpid(), base)
        if age:
            _socket_dir._scanned[key] -= age
        out.append(_socket_dir.remove_stale_now_and_then(base))
    out.append(len(_ours(base)))
    return out


@USERS
def test_a_process_launching_again_and_again_scans_for_stale_directories_now_and_then(nobody):
    """The first launch of a process removes what killed supervisors left; later ones within
    STALE_INTERVAL do not scan $TMPDIR again (it may hold thousands of entries); the next
    one after it does."""
    from tests._util import run_in_child

    base = world_dir("lsb-sd-scan-", "/tmp")
    try:
        assert run_in_child(_stale_scans, base, as_nobody=nobody).unwrap() == [1, 0, 2, 0]
    finally:
        rmtree(base)
