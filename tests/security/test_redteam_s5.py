"""Red-team findings of session 5: the pre-forked launcher, the supervisor's descriptors, and
the broker's newer paths, each a real attack (from inside the sandbox, or from the caller's
side where the brief names it: a process the caller spawned, a thread of the caller).

Each scenario that needs a process's third launch (the pre-forked launcher serves from then
on, ``lsandbox.linux._prefork``) runs in a fresh interpreter: the launch count is per process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._sandbox import PY, rmtree, world_dir
from tests._util import TIME_FACTOR, setpriv_nobody
from tests.security import test_redteam

pytestmark = [pytest.mark.kernel, pytest.mark.security]

USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
NAMESPACES = pytest.mark.parametrize("ns", [True, False], ids=["namespaces", "no-namespaces"])

PRELUDE = """
import ctypes, errno, json, os, signal, sys, threading, time
import lsandbox
from lsandbox.linux import _prefork
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
pol = lsandbox.load_policy(search=False)
def warm():
    '''Two launches: from the third on, the pre-forked launcher forks the relay.'''
    for _ in range(2):
        lsandbox.run(["true"], policy=pol)
    deadline = time.monotonic() + 30 * TIME_FACTOR
    while _prefork._instance is None or not _prefork._instance.usable():
        assert time.monotonic() < deadline, "the launcher never became ready"
        time.sleep(0.02)
    return _prefork._instance.pid
"""


@pytest.fixture
def tmp():
    d = world_dir("lsb-rt5-")
    yield d
    rmtree(d)


def _script(code: str, tmp: str, *, nobody: bool = False, env: dict[str, str] | None = None,
            timeout: float = 120) -> str:
    """Run ``PRELUDE + code`` in a fresh interpreter (as nobody if asked); its ``@@`` line."""
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    script = os.path.join(tmp, "s.py")
    with open(script, "w") as f:
        f.write(f"TIME_FACTOR = {TIME_FACTOR!r}\n" + PRELUDE + code)
    os.chmod(script, 0o644)
    e = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LSANDBOX_REQUIREMENTS": "", "TMPDIR": tmp,
         **(env or {})}
    r = subprocess.run([*(setpriv_nobody() if nobody else []), sys.executable, script], capture_output=True,
                       text=True, cwd=tmp, env=e, timeout=timeout * TIME_FACTOR)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@")), None)
    assert line is not None, (r.returncode, r.stdout, r.stderr)
    return line[2:].strip()


# ---- the pre-forked launcher hands the command the report pipe ---------------------------
#
# The launcher receives the launch's descriptors by SCM_RIGHTS without MSG_CMSG_CLOEXEC, so
# the report pipe's write end reaches the command (init's copy was hidden for exactly this
# reason: tests/security/test_redteam.py). The command then forges the supervisor's records:
# here a setup failure (the run ends 125, "sandbox setup failed: forged ..."), a note, and a
# RESTRICTED pid (whose audit records would be attributed to the sandbox).
FORGE = r"""
import os, struct, sys
HDR = struct.Struct("<BBHqH")
fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
forged = 0
for n in range(3, 64):
    try:
        os.write(n, HDR.pack(2, 0, 0, 0, 20) + b"forged by the command"[:20]
                 + HDR.pack(1, 0, 0, 0, 11) + b"forged note" + HDR.pack(5, 0, 0, 1, 0))
        forged += 1
    except OSError:
        pass
print(fds, forged)
sys.exit(3)
"""


@NAMESPACES
@USERS
def test_a_preforked_command_inherits_only_its_std_descriptors(nobody, ns, tmp):
    code = f"""
warm()
try:
    r = lsandbox.run([{PY!r}, "-c", {FORGE!r}], policy=pol, capture_output=True, text=True)
    print("@@", json.dumps([r.returncode, r.stdout.strip(), r.stderr.strip()[-300:]]))
except lsandbox.SandboxError as e:  # a forged setup failure
    print("@@", json.dumps([125, "", str(e)]))
