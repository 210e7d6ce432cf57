"""No Landlock (Linux < 5.13, or landlock left out of ``lsm=``): never silently weaker.

Landlock carries the filesystem policy. Where it is missing and no read-only mount view can
carry the policy instead, ``lsandbox run`` refuses to start: one ``lsandbox: error:`` line
naming what is missing, exit 125, nothing run and nothing left behind; the API raises
SetupError; doctor says so. ``LANDLOCK_MAX_ABI=0`` makes a Landlock kernel behave as one
without it (the library's clamp); on a real pre-Landlock kernel (5.10 in ``make
test-kernels``) the same tests run unclamped."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import lsandbox
from lsandbox.linux._features import features, mount_view_built
from tests._sandbox import LSANDBOX, PY, policy, rmtree, world_dir
from tests._util import run_in_child, setpriv_nobody

pytestmark = pytest.mark.kernel
NO_LANDLOCK = {"LANDLOCK_MAX_ABI": "0"}


def _run(prefix: list[str], env: dict[str, str], marker: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, LSANDBOX, "run", "--", PY, "-c", f"open({marker!r}, 'w').close()"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("who", ["root", "nobody"])
@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "no-namespaces"])
def test_run_refuses_without_landlock(who, namespaces):
    if namespaces and mount_view_built():
        pytest.skip("the read-only mount view carries the filesystem policy: run starts (its own tests)")
    out = world_dir("lsb-noll-")
    marker = os.path.join(out, "ran")
    tmp = world_dir("lsb-noll-tmp-")  # TMPDIR: where the run's socket directory would be
    env = dict(NO_LANDLOCK, TMPDIR=tmp, **({} if namespaces else {"LSANDBOX_NO_NAMESPACES": "1"}))
    try:
        r = _run(setpriv_nobody() if who == "nobody" else [], env, marker)
        assert r.returncode == 125, r
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("lsandbox: error: Landlock is not available"), r.stderr
        assert ("mount namespaces are not usable" in lines[0]) == (not namespaces)
        assert not os.path.exists(marker), "the command ran without its filesystem policy"
        assert os.listdir(tmp) == [], "a socket directory was left behind"
    finally:
        rmtree(out)
        rmtree(tmp)


@pytest.mark.parametrize("who", ["root", "nobody"])
def test_mount_view_carries_the_policy_without_landlock(who):
    """With namespaces, the read-only mount view holds the write policy on its own: the run
    starts, writes inside the workspace, and cannot write outside it."""
    if not mount_view_built():
        pytest.skip("no read-only mount view in this build: run refuses (test above)")
    ws, out = world_dir("lsb-noll-ws-"), world_dir("lsb-noll-out-")
    code = ("import sys\nfor p in sys.argv[1:]:\n    try:\n        open(p, 'w').close(); print('ok')\n"
            "    except OSError as e:\n        print(e.errno)\n")
    try:
        r = subprocess.run([*(setpriv_nobody() if who == "nobody" else []), LSANDBOX, "run", "-p", ":workspace", "--",
                            PY, "-c", code, os.path.join(ws, "in"), os.path.join(out, "out")],
                           env={**os.environ, **NO_LANDLOCK}, cwd=ws, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        assert r.stdout.split() == ["ok", "30"], r  # EROFS outside: the view, not Landlock
        assert not os.path.exists(os.path.join(out, "out"))
    finally:
        rmtree(ws)
        rmtree(out)


def test_api_raises_setup_error(monkeypatch):
    if mount_view_built():
        monkeypatch.setenv("LSANDBOX_NO_NAMESPACES", "1")

    def child() -> str:
        os.environ.update(NO_LANDLOCK)
        features.cache_clear()  # probed afresh under the clamp, as a new process would
        try:
            lsandbox.run([PY, "-c", "pass"], policy=policy(), capture_output=True)
        except lsandbox.SetupError as e:
            return str(e)
        return "ran"

    got = run_in_child(child, timeout=60).unwrap()
    assert got.startswith("Landlock is not available"), got


def test_container_fallback_refuses_too():
    """Namespaces refused at launch (Docker's default profile): the child's no-namespace
    fallback is refused as well, rather than run with neither Landlock nor a mount view."""
    from tests.kernel.test_container_docker import _in_container

    ws, out = world_dir("lsb-noll-ws-"), world_dir("lsb-noll-out-")
    marker = os.path.join(out, "ran")
    try:
        rc, output, _ = run_in_child(_in_container, ws, out, "/nonexistent", "/nonexistent", NO_LANDLOCK,
                                     [LSANDBOX, "run", "--", PY, "-c", f"open({marker!r}, 'w').close()"],
                                     timeout=60).unwrap()
        assert rc == 125, output
        assert "Landlock is not available" in output and not os.path.exists(marker), output
    finally:
        rmtree(ws)
        rmtree(out)


def test_doctor_says_run_refuses():
    env = {**os.environ, **NO_LANDLOCK, "LSANDBOX_NO_NAMESPACES": "1"}
    r = subprocess.run([LSANDBOX, "doctor", "--json"], env=env, capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout)
    assert doc["machine"]["run_refused"].startswith("Landlock is not available")
    rows = {row["field"]: row for row in doc["fields"]}
    assert rows["filesystem read/write roots"]["state"] == "not enforced" and r.returncode == 1
    text = subprocess.run([LSANDBOX, "doctor"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "run: REFUSES to start here: Landlock is not available" in text


@pytest.mark.parametrize("config", [
    'default_permissions = "p"\n[permissions.p.filesystem]\n"/usr" = "read"\n"/lib" = "read"\n',
    'default_permissions = "p"\n[permissions.p]\nextends = ":read-only"\n[permissions.p.filesystem]\n'
    '"/etc" = "deny"\n"/etc/ssl" = "read"\n',
], ids=["reads-less-than-everything", "deny-holding-a-readable-path"])
def test_mount_view_alone_refuses_what_it_cannot_hold(config, tmp_path):
    """The view cannot refuse a read: without Landlock, a policy whose reads are narrower
    than "everything but masked deny paths" is refused, not run weaker."""
    if not mount_view_built() or not features().namespaces:
        pytest.skip("needs namespaces and the mount view")
    cfg = tmp_path / "c.toml"
    cfg.write_text(config)
    r = subprocess.run([LSANDBOX, "run", "-c", str(cfg), "--", "/bin/true"], env={**os.environ, **NO_LANDLOCK},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 125, r
    assert r.stderr.startswith("lsandbox: error: Landlock is not available") and "cannot refuse reads" in r.stderr, r
    assert len(r.stderr.splitlines()) == 1, r.stderr
    if features().landlock_abi:  # with Landlock the same policy runs
        ok = subprocess.run([LSANDBOX, "run", "-c", str(cfg), "--", "/bin/true"], capture_output=True, text=True,
                            timeout=60)
        assert ok.returncode == 0, ok
