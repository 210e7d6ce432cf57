"""A rule's path is opened at launch with no symlink allowed on it, not only at its end.

The policy is resolved when it is loaded and the sandbox starts later (an API caller may load
a ``Policy`` once and run it many times): a directory on a rule's path swapped for a symlink
meanwhile (a still-running earlier sandbox can do it, in a writable root) moved a ``write``
rule onto the link's target. Shown to fail without the fix (``open(O_PATH|O_NOFOLLOW)``,
which checks the last component only, in ``landlock._raw`` and in the pre-forked launcher's
C init, ``_fastpath_child.h``; the view's ``open_tree`` by path): the command wrote (and
chmod-ed) ``~/sub/.cache``, with namespaces too, through the view's writable clone of the
link's target. With namespaces the launch now stops (the view checks its paths); without,
Landlock places no rule on a path with a link (EACCES).
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
for _ in range(3):  # later launches of one process go through the pre-forked launcher (C init)
    lsandbox.run(["true"], policy=p, cwd=ws)
os.rename(os.path.join(ws, "build"), os.path.join(ws, "build.old"))  # what a running sandbox may do
os.symlink(home, os.path.join(ws, "build"))
try:
    r = lsandbox.run(["sh", "-c", f"echo owned > {home}/sub/.cache/x; chmod 0700 {home}/sub/.cache"],
                     policy=p, cwd=ws, capture_output=True, text=True)
    how = r.returncode
except lsandbox.SandboxError as e:
    how = "refused" if "load the policy again" in str(e) else repr(e)
st = os.stat(os.path.join(home, "sub", ".cache"))
print("@@", how, os.path.exists(os.path.join(home, "sub", ".cache", "x")), oct(st.st_mode & 0o777))
"""


@pytest.mark.parametrize("nons", [False, True], ids=["namespaces", "no-namespaces"])
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_a_directory_swapped_for_a_link_after_load_moves_no_rule(nobody, nons):
    skip_dropping_unless_root(nobody)
    tmp, ws, home = world_dir("lsb-rl-"), world_dir("lsb-rl-ws-"), world_dir("lsb-rl-home-")
    try:
        os.makedirs(os.path.join(ws, "build", "sub", ".cache"))
        os.makedirs(os.path.join(home, "sub", ".cache"))
        for d in ("build", "build/sub", "build/sub/.cache"):
            os.chmod(os.path.join(ws, d), 0o777)
        for d in ("sub", "sub/.cache"):
            os.chmod(os.path.join(home, d), 0o777)
        cfg = os.path.join(tmp, "c.toml")
        with open(cfg, "w") as f:  # a read directory between: the view clones build/sub/.cache itself
            f.write('[permissions.p]\nextends = ":workspace"\n[permissions.p.filesystem]\n'
                    '":workspace_roots" = { "." = "write", "build/sub" = "read", "build/sub/.cache" = "write" }\n')
        os.chmod(cfg, 0o644)
        src = (SCRIPT.replace("NONS", repr("1" if nons else "0")).replace("WS", repr(ws), 1)
               .replace("HOME", repr(home), 1).replace("CFG", repr(cfg)))
        res = run_script(src, nobody, tmp)
        line = next((ln for ln in res.stdout.splitlines() if ln.startswith("@@")), None)
        assert line is not None, (res.stdout, res.stderr[-2000:])
        _, how, written, mode = line.split()
        assert written == "False" and mode == "0o777", (line, res.stderr[-2000:])
        assert how == ("refused" if not nons else "1"), line  # the view stops it; without one, EACCES
    finally:
        for d in (tmp, ws, home):
            rmtree(d)
