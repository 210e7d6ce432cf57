"""Without namespaces, a SIGKILLed supervisor leaves nothing of the sandbox running.

With a PID namespace, init's death ends every process in it. Without one (a container that
refuses namespaces; ``LSANDBOX_NO_NAMESPACES=1``) the supervisor's forked child is the tree's
subreaper, and its parent death signal is :data:`lsandbox.linux._child.PARENT_GONE`, not
SIGKILL: when the supervisor dies it kills the command's whole tree, a ``setsid`` daemon
included, before it exits. Root and nobody; the CLI and the API's pre-forked launcher (the
supervisor is then the API caller, and the launcher's child serves the launch), killed, or
ending without waiting for its sandbox (the launcher then kills its children: the child
without namespaces with PARENT_GONE).
Shown to fail without the fix (PDEATHSIG SIGKILL): the daemon kept running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests._sandbox import LSANDBOX, PY
from tests._util import TIME_FACTOR
from tests.conftest import NO_LANDLOCK, REFUSAL
from tests.security._hardening import NOBODY

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(NO_LANDLOCK, reason=f"lsandbox run refuses to start here: {REFUSAL} (and no namespaces)")]

DAEMON = "setsid {py} -c 'import time; time.sleep(300)' {marker} </dev/null >/dev/null 2>&1 & echo started; sleep 300"
API = r"""
import os, sys, lsandbox
lsandbox.run(["true"])  # the next launch goes through the pre-forked launcher
p = lsandbox.Sandbox(["sh", "-c", sys.argv[1]])
if sys.argv[2] == "api-exit":  # the caller ends without waiting for it: the launcher sees it go
    import time
    time.sleep(1.5 * float(os.environ.get("LSANDBOX_TEST_TIME_FACTOR", "1")))  # the daemon starts first
    os._exit(0)
