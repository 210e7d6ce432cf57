"""One instrumented ``lsandbox run -- CMD``: timestamps of each launch stage, printed as JSON.

Run by ``test_bench_launch.py`` in a fresh interpreter (``python tests/bench/_launch_stages.py
CMD...``), like the console script; with ``--warm`` first, one launch is recorded once the
process's pre-forked launcher serves it (what a warm API caller pays, in a small process; the
launcher is instrumented too). The stages are marked by wrapping the launcher's own functions
(nothing in lsandbox knows about this); every process (supervisor, launcher, init (a relay where
init cannot be cloned straight into its namespaces), command) appends ``ns name`` lines to one file, as the child closes inherited fds.
"""

from __future__ import annotations

import os
import sys
import time

T0 = time.perf_counter_ns()  # perf_counter is CLOCK_MONOTONIC: comparable across processes
LOG = os.environ.get("LSANDBOX_STAGES_LOG") or f"/tmp/lsandbox-stages-{os.getpid()}.log"


ENABLED = True


def mark(name: str) -> None:
    if not ENABLED:
        return
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, f"{time.perf_counter_ns()}\t{name}\n".encode())
    os.close(fd)


def wrap(obj: object, name: str, before: str | None = None, after: str | None = None) -> None:
    f = getattr(obj, name)

    def wrapped(*a: object, **k: object) -> object:
        if before:
            mark(before)
        r = f(*a, **k)
        if after:
            mark(after)
        return r

    setattr(obj, name, wrapped)


def instrument_child() -> None:
    """Marks in the child side (init, or a relay, and the command): in this process, or in the pre-forked
    launcher's (``--warm``), which forks them there."""
    from lsandbox.linux import _child, _mount_view, _prefork

    wrap(_child, "_close_all_but", "child runs (init cloned into its namespaces)")
    wrap(_child, "_setup_namespaces", "mount namespace made", "namespace setup done")
    wrap(_child, "apply_view", "ids, lo, mounts private")
    wrap(_mount_view, "private_devpts", "mount view (read-only /, clones, carve-outs, masks)", "private devpts")
    wrap(_child, "fresh_proc", "init (PID 1) set up", "fresh procfs (init)")
    wrap(_child, "_restrict", "init ready", "filter A")
    wrap(_child, "_init", "(init: fork command)")
    wrap(_child, "_fork_command", None, "(init: command forked)")
    wrap(_child, "install_and_hand_over", "Landlock", "filter B (listener handed over)")
    wrap(_child, "_exec", "command forked, execve")
    wrap(_child, "_init_steps", "init (PID 1) set up", "init's setup in C (procfs, caps, Landlock, filters)")
    wrap(_prefork, "_fork_relay", "(launcher: request received)")
    wrap(_prefork._Spare, "hand", "(launcher: request received)")


def _instrumented_launcher_code(code: str) -> str:
    """The pre-forked launcher's program, with the child-side marks installed first."""
    here = os.path.dirname(os.path.abspath(__file__))
    return f"import sys; sys.path.insert(0, {here!r}); import _launch_stages; _launch_stages.instrument_child(); {code}"


def main() -> None:
    global ENABLED
    argv = sys.argv[1:]
    warm = argv[:1] == ["--warm"]
    if warm:
        argv = argv[1:]
        ENABLED = False
    mark("start")
    import lsandbox._load
    import lsandbox.cli._run  # noqa: F401 - what `lsandbox run` imports before the launch
    import lsandbox.linux._launcher as launcher
    from lsandbox.linux import _prefork, _provenance

    mark("imports")
    wrap(launcher, "make_socket_dir", "features")  # spawn: features() first, then the socket dir
    wrap(launcher, "build_plan", "socket dir, executable", "plan")
    wrap(_provenance, "Provenance", "pipes", "provenance snapshot")
    wrap(launcher, "filter_a_bytes", "(supervisor: forked; compiles filter A)", "(supervisor: filter A compiled)")
    wrap(_prefork.Prefork, "start", "(supervisor: asks the pre-forked launcher)", "(supervisor: the launcher answered)")
    wrap(launcher, "_reap", None, "(supervisor: init reaped)")
    wrap(launcher.LazyBroker, "close", None, "(supervisor: broker thread stopped)")
    wrap(launcher, "_cleanup_socket_dir", "command ran and exited; init reaped", "socket dir removed")
    instrument_child()
    if warm:  # the pre-forked launcher forks the child side there: instrumented too
        code = _prefork._launcher_code
        _prefork._launcher_code = lambda: _instrumented_launcher_code(code())  # type: ignore[assignment]
        deadline = time.monotonic() + 10
        while True:  # until the launcher serves, as for a warm API caller
            launcher.wait(launcher.spawn(lsandbox._load.load_policy(), argv))
            inst = _prefork._instance
            if (inst is not None and inst.usable()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        os.close(os.open(LOG, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600))  # only the launch below
        ENABLED = True
        mark("start")
    policy = lsandbox._load.load_policy()
    mark("policy")
    launch = launcher.spawn(policy, argv)
    mark("(supervisor: listener received)")
    launcher.wait(launch)
    mark("end")


if __name__ == "__main__":
    main()


# Stage -> what it belongs to, for the summary (an interval is attributed to the mark ending it).
CATEGORY = {
    "imports": "imports",
    "policy": "policy",
    "features": "plan", "socket dir, executable": "plan", "plan": "plan",
    "pipes": "supervisor before fork", "provenance snapshot": "supervisor before fork",
    "child runs (init cloned into its namespaces)": "child setup",  # includes the clone
    "mount namespace made": "child setup",
    "ids, lo, mounts private": "child setup", "namespace setup done": "child setup",
    "mount view (read-only /, clones, carve-outs, masks)": "mount view, procfs, devpts",
    "private devpts": "mount view, procfs, devpts", "fresh procfs (init)": "mount view, procfs, devpts",
    "init (PID 1) set up": "child setup", "init ready": "child setup",
    "Landlock": "child setup", "filter B (listener handed over)": "child setup",
    "filter A": "child setup",
    "(supervisor: asks the pre-forked launcher)": "supervisor before fork",
    "(supervisor: the launcher answered)": "child setup",  # the spare took the request
    "(launcher: request received)": "child setup",
    "init's setup in C (procfs, caps, Landlock, filters)": "child setup",
}


def timeline(path: str) -> list[tuple[float, str]]:
    """(ms since the first "start", mark) of the launch recorded in a log, in time order."""
    with open(path) as f:
        rows = sorted((int(t), name) for t, name in (line.rstrip("\n").split("\t", 1) for line in f))
    return [((t - rows[0][0]) / 1e6, name) for t, name in rows]