"""
    env = {"LSANDBOX_NO_NAMESPACES": "1"} if not ns else {}
    import json

    rc, out, err = json.loads(_script(code, tmp, nobody=nobody, env=env))
    # the listing's own descriptor (3) is the only one beyond the std three
    assert out == "[0, 1, 2, 3] 0", (out, err)
    assert rc == 3 and "forged" not in err, (rc, err)


# ---- per-thread process state slips past the launcher's caller check ---------------------
#
# Credentials, seccomp filters, namespaces and the root are per *thread*; a fork copies the
# calling thread's. ``_prefork._state`` reads /proc/self (the thread group leader), so a
# thread that confined itself alone (raw setresuid, as servers that impersonate users per
# thread do; a seccomp filter without TSYNC; setns) still gets sandboxes forked from the
# launcher's unconfined copy: /proc/thread-self is what a fork from this thread inherits.
SYSCALLS = {"x86_64": {"setgroups": 116, "setresuid": 117, "setresgid": 119},
            "aarch64": {"setgroups": 159, "setresuid": 147, "setresgid": 149}}


def _thread_with_raw_ids(tmp: str, drop_uid: bool, argv: list[str], main_id: str) -> str:
    """Root only: a thread takes gid (and uid) 65534 by raw syscalls (glibc's set*id() would
    change every thread: the setxid broadcast) and launches ``argv`` from the warm caller.
    Returns "<the main thread's ``main_id``> <the sandbox's output, or refused: ...>"."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    nr = SYSCALLS.get(os.uname().machine)
    if nr is None:
        pytest.skip("syscall numbers for x86_64 and aarch64 only")
    code = f"""
warm()
NR = {nr!r}
out = []
def worker():
    assert libc.syscall(NR["setgroups"], 0, None) == 0
    assert libc.syscall(NR["setresgid"], 65534, 65534, 65534) == 0
    if {drop_uid!r}:
        assert libc.syscall(NR["setresuid"], 65534, 65534, 65534) == 0
    try:
        r = lsandbox.run({argv!r}, policy=pol, capture_output=True, text=True)
        out.append(r.stdout.strip() or r.stderr.strip()[-200:])
    except Exception as e:
        out.append("refused: " + repr(e)[:200])
t = threading.Thread(target=worker)
t.start(); t.join()
print("@@", os.{main_id}(), out[0])
"""
    return _script(code, tmp)


def test_a_thread_that_dropped_root_alone_gets_unprivileged_sandboxes(tmp):
    got = _thread_with_raw_ids(tmp, True, ["id", "-u"], "getuid")
    assert got.split(" ", 1)[0] == "0", got  # the main thread is still root
    assert got.split(" ", 1)[1] in ("65534",) or got.split(" ", 1)[1].startswith("refused"), got


def test_a_thread_that_changed_only_its_group_gets_sandboxes_of_that_group(tmp):
    """Still root (and CAP_SYS_PTRACE): the /proc/<launcher>/mem check passes, the caller-state
    check compared the leader's Gid/Groups, and the sandbox ran as gid 0."""
    assert _thread_with_raw_ids(tmp, False, ["id", "-g"], "getgid") == "0 65534"


@USERS
def test_a_thread_confined_by_seccomp_keeps_its_sandboxes_confined(nobody, tmp):
    code = """
import seccomp_bpf as sb
warm()
out = []
def worker():
    sb.set_no_new_privs()  # this thread only
    # getpriority(2) refused with EPERM in this thread and everything it forks
    sb.install_filter(sb.compile_filter(sb.Filter(sb.native_arch(), (sb.Rule("getpriority", sb.errno(1)),),
                                                  sb.ALLOW)))
    r = lsandbox.run(["nice"], policy=pol, capture_output=True, text=True)
    out.append(r.stdout.strip() or "refused")
t = threading.Thread(target=worker)
t.start(); t.join()
print("@@", out[0])
"""
    assert _script(code, tmp, nobody=nobody) == "refused"


def test_a_thread_in_another_network_namespace_keeps_its_sandboxes_there(tmp):
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace of the thread's own")
    code = """
net = lsandbox.load_policy(search=False, network=True)
warm()
out = []
def worker():
    assert libc.unshare(0x40000000) == 0  # CLONE_NEWNET: this thread only
    mine = os.readlink("/proc/thread-self/ns/net")
    r = lsandbox.run(["readlink", "/proc/self/ns/net"], policy=net, capture_output=True, text=True)
    out.append((mine, r.stdout.strip() or r.stderr.strip()[-200:]))
t = threading.Thread(target=worker)
t.start(); t.join()
print("@@", out[0][0] == out[0][1], out[0])
"""
    got = _script(code, tmp)
    assert got.startswith("True"), got


