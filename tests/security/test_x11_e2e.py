"""X11 end to end, the README's own example: a real X server (Xvfb) outside the sandbox and a
real client (xdpyinfo) inside. libxcb connects to the abstract name ``@/tmp/.X11-unix/XN``
first and falls back to the path only on ECONNREFUSED or ENOENT, so a refused abstract name
must answer as a name that does not exist; with ``--allow-unix-socket /tmp/.X11-unix`` the
path then works, without it the client fails. Both brokers, root and nobody, with and
without namespaces."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys

import pytest

from tests._sandbox import LSANDBOX
from tests._util import TIME_FACTOR
from tests.security._docker_run import docker_run

pytestmark = [pytest.mark.kernel, pytest.mark.security, pytest.mark.skipif(sys.platform != "linux", reason="Linux")]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture(scope="module")
def display():
    xvfb, client = shutil.which("Xvfb"), shutil.which("xdpyinfo")
    if xvfb is None or client is None:
        pytest.skip("X11 end to end needs Xvfb and xdpyinfo (Debian: xvfb, x11-utils; "
                    "scripts/install-system-deps.sh installs them)")
    r, w = os.pipe()
    # -displayfd: the server picks a free display and writes its number once it listens
    proc = subprocess.Popen([xvfb, "-displayfd", str(w), "-nolisten", "tcp"], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        if not select.select([r], [], [], 30 * TIME_FACTOR)[0]:  # scaled: under emulation too
            pytest.fail(f"Xvfb did not start within {30 * TIME_FACTOR:g} s")
        num = os.read(r, 64).decode().strip()
        assert num.isdigit(), f"Xvfb: {num!r}"
        yield f":{num}", client
    finally:
        os.close(r)
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("mode", ["fastpath", "python"])
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("ns", [True, False, "abi1"], ids=["ns", "no-ns", "landlock-abi1"])
def test_xdpyinfo_through_the_allowlist(display, mode, nobody, ns):
    """(``landlock-abi1``: without Landlock's abstract-socket scope, the broker alone decides.)"""
    disp, client = display
    env = {k: v for k, v in os.environ.items()
           if k not in ("LSANDBOX_BROKER_NO_FASTPATH", "LSANDBOX_NO_NAMESPACES", "XAUTHORITY", "LANDLOCK_MAX_ABI")}
    if ns == "abi1":
        env["LANDLOCK_MAX_ABI"] = "1"
    if mode == "python":
        env["LSANDBOX_BROKER_NO_FASTPATH"] = "1"
    if not ns:
        env["LSANDBOX_NO_NAMESPACES"] = "1"
    pre = NOBODY if nobody else []
    bare = subprocess.run([*pre, client, "-display", disp], env=env, capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0, bare.stderr  # the client works unsandboxed, as this user
    ok = subprocess.run([*pre, LSANDBOX, "run", "--allow-unix-socket", "/tmp/.X11-unix", "--",
                         client, "-display", disp], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert f"name of display:    {disp}" in ok.stdout
    no = subprocess.run([*pre, LSANDBOX, "run", "--", client, "-display", disp], env=env,
                        capture_output=True, text=True, timeout=60)
    assert no.returncode != 0 and "unable to open display" in no.stderr, (no.returncode, no.stderr)


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_xdpyinfo_under_docker_default_profile(display, nobody):
    """The same through the NOTIF_ADDFD broker (pidfd_getfd refused, no namespaces)."""
    disp, client = display
    env = {k: v for k, v in os.environ.items() if k not in ("LSANDBOX_NO_NAMESPACES", "XAUTHORITY")}
    pre = NOBODY if nobody else []
    ok = docker_run([*pre, LSANDBOX, "run", "--allow-unix-socket", "/tmp/.X11-unix", "--", client,
                     "-display", disp], env)
    assert ok.returncode == 0, ok.stderr
    assert f"name of display:    {disp}" in ok.stdout
    no = docker_run([*pre, LSANDBOX, "run", "--", client, "-display", disp], env)
    assert no.returncode != 0 and "unable to open display" in no.stderr, (no.returncode, no.stderr)
