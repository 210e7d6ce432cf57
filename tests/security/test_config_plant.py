"""A sandbox cannot choose the next sandbox's policy by writing ``./lsandbox.toml``.

The working directory is the default workspace, writable by the command, and the config
search looks there first. Without ``lsandbox._trust`` a command that wrote
``default_permissions = ":danger-full-access"`` there got the next plain ``lsandbox run``
(or ``lsandbox.run(cmd, cwd=ws)``) started from that directory unconfined: it wrote outside
the workspace. Now that config is loaded only once the user trusted that content: the
next run refuses to start (125, one line), and so does the API (PolicyError).

As root and as nobody, with and without namespaces. Shown to fail without the fix (red team,
session 9): the second run exits 0 and the victim file exists, from the CLI and the API."""

from __future__ import annotations

import os

import pytest

from tests._sandbox import rmtree, run_script, world_dir
from tests._util import skip_dropping_unless_root
from tests.conftest import NO_LANDLOCK
from tests.security._hardening import lsandbox

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(NO_LANDLOCK, reason="no Landlock on this kernel: lsandbox run refuses to start")]

PLANT = "printf 'default_permissions = \":danger-full-access\"\\n' > lsandbox.toml"
API = r"""
import lsandbox, sys
try:
    print("api", lsandbox.run(["sh", "-c", f"echo api >> {sys.argv[2]}"], cwd=sys.argv[1]).returncode)
except lsandbox.PolicyError as e:
    print("api PolicyError:", e)
"""


@pytest.mark.parametrize("nons", [False, True], ids=["namespaces", "no-namespaces"])
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_a_planted_config_does_not_configure_the_next_run(nobody, nons):
    skip_dropping_unless_root(nobody)
    tmp, ws, out = world_dir("lsb-plant-"), world_dir("lsb-plant-ws-"), world_dir("lsb-plant-victim-")
    victim = os.path.join(out, "pwned")
    env = {"HOME": tmp, "LSANDBOX_NO_NAMESPACES": "1" if nons else "0"}
    try:
        plant = lsandbox(["run", "--", "sh", "-c", PLANT], nobody=nobody, env=env, cwd=ws)
        assert plant.returncode == 0 and os.path.exists(os.path.join(ws, "lsandbox.toml")), plant.stderr
        nxt = lsandbox(["run", "--", "sh", "-c", f"echo cli > {victim}"], nobody=nobody, env=env, cwd=ws)
        assert nxt.returncode == 125, (nxt.returncode, nxt.stderr)
        assert nxt.stderr.startswith("lsandbox: error: ") and nxt.stderr.count("\n") == 1, nxt.stderr
        assert "not trusted" in nxt.stderr, nxt.stderr
        api = run_script(f"import os\nos.environ['LSANDBOX_NO_NAMESPACES'] = {env['LSANDBOX_NO_NAMESPACES']!r}\n"
                         + API.replace("sys.argv[1]", repr(ws)).replace("sys.argv[2]", repr(victim)), nobody, tmp)
        assert "api PolicyError:" in api.stdout and "not trusted" in api.stdout, (api.stdout, api.stderr)
        assert not os.path.exists(victim)
    finally:
        for d in (tmp, ws, out):
            rmtree(d)