# ---- the supervisor's seccomp listener leaks into the processes the caller spawns ----------
#
# The listener (and the proxy's listener) arrive by SCM_RIGHTS in the supervisor; without
# MSG_CMSG_CLOEXEC they are inheritable, so os.system(), subprocess with close_fds=False or
# any C library's fork+exec hands every running sandbox's listener to an unsandboxed program.
# Whoever holds it can receive the sandbox's notified connects and answer CONTINUE (the
# kernel then performs the checked call unchecked), or keep the sandbox's calls waiting
# after the supervisor died instead of failing.
LISTENER = """
s = lsandbox.Sandbox(["sleep", "30"], policy=pol)
try:
    ls = subprocess.run("for f in /proc/$$/fd/*; do readlink $f; done", shell=True, close_fds=False,
                        capture_output=True, text=True).stdout.split()
finally:
    s.terminate(); s.wait()
print("@@", json.dumps(sorted(x for x in ls if x.startswith("anon_inode"))))
"""


@USERS
@pytest.mark.parametrize("launch", ["first", "preforked"])
def test_the_listener_does_not_reach_processes_the_caller_spawns(nobody, launch, tmp):
    code = ("import subprocess\n" + ("warm()\n" if launch == "preforked" else "") + LISTENER)
    assert _script(code, tmp, nobody=nobody) == "[]"


# ---- scheduling and OOM state slips past the launcher's caller check ----------------------
#
# Like the rlimits the check already compares, these bound what a sandbox may take of the
# machine, and a fork inherits them: a caller that lowered its priority (nice), pinned
# itself to some CPUs (sched_setaffinity) or offered itself to the OOM killer first
# (oom_score_adj) after its second launch got sandboxes with the launcher's old values.
SCHED = """
warm()
os.nice(5)
cpus = sorted(os.sched_getaffinity(0))
os.sched_setaffinity(0, cpus[:1])
with open("/proc/self/oom_score_adj", "w") as f:
    f.write("500")
r = lsandbox.run(["sh", "-c", "nice; grep Cpus_allowed_list /proc/self/status; cat /proc/self/oom_score_adj"],
                 policy=pol, capture_output=True, text=True)
print("@@", json.dumps([r.stdout.split(), cpus[:1]]))
"""


@USERS
def test_a_caller_that_lowered_its_claim_on_the_machine_gets_sandboxes_that_did_too(nobody, tmp):
    import json

    out, first = json.loads(_script(SCHED, tmp, nobody=nobody))
    assert out == ["5", "Cpus_allowed_list:", str(first[0]), "500"], out


# ---- one sandbox takes down its siblings through the launcher ------------------------------
#
# Any exception in the launcher's loop ends it, and on its way out it SIGKILLs every relay it
# started (fail closed when the *caller* is gone). A fork that fails (EAGAIN: RLIMIT_NPROC or
# the cgroup's pids.max, both of which a sandboxed command can exhaust: "it can exhaust
# processes") is such an exception: the command of one sandbox fills the process limit, the
# caller's next launch fails in the launcher, and every other running sandbox of the caller
# dies with it. Forked by the caller, the failed launch raises and the others keep running.
SIBLINGS = """
import resource, subprocess
def tasks(p):
    try:
        return len(os.listdir(f"/proc/{p}/task")) if os.stat(f"/proc/{p}").st_uid == os.getuid() else 0
    except OSError:
        return 0
mine = sum(tasks(p) for p in os.listdir("/proc") if p.isdigit())  # RLIMIT_NPROC counts threads
# room for this interpreter's launches, the launcher, and a few more: the filler takes the rest
resource.setrlimit(resource.RLIMIT_NPROC, (mine + 24, mine + 24))
warm()
a = lsandbox.Sandbox(["sleep", "30"], policy=pol)
filler = '''
import os, sys, time
os.read(0, 1)  # go: once the supervisor has its threads
def child():
    os.read(0, 1)  # until the caller closes the pipe
    os._exit(0)
n = 0
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        child()
    n += 1
print(n, flush=True)
end = time.monotonic() + 3 * TF  # keep taking every slot that frees up meanwhile
while time.monotonic() < end:
    try:
        if os.fork() == 0:
            child()
    except OSError:
        time.sleep(0.002)
os.read(0, 1)
'''.replace("TF", repr(TIME_FACTOR))
b = lsandbox.Sandbox([PY, "-c", filler], policy=pol, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
time.sleep(0.5 * TIME_FACTOR)
b.stdin.write(b"g"); b.stdin.flush()
forked = b.stdout.readline().strip()
try:
    lsandbox.run(["true"], policy=pol)
    third = "ran"
except Exception as e:
    third = type(e).__name__ + ":" + str(e)[:150]
time.sleep(0.5 * TIME_FACTOR)
alive = a.poll() is None
b.stdin.close(); b.kill(); b.wait()
a.kill(); a.wait()
print("@@", json.dumps([alive, third, forked.decode() if isinstance(forked, bytes) else forked]))
"""


