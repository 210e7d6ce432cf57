"""Init's setup in C (``_child._init_steps``, ``_fastpath_child.h``): PDEATHSIG, the fresh procfs,
the working directory, capabilities, no_new_privs, Landlock, filter B and its listener, filter
A; where a step fails (or is one C does not do), Python does that step and the rest.

Each scenario runs twice in one fresh interpreter, C and Python (``_child._executor`` set or
not, the launch forked by the caller): the sandboxed command must see the same process and
the same filesystem, and a failing step must give the same error. The stage where C stopped
is recorded, so that a C path silently falling back to Python fails here too. As root and as
nobody, with and without namespaces, and with Landlock clamped to ABI 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests._sandbox import rmtree, world_dir
from tests._util import setpriv_nobody

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(sys.platform != "linux", reason="Linux")]
USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
ENVS = pytest.mark.parametrize("env", [{}, {"LSANDBOX_NO_NAMESPACES": "1"}, {"LANDLOCK_MAX_ABI": "1"}],
                               ids=["ns", "no-ns", "abi1"])

SCRIPT = r"""
import json, os, sys
import lsandbox
from lsandbox.linux import _child
from lsandbox.linux._fastpath import child_module
tmp, stages = sys.argv[1], sys.argv[1] + "/stages"
real = _child._init_steps
def spy(spec):
    fd = os.open(stages, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)  # before the sandbox
    done = real(spec)
    os.write(fd, f"{done.stage}\n".encode())
    os.close(fd)
    return done
_child._init_steps = spy
PROBE = ("pwd; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; [ $(ls /proc | grep -c '^[0-9]') -lt 10 ] && echo fresh procfs;"
         "ls /proc/sys 2>&1 | head -1; cat $1/secret $1/d/f 2>&1; echo x > /etc/lsb;"
         "python3 -c 'import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); print(s)' 2>&1 | tail -1")
def one(use_c, name, **kw):
    _child._executor = child_module() if use_c else None
    if os.path.exists(stages):
        os.unlink(stages)
    cwd = kw.pop("cwd", tmp)
    deny = kw.pop("deny", [tmp + "/secret"]) + [tmp + "/d"]
    pol = lsandbox.load_policy(None, ":workspace", cwd=tmp, search=False, requirements=None, deny=deny,
                               writable=[tmp + "/d/w"], **kw)
    if cwd != tmp:  # lsandbox.run checks its cwd first: the launcher itself
        from lsandbox.linux import _launcher
        try:
            launch = _launcher.wait(_launcher.spawn(pol, ["true"], cwd=cwd))
            rc, error = launch.exit_status, launch.error
        except lsandbox.SandboxError as e:
            rc, error = 125, str(e)
        return {"rc": rc, "error": error, "stages": open(stages).read().split() if os.path.exists(stages) else []}
    r = lsandbox.run(["sh", "-c", PROBE, "sh", tmp], policy=pol, capture_output=True, text=True, cwd=cwd)
    got = open(stages).read().split() if os.path.exists(stages) else []
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr, "error": r.error, "stages": got}
os.makedirs(tmp + "/d/w")
for path in ("/secret", "/d/f"):  # d: not masked in the view (it holds the writable d/w): Landlock alone
    with open(tmp + path, "w") as f:
        f.write("secret\n")
out = {}
for name, kw in [("default", {}), ("proc masked", {"deny": [tmp + "/secret", "/proc/sys"]}),
                 ("datagrams", {"allow_unix_sockets": [tmp + "/s.sock"]}), ("network", {"network": True}),
                 ("no cwd", {"cwd": tmp + "/missing"})]:
    for use_c in (True, False):
        out[f"{name} {use_c}"] = one(use_c, name, **dict(kw))
print("@@" + json.dumps(out))
"""


def _compiled() -> bool:
    from lsandbox.linux._fastpath import child_module

    return child_module() is not None


@pytest.mark.skipif(not _compiled(), reason="_fastpath_c not built (make setup)")
@USERS
@ENVS
def test_init_s_setup_in_c_and_in_python_makes_the_same_sandbox(nobody, env):
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    tmp = world_dir("lsb-initc-", "/tmp")
    try:
        script = os.path.join(tmp, "s.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        os.chmod(script, 0o644)
        run_env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LSANDBOX_REQUIREMENTS": "", "TMPDIR": tmp,
                   "LSANDBOX_NO_PREFORK": "1", **env}
        r = subprocess.run([*(setpriv_nobody() if nobody else []), sys.executable, script, tmp],
                           capture_output=True, text=True, cwd=tmp, env=run_env, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout.split("@@", 1)[1])
    finally:
        rmtree(tmp)
    for name in ("default", "proc masked", "datagrams", "network", "no cwd"):
        c, py = got[f"{name} True"], got[f"{name} False"]
        assert py["stages"] == []
        assert {k: v for k, v in c.items() if k != "stages"} == {k: v for k, v in py.items() if k != "stages"}, name
    default = got["default True"]
    assert default["rc"] == 0 and "NoNewPrivs:\t1" in default["out"] and "Seccomp_filters:\t2" in default["out"]
    assert "CapEff:\t0000000000000000" in default["out"]
    assert "secret: Permission denied" in default["out"]  # denied (Landlock, or the view's mask)
    assert "d/f: Permission denied" in default["out"]  # Landlock alone
    assert "/etc/lsb" in default["err"]  # read-only
    no_cwd = got["no cwd True"]
    assert no_cwd["rc"] == 125 and "No such file or directory" in (no_cwd["error"] or ""), no_cwd
    if env.get("LSANDBOX_NO_NAMESPACES"):  # no init: nothing in C
        assert all(got[f"{n} True"]["stages"] == [] for n in ("default", "no cwd"))
        return
    assert "fresh procfs" in default["out"] and "CapBnd:\t0000000000000000" in default["out"]
    # the stage where C stopped: all done (8), the masks inside /proc (1), the hand-over thread
    # of filter B (5), the missing working directory (2)
    assert default["stages"] == ["8"] and got["network True"]["stages"] == ["8"]
    assert got["proc masked True"]["stages"] == ["1"]
    assert got["datagrams True"]["stages"] == ["5"]
    assert no_cwd["stages"] == ["2"]
