"""Other processes of the command's uid, by pid, without a PID namespace.

``prlimit64``, ``setpriority``, ``ioprio_set`` and the ``sched_set*`` calls are checked by uid
alone: neither Landlock's ptrace scoping nor its signal scope (ABI 6) covers them. Without a
PID namespace (a container that refuses namespaces; ``LSANDBOX_NO_NAMESPACES=1``) the command
could set a host process's ``RLIMIT_FSIZE`` to 0 and kill it at its next write (SIGXFSZ),
its supervisor's ``RLIMIT_CPU`` (the run ends and ``setsid`` children outlive it), the agent's
``RLIMIT_NOFILE``, or starve them (nice 19, ``SCHED_IDLE``, idle I/O, CPU 0). Filter A's
``pidns=False`` variant allows these calls on the caller only (pid 0).

A victim started outside the sandbox (same uid, root and nobody) is attacked from inside,
at the kernel's Landlock ABI and at ABI 1: every call is refused (EPERM) and the victim is
unchanged, while the pid-0 forms (``setrlimit``, ``nice``, ``taskset CMD``) work. With
namespaces the victim is out of reach (ESRCH) and calls on the command's own threads by tid
work. Shown to fail without the fix: without ``_filter_a._process_rules`` every attack but
the root-only refusals succeeds (the victim's limits read (5, 5), it dies of SIGXFSZ)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests._sandbox import PY
from tests.conftest import NO_LANDLOCK, REFUSAL
from tests.security._hardening import NOBODY, probe

pytestmark = [pytest.mark.kernel, pytest.mark.security]
AS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
NONS = {"LSANDBOX_NO_NAMESPACES": "1"}

ATTACKS = r"""
import resource, threading, time
pid = int(sys.argv[1])
IOPRIO_NR = {"x86_64": (251, 252), "aarch64": (30, 31)}[os.uname().machine]
call = t  # the prelude's: R[name] = "ok" or the errno's name

def ioprio_set(which, who, prio):
    if libc.syscall(IOPRIO_NR[0], which, who, prio) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

call("prlimit NOFILE", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (5, 5)))
call("prlimit FSIZE", lambda: resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, 0)))
call("prlimit read", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE))
call("setpriority", lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
call("setpriority user", lambda: os.setpriority(os.PRIO_USER, 0, 19))
call("setpriority pgrp", lambda: os.setpriority(os.PRIO_PGRP, 0, 19))
call("sched_setaffinity", lambda: os.sched_setaffinity(pid, {0}))
call("sched_setscheduler", lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))
call("sched_setparam", lambda: os.sched_setparam(pid, os.sched_param(0)))
call("ioprio_set", lambda: ioprio_set(1, pid, 3 << 13))
call("ioprio_set user", lambda: ioprio_set(3, os.getuid(), 3 << 13))
# the caller itself, by pid 0: what setrlimit, nice, taskset CMD and ionice CMD do
call("self setrlimit", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
call("self nice", lambda: os.setpriority(os.PRIO_PROCESS, 0, 19))
call("self affinity", lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)))
call("self ioprio", lambda: ioprio_set(1, 0, 3 << 13))
tid = []
th = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), time.sleep(0.2)))
th.start()
while not tid:
    time.sleep(0.01)
call("own thread affinity", lambda: os.sched_setaffinity(tid[0], os.sched_getaffinity(0)))
th.join()
"""
SELF = ("self setrlimit", "self nice", "self affinity", "self ioprio")
ON_VICTIM = ("prlimit NOFILE", "prlimit FSIZE", "setpriority", "sched_setaffinity", "sched_setscheduler",
             "sched_setparam", "ioprio_set")


def _victim(nobody: bool) -> subprocess.Popen:
    """A host process of the command's uid, outside the sandbox, that writes every 50 ms."""
    return subprocess.Popen([*(NOBODY if nobody else []), PY, "-c",
                             "import time\nwhile True:\n    open('/dev/null', 'w').write('x')\n    time.sleep(0.05)"])


def _state(pid: int) -> tuple:
    """Its limits, niceness, scheduling policy, CPUs and I/O class, as /proc shows them (the
    test's own root may lack CAP_SYS_RESOURCE for ``prlimit`` on another uid's process)."""
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as f:
        cpus = [ln for ln in f if ln.startswith("Cpus_allowed_list")]
    return limits, fields[16], fields[38], cpus  # nice, policy


@AS
@pytest.mark.parametrize("abi", ["kernel", "1"])
def test_without_a_pid_namespace_other_processes_are_out_of_reach(nobody, abi):
    if NO_LANDLOCK:
        pytest.skip(f"lsandbox run refuses to start here: {REFUSAL} (and no namespaces)")
    if nobody and os.geteuid() != 0:
        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    env = dict(NONS, **({"LANDLOCK_MAX_ABI": abi} if abi != "kernel" else {}))
    v = _victim(nobody)
    try:
        time.sleep(0.3)
        before = _state(v.pid)
        got = probe(ATTACKS, [str(v.pid)], nobody=nobody, env=env)
        time.sleep(0.3)
        assert v.poll() is None, f"the victim died: {v.returncode} ({got})"
        assert _state(v.pid) == before, got
    finally:
        v.kill()
        v.wait()
    for name in (*ON_VICTIM, "setpriority user", "setpriority pgrp", "ioprio_set user", "own thread affinity"):
        assert got[name] == "EPERM", (name, got)
    assert got["prlimit read"] == "EPERM", got  # (pid != 0: refused whatever it asks)
    for name in SELF:
        assert got[name] == "ok", (name, got)


@AS
def test_with_a_pid_namespace_the_victim_is_invisible_and_own_threads_work(nobody):
    if nobody and os.geteuid() != 0:
        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    v = _victim(nobody)
    try:
        got = probe(ATTACKS, [str(v.pid)], nobody=nobody, env={})
        assert v.poll() is None
    finally:
        v.send_signal(signal.SIGKILL)
        v.wait()
    for name in ON_VICTIM:
        assert got[name] == "ESRCH", (name, got)
    for name in (*SELF, "own thread affinity"):
        assert got[name] == "ok", (name, got)