def test_a_sandbox_that_exhausts_the_process_limit_does_not_kill_its_siblings(tmp):
    import json

    code = SIBLINGS.replace("PY", repr(PY))
    alive, third, forked = json.loads(_script(code, tmp, nobody=True, env={"LSANDBOX_NO_NAMESPACES": "1"}))
    assert int(forked) > 0, (alive, third, forked)
    assert alive, (third, forked)


# ---- System V IPC: the host's shared memory, message queues and semaphores -----------------
#
# The sandbox has its own PID, mount, network (and user) namespaces but not an IPC namespace,
# and Landlock has no right for System V IPC: a command could attach (shmget by key, shmat)
# the shared memory of any process of its uid outside the sandbox, read it and write into
# it (as root: every root daemon's segments), send to its message queues and change its
# semaphores. Codex's sandbox (codex sandbox, 0.171) and `bwrap --unshare-all` refuse it
# (shmget: ENOENT); lsandbox gave "secret" and wrote "PWNED!" into the outside segment.
IPC_PROBE = r"""
libc.shmat.restype = ctypes.c_void_p
key = int(sys.argv[1])
shmid = libc.shmget(key, 0, 0)
R["shmget"] = "ok" if shmid >= 0 else errno.errorcode[ctypes.get_errno()]
if shmid >= 0:
    p = libc.shmat(shmid, None, 0)
    if p is None or p == ctypes.c_void_p(-1).value:
        R["shmat"] = errno.errorcode[ctypes.get_errno()]
    else:
        R["read"] = ctypes.string_at(p, 6).decode(errors="replace")
        ctypes.memmove(p, b"PWNED!", 6)
msq = libc.msgget(key, 0)
R["msgget"] = "ok" if msq >= 0 else errno.errorcode[ctypes.get_errno()]
"""


def _outside_ipc(key: int) -> tuple[int, int]:
    """A shared memory segment holding b"secret" and a message queue under ``key``, mode
    0600, made by this process (in a child dropped to nobody when asked)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    shmid = libc.shmget(key, 4096, 0o1600)  # IPC_CREAT | 0600
    assert shmid >= 0, ctypes.get_errno()
    p = libc.shmat(shmid, None, 0)
    ctypes.memmove(p, b"secret", 6)
    libc.shmdt(ctypes.c_void_p(p))
    msq = libc.msgget(key, 0o1600)
    assert msq >= 0, ctypes.get_errno()
    return shmid, msq


def _outside_contents(shmid: int) -> bytes:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    p = libc.shmat(shmid, None, 0o10000)  # SHM_RDONLY
    try:
        return ctypes.string_at(p, 6)
    finally:
        libc.shmdt(ctypes.c_void_p(p))


def _remove_ipc(shmid: int, msq: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmctl(shmid, 0, None)  # IPC_RMID
    libc.msgctl(msq, 0, None)


IPC_MODES = [("root", False, {}), ("nobody", True, {}),
             ("root-abi1", False, {"LANDLOCK_MAX_ABI": "1"})]


@pytest.mark.parametrize("mode", [m[0] for m in IPC_MODES])
def test_the_hosts_system_v_ipc_is_out_of_reach(mode):
    from tests._util import run_in_child
    from tests.security._hardening import probe

    _, nobody, env = next(m for m in IPC_MODES if m[0] == mode)
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    key = 0x15B00000 + os.getpid() % 0xFFFF
    shmid, msq = run_in_child(_outside_ipc, key, as_nobody=nobody).unwrap()
    try:
        got = probe(IPC_PROBE, [str(key)], nobody=nobody, env=env)
        outside = _outside_contents(shmid)
    finally:
        _remove_ipc(shmid, msq)
    assert outside == b"secret", (outside, got)
    assert got == {"shmget": "ENOENT", "msgget": "ENOENT"}, got


def test_the_ipc_probe_is_real_unsandboxed():
    """Outside the sandbox the same probe attaches the segment and writes into it."""
    from tests.security._hardening import probe

    key = 0x15C00000 + os.getpid() % 0xFFFF
    shmid, msq = _outside_ipc(key)
    try:
        got = probe(IPC_PROBE, [str(key)], nobody=False, env={}, sandboxed=False)
        outside = _outside_contents(shmid)
    finally:
        _remove_ipc(shmid, msq)
    assert got == {"shmget": "ok", "read": "secret", "msgget": "ok"} and outside == b"PWNED!", (got, outside)


# ---- without namespaces, the command's background processes outlive a normal run ---------
#
# The README and ARCHITECTURE say only that a *SIGKILLed* supervisor's grandchildren may
# survive without namespaces; in fact every run leaves them: `sh -c 'setsid prog &'` returns,
# lsandbox exits 0, and prog keeps running. Holding the caller's terminal, it then reads what
# the user types into the shell after the run (no longer its controlling terminal: no
# job-control stop) - here a "password" typed after lsandbox returned lands in a file of the
# writable root. With namespaces init's exit ends the PID namespace and the reader with it.
TTY_THIEF = r"""
import os, sys
for _ in range(100):
    data = os.read(3, 100)  # the terminal (sh gives a background job /dev/null as stdin)
    if data:
        with open(sys.argv[1], "wb") as f:
            f.write(data)
        break
