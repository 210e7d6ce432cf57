"""The pre-forked launcher (``lsandbox.linux._prefork``): from a process's third launch on,
the relay is forked by a small launcher process instead of the caller. The sandbox must be
the same (exit status, umask, working directory, signals), and it must fail closed: a caller
killed by SIGKILL takes its sandboxes with it, and so does a killed launcher. As root and
as nobody, each scenario in a fresh interpreter (the launch count is per process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._sandbox import rmtree, run_script, world_dir

pytestmark = pytest.mark.kernel
USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])

PRELUDE = """
import os, signal, sys, time
import lsandbox
from lsandbox.linux import _prefork
pol = lsandbox.load_policy(search=False)
def warm():
    for _ in range(2):
        lsandbox.run(["true"], policy=pol)
    deadline = time.monotonic() + 30
    while _prefork._instance is None or not _prefork._instance.usable():
        assert time.monotonic() < deadline, "the launcher never became ready"
        time.sleep(0.02)
    return _prefork._instance.pid
"""


def _run(code: str, nobody: bool, tmp: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_script(PRELUDE + code, nobody, tmp, timeout)


@pytest.fixture
def tmp():
    d = world_dir("lsb-prefork-")
    yield d
    rmtree(d)


@USERS
def test_a_preforked_launch_runs_the_same_sandbox(nobody, tmp):
    code = """
launcher = warm()
os.umask(0o027)
r = lsandbox.run(["sh", "-c", "echo $PPID; pwd; umask; echo x > $LSANDBOX_SOCKET_DIR/f && echo wrote; exit 7"],
                 policy=pol, capture_output=True, text=True)
s = lsandbox.Sandbox(["sleep", "30"], policy=pol)
parent = int(open(f"/proc/{s.pid}/stat").read().rsplit(")", 1)[1].split()[1])
s.terminate()
print("@@", r.returncode, r.stdout.split(), parent == launcher, s.wait())
"""
    r = _run(code, nobody, tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    # PID 1 is the sandbox's init; the relay's parent is the launcher; SIGTERM reaches the command
    assert line == f"@@ 7 ['1', '{os.path.realpath(tmp)}', '0027', 'wrote'] True -15", (line, r.stderr)


@USERS
def test_passed_descriptors_are_forked_by_the_caller(nobody, tmp):
    code = """
warm()
r, w = os.pipe()
s = lsandbox.Sandbox(["sh", "-c", f"echo hi >&{w}"], policy=pol, pass_fds=[w])
os.close(w)
parent = int(open(f"/proc/{s.pid}/stat").read().rsplit(")", 1)[1].split()[1])
print("@@", parent == os.getpid(), s.wait(), os.read(r, 100))
"""
    r = _run(code, nobody, tmp)
    assert "@@ True 0 b'hi\\n'" in r.stdout, (r.stdout, r.stderr)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: reaped between the open and the read
        return True


@USERS
def test_a_killed_caller_takes_its_sandboxes_with_it(nobody, tmp):
    """The caller dies of SIGKILL (no cleanup of its own): the launcher sees it through its
    pidfd and kills the relays; every process of the sandbox ends."""
    code = """
warm()
s = lsandbox.Sandbox(["sh", "-c", "echo $$ > sandboxed.pid; exec sleep 300"], policy=pol, cwd=os.getcwd())
deadline = time.monotonic() + 30
while not os.path.exists("sandboxed.pid") or not open("sandboxed.pid").read().strip():
    assert time.monotonic() < deadline
    time.sleep(0.02)
