"""Issue 19's table under Docker's default seccomp profile (compiled by our seccomp_bpf and
applied to the supervisor, as in test_container_docker): ``unshare`` is refused, so the
child falls back to running without namespaces, the repository root is split for ``.git``,
and creation there is performed by the path-operation broker; ``pidfd_getfd`` is refused
too (the broker does not need it: the target's descriptors are reached through /proc).

Shown to fail without the fix: without filter B's path rules, ``new``, ``mkdir``, ``venv``
answer EACCES (the right-hand column of the issue's table).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests._docker_profile import run_under_docker_profile
from tests._sandbox import LSANDBOX, world_dir
from tests._util import run_in_child
from tests.security._hardening import NOBODY

pytestmark = [pytest.mark.kernel]

SCRIPT = r"""
r() { "$@" >/dev/null 2>&1 && echo ok || echo fail; }
echo "new=$(r sh -c 'echo x > new.py')"
echo "mkdir=$(r mkdir build)"
echo "append=$(r sh -c 'echo y >> src/b.py')"
echo "lock=$(r python3 -c 'import multiprocessing; multiprocessing.Lock()')"
echo "gitadd=$(r git add new.py)"
echo "hook=$(r touch .git/hooks/x)"
echo "venv=$(r sh -c 'python3 -m venv .venv && .venv/bin/pip --version')"
"""


def _container(ws: str, nobody: bool) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "LSANDBOX_NO_NAMESPACES"}
    env["HOME"] = ws
    return run_under_docker_profile([*(NOBODY if nobody else []), LSANDBOX, "run", "--", "sh", "-c", SCRIPT],
                                    cwd=ws, env=env)


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_issue_table_under_docker_default_profile(nobody):
    ws = world_dir("lsb-dk-split-")
    subprocess.run(["git", "init", "-q", ws], check=True)
    os.makedirs(os.path.join(ws, "src"))
    with open(os.path.join(ws, "src", "b.py"), "w") as f:
        f.write("a\n")
    subprocess.run(["chmod", "-R", "a+rwX", ws], check=True)
    try:
        rc, output = run_in_child(_container, ws, nobody, timeout=400).unwrap()
        got = dict(line.split("=", 1) for line in output.split() if "=" in line and line.split("=")[0].isalpha())
        assert got == {"new": "ok", "mkdir": "ok", "append": "ok", "lock": "ok", "gitadd": "fail",
                       "hook": "fail", "venv": "ok"}, output
        assert not os.path.exists(os.path.join(ws, ".git", "hooks", "x"))
    finally:
        shutil.rmtree(ws, ignore_errors=True)