"""

# A login shell: its own session with the pty as controlling terminal, lsandbox run in the
# foreground; it stays after the run, as the user's shell does.
SHELL = r"""
import os, subprocess, sys, time
name, lsb, cmd, wait = sys.argv[1], sys.argv[2:-2], sys.argv[-2], float(sys.argv[-1])
os.setsid()
tty = os.open(name, os.O_RDWR)
r = subprocess.run([*lsb, "sh", "-c", cmd], stdin=tty, stdout=tty, stderr=tty, process_group=0)
print(r.returncode, flush=True)
time.sleep(wait)
"""


def _leftovers(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read().split(b"\0"):  # an argument of its own: the thief
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("ns", [True, False], ids=["namespaces", "no-namespaces"])
def test_a_background_process_does_not_outlive_the_run_and_read_the_terminal(nobody, ns, tmp, request):
    import pty
    import shlex
    import time

    from tests._sandbox import LSANDBOX
    from tests.security._hardening import NOBODY

    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    from tests.conftest import NO_LANDLOCK, REFUSAL

    if NO_LANDLOCK and not ns:  # the run's status is all this test sees of it
        pytest.skip(f"lsandbox run refuses to start here: {REFUSAL} (and no namespaces)")
    stolen = os.path.join(tmp, "stolen")
    marker = f"lsb-thief-{os.getpid()}-{ns}-{nobody}"
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    if nobody:
        os.chown(name, 65534, 65534)
    env = dict(os.environ, LSANDBOX_REQUIREMENTS="")
    if not ns:
        env["LSANDBOX_NO_NAMESPACES"] = "1"
    cmd = f"exec 3<&0; setsid {PY} -c {shlex.quote(TTY_THIEF)} {stolen} {marker} & sleep {0.5 * TIME_FACTOR}"
    lsb = [*(NOBODY if nobody else []), LSANDBOX, "run", "-w", tmp, "--"]
    shell = subprocess.Popen([sys.executable, "-c", SHELL, name, *lsb, cmd, str(3 * TIME_FACTOR)],
                             stdout=subprocess.PIPE, text=True, cwd=tmp, env=env)
    try:
        assert shell.stdout is not None
        assert shell.stdout.readline().strip() == "0"  # the run ended
        os.write(master, b"hunter2\n")  # the user types at the shell after the run
        time.sleep(0.5 * TIME_FACTOR)
        left = _leftovers(marker)
        assert not os.path.exists(stolen), open(stolen, "rb").read()
        assert not left, left
    finally:
        for pid in _leftovers(marker):
            os.kill(pid, 9)
        shell.kill()
        shell.wait()
        os.close(master)
        os.close(slave)


# ---- two AF_UNIX rules on one canonical path: the file's order decides ---------------------
#
# "/var/run/docker.sock" = "none" and "/run/docker.sock" = "allow" name one socket where
# /var/run is a symlink to /run (every current distribution). The loader keeps whichever
# comes last, so a "none" the user wrote is dropped without a word when an allow for the
# other spelling follows it (or comes from --allow-unix-socket). Filesystem rules keep the
# more restrictive of two on one path, and network domains let deny win a tie: the AF_UNIX
# table should do the same (or refuse the contradiction, naming both lines).
TIE = """default_permissions = "t"
[permissions.t]
extends = ":workspace"
[permissions.t.network.unix_sockets]
{first}
{second}
"""


@pytest.mark.parametrize("order", ["none-first", "allow-first", "allow-flag"])
def test_a_none_rule_is_never_dropped_for_an_allow_on_another_spelling(order, tmp):
    import lsandbox
    from lsandbox.policy._model import SocketAccess

    real = os.path.join(tmp, "real")
    os.mkdir(real)
    os.symlink(real, os.path.join(tmp, "alias"))
    none = f'"{tmp}/alias/tie.sock" = "none"'
    allow = f'"{real}/tie.sock" = "allow"'
    first, second = {"none-first": (none, allow), "allow-first": (allow, none), "allow-flag": (none, "")}[order]
    cfg = os.path.join(tmp, "tie.toml")
    with open(cfg, "w") as f:
        f.write(TIE.format(first=first, second=second))
    flags = [f"{real}/tie.sock"] if order == "allow-flag" else []
    try:
        pol = lsandbox.load_policy(cfg, search=False, cwd=tmp, allow_unix_sockets=flags)
    except lsandbox.PolicyError:
        return  # refused, naming the contradiction: as good as none winning
    rules = {r.path: r.access for r in pol.network.unix_sockets}
    assert rules[f"{real}/tie.sock"] is SocketAccess.NONE, rules


# ---- without Landlock, the mount view leaves the host's device nodes usable ---------------
#
# ARCHITECTURE: "Without Landlock (Linux 5.10...): the mount view carries writes, deny masks
# and devices". The view makes the writable trees nodev, but the read-only /dev keeps its
# device nodes (a read-only mount refuses writes to files, not I/O on devices): as root
# (LANDLOCK_MAX_ABI=0, as on 5.10), the command read the consoles' screens (/dev/vcs), got a
# userfaultfd from /dev/userfaultfd (which filter A's userfaultfd refusal means to close),
# and opened /dev/kvm and /dev/tty1. With Landlock (ABI >= 1) all four are refused
# (tests/security/test_redteam.py); bubblewrap and Codex give a minimal /dev.
DEVICES = test_redteam.DEVICES + r"""
t("kvm", lambda: os.close(os.open("/dev/kvm", os.O_RDWR)))
t("tty1", lambda: os.close(os.open("/dev/tty1", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)))
t("null", lambda: os.close(os.open("/dev/null", os.O_RDWR)))
t("null_chmod", lambda: os.chmod("/dev/null", 0o666))
t("tty", lambda: os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="root: the device nodes are root's")
@pytest.mark.parametrize("mounts", ["mount_setattr", "classic"])
def test_without_landlock_root_cannot_use_host_devices(mounts):
    """The kept device files stay usable and read-only (root owns the host's /dev/null: a
    writable bind of it would let root chmod it), with mount_setattr and with the per-mount
    remounts of kernels before 5.12 (5.10 is both: no Landlock, no mount_setattr)."""
    from tests.security._hardening import probe

    present = [n for n, p in (("vcs", "/dev/vcs"), ("uffd_ioctl", "/dev/userfaultfd"), ("kvm", "/dev/kvm"),
                              ("tty1", "/dev/tty1")) if os.path.exists(p)]
    if not present:
        pytest.skip("none of /dev/vcs, /dev/userfaultfd, /dev/kvm, /dev/tty1 here")
    env = {"LANDLOCK_MAX_ABI": "0", **({"LSANDBOX_NO_MOUNT_SETATTR": "1"} if mounts == "classic" else {})}
    got = probe(DEVICES, [], nobody=False, env=env)
    if got.get("null") != "ok":
        pytest.skip(f"no sandbox without Landlock here: {got}")
    assert not [n for n in present if got[n] == "ok"], got
    assert got["null_chmod"] != "ok", got
    assert got["tty"] == "ok" or not os.isatty(0) or "ENXIO" in got["tty"], got
