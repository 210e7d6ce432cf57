"""Cost of the path-operation broker (issue 19): creating 10,000 files in the repository root
(split for ``.git`` without namespaces: every creation performed by the broker) and in an
existing subdirectory (Landlock grants it: every O_CREAT open notifies and is answered
CONTINUE), without namespaces vs with them, and vs unsandboxed. The loop is timed inside the
command (launch excluded); ratios from one run, printed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests._sandbox import LSANDBOX, PY, world_dir

pytestmark = [pytest.mark.bench, pytest.mark.kernel]
N = 10_000

LOOP = r"""
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for i in range(n):
    fd = os.open(f"{d}/f{i}.py", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"x")
    os.close(fd)
print("@@", time.perf_counter() - t)
"""


def _ws() -> str:
    d = world_dir("lsb-bench-split-")
    subprocess.run(["git", "init", "-q", d], check=True)
    os.makedirs(os.path.join(d, "src"))
    return d


def _time(where: str, env: dict[str, str] | None, cwd: str) -> float | None:
    e = dict(os.environ)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    e.pop("LSANDBOX_NO_NAMESPACES", None)
    argv = [PY, "-c", LOOP, where, str(N)]
    if env is not None:
        e.update(env)
        argv = [LSANDBOX, "run", "--", *argv]
    r = subprocess.run(argv, capture_output=True, text=True, env=e, cwd=cwd, timeout=600)
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            return float(line.split()[1])
    return None  # the mode cannot create there (reported)


def test_bench_pathops_creation():
    results: dict[str, float | None] = {}
    for label, env in (("unsandboxed", None), ("namespaces", {}), ("no namespaces", {"LSANDBOX_NO_NAMESPACES": "1"})):
        for where in ("root", "subdir"):
            ws = _ws()
            try:
                results[f"{label}, {where}"] = _time("." if where == "root" else "src", env, ws)
            finally:
                shutil.rmtree(ws, ignore_errors=True)
    base = results["unsandboxed, root"] or 1e-9
    lines = [f"creating {N:,} files (O_CREAT|O_TRUNC open + write + close), loop time inside the command:"]
    for k, v in results.items():
        lines.append(f"  {k:28s} " + (f"{v * 1e3:8.1f} ms  {v / base:5.2f}x unsandboxed, "
                                      f"{v / N * 1e6:6.1f} us/file" if v else "   (cannot create there)"))
    for where in ("root", "subdir"):
        ns, nons = results[f"namespaces, {where}"], results[f"no namespaces, {where}"]
        if ns and nons:
            lines.append(f"  no namespaces / namespaces, {where}: {nons / ns:.2f}x")
    print("\n" + "\n".join(lines))
    assert results["no namespaces, root"] and results["no namespaces, subdir"]
