"""Launch cost and in-sandbox syscall cost, as ratios measured side by side. `make bench`.

``test_bench_cli_launch_vs_python`` times ``lsandbox run -- true`` against ``python -c pass``
(the interpreter start is the floor of a Python CLI) and Codex's ``codex sandbox -- true``,
then prints where the time goes from instrumented runs (``_launch_stages.py``): interpreter
start, imports, policy, plan, the supervisor before the fork, the child's setup (init cloned
into its namespaces, the mount namespace, the read-only mount view, fresh procfs, private
devpts, Landlock, filters B and A), the command and the teardown. ``test_bench_api_launch_vs_bwrap``
does the same for a warm ``lsandbox.run(["true"])`` against ``bwrap --ro-bind / / true``.

What bounds this design: a Python supervisor imports its policy model and bindings, and the
child side runs in a cloned copy of a Python process (PID-1 init; for a warm caller one of
the small pre-forked launcher, cloned ahead, whose init does its setup and starts the
command in C, ``_fastpath_child.h``); the hardening layers (read-only view, fresh procfs) are part of
every number here. The measurements themselves belong in the bench output and commit messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

import lsandbox
from tests._sandbox import LSANDBOX, PY, policy
from tests.bench.test_bench_peers import codex_binary, codex_env

pytestmark = pytest.mark.bench


def best(fn, n: int = 15) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def test_bench_cli_launch_vs_python(tmp_path):
    t_py = best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    t_true = best(lambda: subprocess.run(["true"], check=True))
    t_ls = best(lambda: subprocess.run([LSANDBOX, "run", "--", "true"], check=True))
    codex = codex_binary()
    t_codex = best(lambda: subprocess.run([codex, "sandbox", "--", "true"], check=True, env=codex_env())) \
        if codex else None
    print(f"\nlaunch: `true` {t_true * 1e3:.1f} ms, `python -c pass` {t_py * 1e3:.1f} ms, "
          f"`lsandbox run -- true` {t_ls * 1e3:.1f} ms: ratio to python {t_ls / t_py:.2f}x (target <= 2x)")
    if t_codex is not None:
        print(f"launch: `codex sandbox -- true` {t_codex * 1e3:.1f} ms: lsandbox/codex ratio {t_ls / t_codex:.2f}x "
              "(target < 1x)")
    else:
        print("launch: codex not installed (`make bench` installs @openai/codex into .bench): column skipped")
    print_stages(tmp_path, t_py, t_ls)


def print_stages(tmp_path, t_py: float, t_ls: float, runs: int = 7, warm: bool = False) -> None:
    """Where the time goes: the fastest of ``runs`` instrumented launches (fresh interpreters,
    like the console script; ``warm``: the second launch of one process, like the API), as a
    timeline and as shares of the whole."""
    from tests.bench._launch_stages import CATEGORY, timeline

    script = os.path.join(os.path.dirname(__file__), "_launch_stages.py")
    best_tl: list[tuple[float, str]] = []
    for i in range(runs):
        log = str(tmp_path / f"stages-{warm}-{i}.log")
        subprocess.run([sys.executable, script, *(["--warm"] if warm else []), "true"], check=True,
                       env={**os.environ, "LSANDBOX_STAGES_LOG": log})
        tl = timeline(log)
        if not best_tl or tl[-1][0] < best_tl[-1][0]:
            best_tl = tl
    py_ms = 0.0 if warm else t_py * 1e3
    total = py_ms + best_tl[-1][0]  # interpreter start (python -c pass) + the instrumented run
    what = "warm launch in a small process" if warm else "launch"
    print(f"{what} stages (fastest of {runs} instrumented runs: {total:.1f} ms"
          f"{'' if warm else ' incl. the interpreter start'}; uninstrumented {t_ls * 1e3:.1f} ms):")
    sums: dict[str, float] = {}
    if not warm:
        print(f"  {'interpreter start (python -c pass)':45s} {py_ms:6.2f} ms")
        sums["interpreter start"] = py_ms
    prev = 0.0
    for at, name in best_tl[1:]:
        cat = CATEGORY.get(name, "command: fork, exec, exit, teardown")
        sums[cat] = sums.get(cat, 0.0) + (at - prev)
        print(f"  {name:45s} {at - prev:6.2f} ms  [{cat}]")
        prev = at
    print(f"{what}: where the time goes: " + ", ".join(
        f"{cat} {ms:.1f} ms ({ms / total:.0%})" for cat, ms in sums.items()))


def test_bench_api_launch_vs_bwrap(tmp_path):
    pol = policy(":workspace")
    _warm(pol)
    t_api = best(lambda: lsandbox.run(["true"], policy=pol))
    t_true = best(lambda: subprocess.run(["true"], check=True))
    line = f"\nlaunch (warm API): lsandbox.run(['true']) {t_api * 1e3:.1f} ms, bare {t_true * 1e3:.1f} ms"
    bwrap = shutil.which("bwrap")
    if bwrap:
        t_bw = best(lambda: subprocess.run([bwrap, "--ro-bind", "/", "/", "true"], check=True))
        line += f", bwrap --ro-bind / / true {t_bw * 1e3:.1f} ms: ratio {t_api / t_bw:.2f}x (target <= 2x)"
    else:
        line += " (bwrap not installed: `make bench` installs bubblewrap)"
    print(line)
    print_stages(tmp_path, 0.0, t_api, warm=True)


def _warm(pol: lsandbox.Policy) -> None:
    """Launch until this process's pre-forked launcher (``_prefork``) serves: a warm caller."""
    from lsandbox.linux import _prefork

    deadline = time.monotonic() + 10
    while True:
        lsandbox.run(["true"], policy=pol)
        if (_prefork._instance is not None and _prefork._instance.usable()) or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def test_bench_getppid_inside_vs_outside():
    code = ("import os,time\nbest=1\nfor _ in range(5):\n t=time.perf_counter()\n"
            " for _ in range(200000): os.getppid()\n best=min(best,time.perf_counter()-t)\nprint(best)")
    outside = min(float(subprocess.run([PY, "-c", code], capture_output=True, text=True).stdout) for _ in range(3))
    pol = policy(":workspace")
    inside = min(float(lsandbox.run([PY, "-c", code], policy=pol, capture_output=True, text=True).stdout)
                 for _ in range(3))
    print(f"\nsyscall: getppid() {outside / 200000 * 1e9:.0f} ns outside, {inside / 200000 * 1e9:.0f} ns "
          f"inside: ratio {inside / outside:.3f}x (target <= 1.05x; seccomp's own entry cost dominates, "
          "see the seccomp bench's 1-instruction floor)")