print("@@", s.pid, _prefork._instance.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    r = _run(code, nobody, tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    relay, launcher = map(int, line.split()[1:])
    # the command's pid as the sandbox saw it is namespaced: find it by its cwd and command
    import time

    deadline = time.monotonic() + 20
    while not (_gone(relay) and _gone(launcher)) or _sleepers(tmp):
        assert time.monotonic() < deadline, (relay, launcher, _sleepers(tmp))
        time.sleep(0.05)


def _sleepers(tmp: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\x00300\x00" and \
                    os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(tmp):
                found.append(int(pid))
        except OSError:
            pass
    return found


@USERS
def test_a_killed_launcher_takes_its_relays_with_it(nobody, tmp):
    code = """
launcher = warm()
s = lsandbox.Sandbox(["sleep", "300"], policy=pol)
time.sleep(0.2)
os.kill(launcher, signal.SIGKILL)
print("@@", s.wait())
r = lsandbox.run(["sh", "-c", "exit 5"], policy=pol)  # the caller forks again
print("@@", r.returncode)
"""
    r = _run(code, nobody, tmp)
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("@@")] == ["@@ -9", "@@ 5"], (r.stdout, r.stderr)


def test_a_single_launch_imports_no_launcher(tmp):
    """``lsandbox run`` launches once: it must not pay for the launcher's module (nor pickle),
    nor for the broker when nothing is brokered. (What the CLI imports, without the API.)"""
    script = os.path.join(tmp, "one.py")
    with open(script, "w") as f:
        f.write("import sys\n"
                "import lsandbox._load\n"
                "from lsandbox.linux import _launcher\n"
                "_launcher.wait(_launcher.spawn(lsandbox._load.load_policy(search=False), ['true']))\n"
                "print('@@', sorted(m for m in ('lsandbox.linux._prefork', 'pickle', 'lsandbox.linux._broker')\n"
                "                   if m in sys.modules))\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LSANDBOX_REQUIREMENTS": "", "TMPDIR": tmp}
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=tmp, env=env, timeout=120)
    assert "@@ []" in r.stdout, (r.stdout, r.stderr)


# The launcher is a copy of the caller when it started: a caller that changes what a sandbox
# inherits afterwards must not get sandboxes forked from the old copy (each of these printed
# the old state before the launcher checked the caller's, _prefork._state / same_caller).

@USERS
def test_a_lowered_rlimit_reaches_later_sandboxes(nobody, tmp):
    code = """
import resource
warm()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
r = lsandbox.run(["sh", "-c", "ulimit -n"], policy=pol, capture_output=True, text=True)
print("@@", r.stdout.strip())
"""
    r = _run(code, nobody, tmp)
    assert "@@ 64" in r.stdout, (r.stdout, r.stderr)


def test_a_caller_that_dropped_root_gets_unprivileged_sandboxes(tmp):
    """After the launcher started, root becomes uid 65534: its sandboxes are uid 65534's (in a
    user namespace of their own). setuid made it non-dumpable, and a non-dumpable
    unprivileged caller cannot write its child's user-namespace maps: that launch fails with
    a clear error; once dumpable again, it runs."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop it")
    code = """
import _prctl
warm()
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    lsandbox.run(["true"], policy=pol)
    refused = ""
except lsandbox.SetupError as e:
    refused = str(e)
_prctl.prctl(_prctl.PR_SET_DUMPABLE, 1)
r = lsandbox.run(["sh", "-c", "id -u; readlink /proc/self/ns/user"], policy=pol, capture_output=True, text=True)
print("@@", "not dumpable" in refused, r.returncode, r.stdout.split()[0] if r.stdout else "",
      r.stdout.split()[-1] != os.readlink("/proc/self/ns/user") if r.stdout else "", r.stderr.strip()[-200:])
"""
    r = _run(code, False, tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None and line.split()[1:5] == ["True", "0", "65534", "True"], (r.stdout, r.stderr)


@USERS
def test_a_caller_confined_by_landlock_keeps_its_sandboxes_confined(nobody, tmp):
    """As root no file shows the caller's new Landlock domain (no no_new_privs needed): the
    launcher is refused because the caller can no longer ptrace-access it. (The caller's own
    fork then fails to mount its view inside the domain: refused either way, never escaped.)"""
    code = """
import landlock as ll
warm()
rs = ll.Ruleset(handled_fs=ll.AccessFs.WRITE_FILE)
for p in ("/dev", "/proc"):
    rs.add_path(p, ll.AccessFs.WRITE_FILE)
rs.restrict_self(no_new_privs=os.geteuid() != 0)
try:
    r = lsandbox.run(["sh", "-c", "echo x > written 2>/dev/null && echo wrote || echo refused"], policy=pol,
                     capture_output=True, text=True)
    print("@@", r.stdout.strip(), r.stderr.strip()[-200:])
except lsandbox.SandboxError as e:  # a Landlock domain may not mount: no sandbox, no command
    print("@@ refused (no sandbox:", e, ")")
"""
    if not __import__("landlock").kernel_abi():
        pytest.skip("no Landlock in this kernel")
    r = _run(code, nobody, tmp)
    assert "@@ refused" in r.stdout, (r.stdout, r.stderr)
    assert not os.path.exists(os.path.join(tmp, "written"))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


@USERS
def test_the_spare_relay_dies_with_the_caller_and_a_killed_spare_is_replaced(nobody, tmp):
    """The launcher keeps the next relay forked ahead (its spare): killed, the next launch is
    forked by the launcher itself and the sandbox is the same; when the caller dies, no spare
    (nor anything else the launcher forked) outlives it."""
    code = """
launcher = warm()
lsandbox.run(["true"], policy=pol)  # a launch reaped: a spare waits now
deadline = time.monotonic() + 30
while not (kids := open(f"/proc/{launcher}/task/{launcher}/children").read().split()):
    assert time.monotonic() < deadline, "no spare relay"
    time.sleep(0.02)
(spare,) = map(int, kids)
os.kill(spare, signal.SIGKILL)
time.sleep(0.2)
r = lsandbox.run(["sh", "-c", "echo $$; exit 3"], policy=pol, capture_output=True, text=True)
after = lsandbox.run(["sh", "-c", "echo $$; exit 4"], policy=pol, capture_output=True, text=True)
lsandbox.run(["true"], policy=pol)
deadline = time.monotonic() + 30
while not (kids := open(f"/proc/{launcher}/task/{launcher}/children").read().split()):
    assert time.monotonic() < deadline, "no new spare relay"
    time.sleep(0.02)
print("@@", r.returncode, r.stdout.split(), after.returncode, after.stdout.split(), launcher, kids[0], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    r = _run(code, nobody, tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    _, rc, out, rc2, out2, launcher, spare = line.split(" ", 6)
    assert (rc, out, rc2, out2) == ("3", "['2']", "4", "['2']"), line  # the command is PID 2 either way
    import time

    deadline = time.monotonic() + 20
    while not (_gone(int(launcher)) and _gone(int(spare))):
        assert time.monotonic() < deadline, line
        time.sleep(0.05)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_non_dumpable_caller_gets_no_launcher_holding_its_launches(tmp, when):
    """A caller that made itself non-dumpable keeps its memory and environment from other
    processes of its uid; the launcher is a fresh, dumpable process that receives every
    launch's environment. Non-dumpable before the launches: no launcher is started; after
    the launcher started: it is no longer used (the caller forks itself). Root only: an
    unprivileged non-dumpable caller cannot write its child's user-namespace maps (its
    /proc files are root's), so it gets SetupError on every launch, launcher or not."""
    if os.geteuid() != 0:
        pytest.skip("needs root: an unprivileged non-dumpable caller cannot launch at all")
    nobody = False
    code = f"""
import _prctl
if {when == "before"!r}:
    _prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
    for _ in range(4):
        lsandbox.run(["true"], policy=pol)
    time.sleep(0.2)
    print("@@", _prefork._instance is None)
else:
    launcher = warm()
    _prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
    served = []
    real = _prefork.Prefork.start
    def start(self, *a, **k):
        served.append(1)
        return real(self, *a, **k)
    _prefork.Prefork.start = start
    r = lsandbox.run(["true"], policy=pol, env={{"SECRET": "s3cret"}})
    print("@@", r.returncode == 0 and not served)
"""
    r = _run(code, nobody, tmp)
    assert "@@ True" in r.stdout, (r.stdout, r.stderr)



@USERS
def test_a_spare_serves_only_the_namespaces_it_made(nobody, tmp):
    """A caller switching between network off and on, through the launcher and its spare
    relay (warmed up with the last request): with the network off the command is in a
    network namespace of its own, with it on in the caller's, every time."""
    code = """
on = lsandbox.load_policy(search=False, network=True)
warm()
host = os.readlink("/proc/self/ns/net")
seen = []
for p in [pol, pol, on, on, pol, on, pol, pol]:
    r = lsandbox.run(["readlink", "/proc/self/ns/net"], policy=p, capture_output=True, text=True)
    seen.append((p is on, r.stdout.strip() == host, r.returncode))
    time.sleep(0.05)  # the next spare is made meanwhile
print("@@", all(rc == 0 and same == net_on for net_on, same, rc in seen), seen)
"""
    r = _run(code, nobody, tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, r.stderr
    assert line.startswith("@@ True"), (line, r.stderr)


@USERS
def test_a_preforked_sandbox_keeps_the_callers_ignored_signals(nobody, tmp):
    """The launcher ignores the terminal's signals itself; a relay it forks takes back the
    caller's dispositions at the time of the launch: a caller under ``nohup`` gets sandboxes
    that ignore SIGHUP, as its own forked ones do, and one that stopped ignoring it gets
    the default again. (Shown to fail without ``_ignored``: the relay reset all four to the
    default, so the first launch below showed no SIGHUP ignored.)"""
    code = """
warm()
def hup():
    r = lsandbox.run(["grep", "^SigIgn", "/proc/self/status"], policy=pol, capture_output=True, text=True)
    return bool(int(r.stdout.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
signal.signal(signal.SIGHUP, signal.SIG_IGN)
ignored = hup()
signal.signal(signal.SIGHUP, signal.SIG_DFL)
print("@@", ignored, hup(), _prefork._instance is not None and _prefork._instance.usable())
"""
    r = _run(code, nobody, tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line == "@@ True False True", (line, r.stderr)
