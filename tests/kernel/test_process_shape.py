"""The process shape with namespaces: init is cloned straight into the sandbox's namespaces
(PID 1 there, a child of the supervisor or of the pre-forked launcher, with no relay process
between), except in a caller that has other threads: its own launches fork a relay (glibc's
fork must run there), which unshares the namespaces and forks init. Both shapes must run the
same sandbox, in the caller's working directory; the launcher's spare init, cloned ahead of
its request, makes its mount namespace when the request comes. As root and as nobody, each scenario in a fresh interpreter (the launch count is per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests._sandbox import rmtree, world_dir
from tests._util import setpriv_nobody

pytestmark = pytest.mark.kernel
USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])

PRELUDE = """
import os, subprocess, threading, time
import lsandbox
from lsandbox.linux import _prefork
pol = lsandbox.load_policy(search=False)

def levels(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(len(ln.split()) - 1 for ln in f if ln.startswith("NSpid:"))

def shape():
    '''(PID namespaces the process the caller holds is in: 2 for init, 1 for a relay; the
    sandbox's working directory; its exit status)'''
    sb = lsandbox.Sandbox(["sh", "-c", "pwd; exec sleep 30"], policy=pol, stdout=subprocess.PIPE, text=True)
    where = sb.stdout.readline().strip()
    n = levels(sb.pid)
    sb.kill()
    sb.stdout.close()
    return n, where, sb.wait()

def ready():
    deadline = time.monotonic() + 30
    while _prefork._instance is None or not _prefork._instance.usable():
        assert time.monotonic() < deadline, "the launcher never became ready"
        time.sleep(0.02)
"""


def _run(code: str, nobody: bool, tmp: str, timeout: float = 120) -> str:
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    script = os.path.join(tmp, "s.py")
    with open(script, "w") as f:
        f.write(PRELUDE + code)
    os.chmod(script, 0o644)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LSANDBOX_REQUIREMENTS": "", "TMPDIR": tmp}
    r = subprocess.run([*(setpriv_nobody() if nobody else []), sys.executable, script], capture_output=True,
                       text=True, cwd=tmp, env=env, timeout=timeout)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    return line[2:].strip()


@pytest.fixture
def tmp():
    d = world_dir("lsb-shape-")
    for sub in ("a", "b"):
        os.mkdir(os.path.join(d, sub))
        os.chmod(os.path.join(d, sub), 0o777)
    yield d
    rmtree(d)


@USERS
def test_init_is_cloned_into_its_namespaces_by_a_caller_with_one_thread(nobody, tmp):
    """A single-threaded caller's own launches and the launcher's (after its first, served
    by a relay spare made before any request) hold init itself; the sandbox runs in the
    caller's directory each time."""
    got = _run("""
own = [shape(), shape()]
ready()
served = [shape() for _ in range(4)]
import json
print("@@", json.dumps([own, served]))
""", nobody, tmp)
    own, served = json.loads(got)
    assert all(n == 2 and where == tmp and rc == -9 for n, where, rc in own), got
    assert all(where == tmp and rc == -9 for _n, where, rc in served), got
    assert [n for n, _w, _rc in served[1:]] == [2, 2, 2], got


@USERS
def test_a_caller_with_threads_forks_a_relay_and_gets_the_same_sandbox(nobody, tmp):
    """Another thread in the caller: its own launch forks a relay (a raw clone would skip
    glibc's fork handlers while that thread may hold a lock); the sandbox is the same."""
    got = _run("""
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()
n, where, rc = shape()
r = lsandbox.run(["sh", "-c", "touch /etc/lsb-shape 2>/dev/null; echo $?; echo $$"], policy=pol,
                 capture_output=True, text=True)
print("@@", n, where == os.getcwd(), rc, r.stdout.split())
""", nobody, tmp)
    assert got == "1 True -9 ['1', '2']", got


@USERS
def test_a_spare_init_starts_where_its_caller_is(nobody, tmp):
    """A caller moving between directories, through the launcher and its spare init (cloned
    before the caller moved): every sandbox starts where the caller is."""
    got = _run(f"""
for _ in range(2):
    lsandbox.run(["true"], policy=pol)
ready()
seen = []
for d in ["a", "a", "b", "b", "a", "b", "b", "a"]:
    os.chdir({tmp!r} + "/" + d)
    seen.append(shape()[1] == os.getcwd())
    time.sleep(0.05)  # the next spare is made meanwhile
print("@@", all(seen), seen)
""", nobody, tmp)
    assert got.startswith("True"), got


def test_the_spare_init_sees_the_mount_table_of_its_launch(tmp):
    """A spare init is cloned ahead of its request, but its mount namespace is made when
    the request comes: a mount made after the spare was cloned is seen, one removed is
    gone. In a private mount namespace (nothing propagates into copies made before), where a
    mount namespace copied ahead would keep the tmpfs unmounted since (and show the files
    the host no longer does). As root (it mounts)."""
    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs: needs root")
    b = os.path.join(tmp, "b")
    code = f"""
def spare():  # a launch, then time for the launcher to clone the next spare init
    lsandbox.run(["true"], policy=pol)
    time.sleep(0.3)
def ls():
    return lsandbox.run(["ls", {b!r}], policy=pol, capture_output=True, text=True).stdout.split()
for _ in range(2):
    lsandbox.run(["true"], policy=pol)
ready()
spare(); spare()
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "lsb-shape", {b!r}], check=True)
open({b!r} + "/marker", "w").close()
mounted = ls()
time.sleep(0.3)  # the next spare is cloned while the tmpfs is there
subprocess.run(["umount", {b!r}], check=True)
gone = ls()
import json
print("@@", json.dumps([mounted, gone]))
"""
    script = os.path.join(tmp, "s.py")
    with open(script, "w") as f:
        f.write(PRELUDE + code)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LSANDBOX_REQUIREMENTS": "", "TMPDIR": tmp}
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, script],
                       capture_output=True, text=True, cwd=tmp, env=env, timeout=120)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    assert json.loads(line[2:]) == [["marker"], []], line


def test_a_child_notices_its_parent_died_through_a_pidfd():
    """A child cloned into a new PID namespace always sees a parent pid of 0: it asks its
    parent's pidfd whether the parent died before PDEATHSIG was set."""
    from lsandbox.linux._child import parent_gone

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    fd = os.pidfd_open(pid)
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        assert parent_gone(fd)
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    me = os.pidfd_open(os.getpid())
    try:
        assert not parent_gone(me)
    finally:
        os.close(me)