p.wait()
"""


def _pids(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _clean_up(marker: str, sup: subprocess.Popen | None = None) -> None:
    """Whatever a failed test left: the daemons it started, and its supervisor."""
    for pid in _pids(marker):
        os.kill(pid, signal.SIGKILL)
    if sup is not None and sup.poll() is None:
        sup.kill()
        sup.wait()


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("via", ["cli", "api", "api-exit"])
def test_a_killed_supervisor_takes_the_whole_tree_with_it(nobody, via):
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    marker = f"lsb-orphan-{os.getpid()}-{nobody}-{via}"
    cmd = DAEMON.format(py=PY, marker=marker)
    env = dict(os.environ, LSANDBOX_NO_NAMESPACES="1", LSANDBOX_REQUIREMENTS="")
    prefix = NOBODY if nobody else []
    argv = [LSANDBOX, "run", "--", "sh", "-c", cmd] if via == "cli" else [sys.executable, "-c", API, cmd, via]
    sup = subprocess.Popen([*prefix, *argv], env=env, cwd="/tmp", stdout=subprocess.PIPE, text=True)
    try:
        assert sup.stdout is not None and sup.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 30 * TIME_FACTOR  # a Python start, in a busy TCG guest
        while not _pids(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pids(marker), "the daemon did not start"
        if via != "api-exit":
            sup.send_signal(signal.SIGKILL)
        sup.wait()
        deadline = time.monotonic() + 5 * TIME_FACTOR
        while _pids(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _pids(marker)
    finally:
        _clean_up(marker, sup)
    assert left == [], "the sandbox's daemon outlived its supervisor"


KILLER = ("setsid {py} -c 'import time; time.sleep(300)' {marker} </dev/null >/dev/null 2>&1 & "
          "sleep 0.5; kill -9 $PPID; echo kill=$?")


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_the_command_cannot_kill_the_process_that_ends_its_tree(nobody):
    """From Landlock ABI 6 the command has a layer of its own that scopes signals: its
    parent (the tree's subreaper) is out of its reach, so the run ends as usual and its
    daemon with it. Without that layer the parent died and the daemon kept running."""
    import landlock

    if landlock.abi_version() < 6:
        pytest.skip("Landlock signal scoping needs ABI 6: below it the command can kill its parent")
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    marker = f"lsb-parent-killer-{os.getpid()}-{nobody}"
    env = dict(os.environ, LSANDBOX_NO_NAMESPACES="1", LSANDBOX_REQUIREMENTS="")
    try:
        r = subprocess.run([*(NOBODY if nobody else []), LSANDBOX, "run", "--", "sh", "-c",
                            KILLER.format(py=PY, marker=marker)], env=env, cwd="/tmp", capture_output=True,
                           text=True, timeout=60 * TIME_FACTOR)
        time.sleep(0.5)
        left = _pids(marker)
    finally:
        _clean_up(marker)
    assert r.returncode == 0 and r.stdout.split() == ["kill=1"], r
    assert left == [], "the daemon outlived the run"


def _supervisor_child(sup: int) -> int:
    """The supervisor's forked child (the tree's subreaper, without namespaces)."""
    with open(f"/proc/{sup}/task/{sup}/children") as f:
        return int(f.read().split()[0])


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_a_stopped_and_continued_child_still_reaps_and_ends_the_tree(nobody):
    """A stop longer than the child's one-second wait, then SIGCONT (``docker pause`` and
    ``unpause``, a terminal's job control): CPython's ``sigtimedwait`` then returns a
    signal number that was never filled in. The child took it for a signal to forward,
    failed, and exited 125 without ending the tree: the run failed and the daemon stayed.
    Now the run ends with the command's status and takes the daemon with it."""
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    marker = f"lsb-stopcont-{os.getpid()}-{nobody}"
    cmd = DAEMON.format(py=PY, marker=marker).replace("sleep 300", f"sleep {3 * TIME_FACTOR}; exit 7")
    env = dict(os.environ, LSANDBOX_NO_NAMESPACES="1", LSANDBOX_REQUIREMENTS="")
    sup = subprocess.Popen([*(NOBODY if nobody else []), LSANDBOX, "run", "--", "sh", "-c", cmd], env=env,
                           cwd="/tmp", stdout=subprocess.PIPE, text=True)
    try:
        assert sup.stdout is not None and sup.stdout.readline().strip() == "started"
        child = _supervisor_child(sup.pid)
        os.kill(child, signal.SIGSTOP)
        time.sleep(1.5)
        os.kill(child, signal.SIGCONT)
        rc = sup.wait(timeout=60 * TIME_FACTOR)
        time.sleep(0.5)
        left = _pids(marker)
    finally:
        _clean_up(marker, sup)
    assert rc == 7 and left == [], (rc, left)


# The command moves a process of its own into the supervisor's process group and reads the
# terminal from there, in the background: the kernel stops that whole group (SIGTTIN).
STOPPER = r"""
import os, signal, sys, time
group = os.getpgid(os.getppid())  # its parent's: the supervisor's group
d = os.fork()
if d == 0:
    os.setpgid(0, group)
    try:
        os.read(os.open("/dev/tty", os.O_RDONLY), 1)
    except OSError:
        pass
    os._exit(0)
time.sleep(1.0)
with open(f"/proc/{os.getppid()}/stat") as f:
    print("parent state", f.read().rsplit(")", 1)[1].split()[0], flush=True)
os.kill(d, signal.SIGKILL)
"""


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_job_control_cannot_stop_the_process_that_ends_the_tree(nobody):
    """In a terminal session (a pty, lsandbox in the foreground): the command's background
    read from the supervisor's group stops the group, but not the supervisor's child, which
    ignores the job-control stops (the command gets the dispositions back). Without that the
    child was found stopped ('T'), and a supervisor killed meanwhile left the tree running."""
    import pty

    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    lsb = [*(NOBODY if nobody else []), LSANDBOX, "run", "--", PY, "-c", STOPPER]
    env = dict(os.environ, LSANDBOX_NO_NAMESPACES="1", LSANDBOX_REQUIREMENTS="")
    pid, fd = pty.fork()
    if pid == 0:  # a session with the pty as its terminal; lsandbox in the foreground
        try:
            os.execvpe(lsb[0], lsb, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + 30 * TIME_FACTOR
    try:
        while b"\n" not in out.partition(b"parent state")[2] and time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    line = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("parent state")]
    assert line and line[0].split()[-1] != "T", out
