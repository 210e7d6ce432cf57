"""Launch cost and in-sandbox syscall cost, as ratios measured side by side. `make bench`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

import lsandbox
from tests._sandbox import LSANDBOX, PY, policy

pytestmark = pytest.mark.bench


def best(fn, n: int = 15) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def test_bench_cli_launch_vs_python():
    """Where the time goes, measured side by side: the interpreter (``python -c pass``), the
    imports ``lsandbox run`` needs (the same interpreter importing them and exiting), and the
    rest (policy, plan, forks, namespaces, Landlock, filters, exec, teardown)."""
    imports = ("import lsandbox.cli, lsandbox.cli._run, lsandbox._load, lsandbox.linux._launcher, "
               "lsandbox.linux._broker")
    t_py = best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    t_imp = best(lambda: subprocess.run([sys.executable, "-c", imports], check=True))
    t_true = best(lambda: subprocess.run(["true"], check=True))
    t_ls = best(lambda: subprocess.run([LSANDBOX, "run", "--", "true"], check=True))
    print(f"\nlaunch: `true` {t_true * 1e3:.1f} ms, `python -c pass` {t_py * 1e3:.1f} ms, "
          f"`lsandbox run -- true` {t_ls * 1e3:.1f} ms: ratio to python {t_ls / t_py:.2f}x (target <= 1.3x)")
    print(f"launch: interpreter {t_py * 1e3:.1f} ms, imports {(t_imp - t_py) * 1e3:.1f} ms, sandbox work "
          f"{(t_ls - t_imp) * 1e3:.1f} ms (policy, plan, 3 forks, namespaces, Landlock, filters, exec, teardown)")


def test_bench_api_launch_vs_bwrap():
    pol = policy(":workspace")
    lsandbox.run(["true"], policy=pol)  # warm
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
