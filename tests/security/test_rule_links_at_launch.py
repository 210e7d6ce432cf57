"""A rule's path is opened at launch with no symlink allowed on it, not only at its end.

The policy is resolved when it is loaded and the sandbox starts later (an API caller may load
a ``Policy`` once and run it many times): a directory on a rule's path swapped for a symlink
meanwhile (a still-running earlier sandbox can do it, in a writable root) moved a ``write``
rule onto the link's target. Shown to fail without the fix (``open(O_PATH|O_NOFOLLOW)``,
which checks the last component only): without namespaces the command wrote ``~/.cache``;
with namespaces the read-only view already refused it (EROFS).
"""

from __future__ import annotations

import os

import pytest

from tests._sandbox import rmtree, run_script, world_dir
from tests._util import skip_dropping_unless_root
from tests.conftest import NO_LANDLOCK

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(NO_LANDLOCK, reason="no Landlock on this kernel: lsandbox run refuses to start")]

SCRIPT = r"""
import os, lsandbox
os.environ["LSANDBOX_NO_NAMESPACES"] = NONS
ws, home = WS, HOME
p = lsandbox.load_policy(CFG, "p", cwd=ws, requirements=None)
os.rename(os.path.join(ws, "build"), os.path.join(ws, "build.old"))  # what a running sandbox may do
os.symlink(home, os.path.join(ws, "build"))
r = lsandbox.run(["sh", "-c", f"echo owned > {home}/.cache/x"], policy=p, cwd=ws, capture_output=True, text=True)
print("@@", r.returncode, os.path.exists(os.path.join(home, ".cache", "x")))
"""


@pytest.mark.parametrize("nons", [False, True], ids=["namespaces", "no-namespaces"])
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_a_directory_swapped_for_a_link_after_load_moves_no_rule(nobody, nons):
    skip_dropping_unless_root(nobody)
    tmp, ws, home = world_dir("lsb-rl-"), world_dir("lsb-rl-ws-"), world_dir("lsb-rl-home-")
    try:
        os.makedirs(os.path.join(ws, "build", ".cache"))
        os.makedirs(os.path.join(home, ".cache"))
        for d in (os.path.join(ws, "build"), os.path.join(ws, "build", ".cache"), os.path.join(home, ".cache")):
            os.chmod(d, 0o777)
        cfg = os.path.join(tmp, "c.toml")
        with open(cfg, "w") as f:
            f.write('[permissions.p]\nextends = ":workspace"\n[permissions.p.filesystem]\n'
                    '":workspace_roots" = { "." = "write", "build/.cache" = "write" }\n')
        os.chmod(cfg, 0o644)
        src = (SCRIPT.replace("NONS", repr("1" if nons else "0")).replace("WS", repr(ws), 1)
               .replace("HOME", repr(home), 1).replace("CFG", repr(cfg)))
        res = run_script(src, nobody, tmp)
        line = next((ln for ln in res.stdout.splitlines() if ln.startswith("@@")), None)
        assert line is not None, (res.stdout, res.stderr[-2000:])
        assert line.split()[2] == "False", (line, res.stderr[-2000:])
    finally:
        for d in (tmp, ws, home):
            rmtree(d)
