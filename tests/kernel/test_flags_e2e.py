"""The everyday flags in real sandboxes, CLI and API, as root and as nobody: ``-C`` runs in
DIR and makes it the writable workspace, the environment flags and table shape what the
command sees, ``--deny``/``--read`` are enforced."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import lsandbox
from tests._sandbox import LSANDBOX, PY, world_dir

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def ws():
    d = world_dir("lsb-flags-")
    os.mkdir(os.path.join(d, "proj"))
    os.chmod(os.path.join(d, "proj"), 0o777)
    with open(os.path.join(d, "secret"), "w") as f:
        f.write("s")
    os.chmod(os.path.join(d, "secret"), 0o644)
    yield d
    shutil.rmtree(d)


def cli(argv, nobody=False, **kw):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "GH_TOKEN": "t", "KEEP": "k", **kw.pop("env", {})}
    return subprocess.run([*(AS_NOBODY if nobody else []), LSANDBOX, *argv], capture_output=True,
                          text=True, env=env, cwd="/", timeout=60, **kw)


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_chdir_env_and_paths(ws, nobody):
    proj = os.path.join(ws, "proj")
    r = cli(["run", "-C", proj, "--setenv", "A=1", "--unsetenv", "gh_*", "--deny", f"{ws}/secret",
             "--", "sh", "-c", f'pwd; echo "A=$A GH=$GH_TOKEN KEEP=$KEEP"; touch made; '
                               f'cat {ws}/secret 2>/dev/null || echo denied; touch {ws}/out 2>/dev/null || echo ro'],
            nobody=nobody)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [proj, "A=1 GH= KEEP=k", "denied", "ro"]
    assert os.path.exists(os.path.join(proj, "made"))
    r = cli(["run", "--clearenv", "--setenv", "PATH=/usr/bin:/bin", "--", "env"], nobody=nobody)
    names = sorted(line.partition("=")[0] for line in r.stdout.splitlines())
    assert names == ["LSANDBOX_SOCKET_DIR", "PATH"], r.stdout


def test_config_table_in_a_real_run(ws):
    cfg = os.path.join(ws, "c.toml")
    with open(cfg, "w") as f:
        f.write('[shell_environment_policy]\ninherit = "core"\nignore_default_excludes = false\n'
                'set = { FROM_CONFIG = "yes" }\n')
    r = cli(["run", "-c", cfg, "--", "sh", "-c", 'echo "$FROM_CONFIG|$KEEP|$GH_TOKEN|$PATH"'])
    assert r.stdout.strip() == "yes|||/usr/bin:/bin", r.stderr


def test_api_environment_and_cwd(ws):
    proj = os.path.join(ws, "proj")
    pol = lsandbox.load_policy(None, search=False, requirements=None, cwd=proj,
                               setenv={"A": "2"}, unsetenv=["KEEP"])
    res = lsandbox.run(["sh", "-c", 'pwd; echo "$A|$KEEP"; touch api-made'], policy=pol, cwd=proj,
                       env={"KEEP": "k", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [proj, "2|"]
    assert os.path.exists(os.path.join(proj, "api-made"))
    # cwd without a policy: the workspace is cwd, as with -C
    res = lsandbox.run(["touch", "api-made-2"], cwd=proj, capture_output=True)
    assert res.returncode == 0 and os.path.exists(os.path.join(proj, "api-made-2"))


def test_background_children_are_killed_when_the_command_exits(tmp_path):
    """What the README promises (with namespaces)."""
    from lsandbox.linux._features import features

    if not features().namespaces:
        pytest.skip("no namespaces here: background children outlive the command (README)")
    marker = f"lsb-bg-{os.getpid()}"  # sleep's argv[0], to find it afterwards
    r = subprocess.run([LSANDBOX, "run", "--", PY, "-c",
                        f"import os; os.spawnv(os.P_NOWAIT, '/bin/sleep', ['{marker}', '60']); print('ok')"],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert r.stdout == "ok\n", r.stderr
    alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    if alive.stdout:
        subprocess.run(["kill", *alive.stdout.split()])
    assert alive.stdout == "", f"still running: {alive.stdout}"
