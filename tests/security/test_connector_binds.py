"""Brokered binds under the sandbox's Landlock ``MAKE_SOCK`` rules (``_connector``).

The broker performs every pathname AF_UNIX ``bind`` of the sandbox, so the kernel checks the
socket file's creation against the performing thread's Landlock domain. Wherever Landlock
exists (ABI >= 1) that thread is the connector, restricted by the sandbox's ``MAKE_SOCK``
grants: a bind the broker wrongly allowed is still refused by the kernel.

1. At the broker's level: the policy allows the bind, the connector's rules grant nothing
   (EACCES, no file) or the directory (bound, owned by the command's uid, its mode from the
   command's umask; the supervisor's cwd and umask untouched). Root and nobody.
2. End to end (``lsandbox run``): the two layers made to disagree by wrapping
   ``_unix_pins.connector_rules`` in the test's own launcher (nothing in lsandbox honours a
   test switch): the kernel refuses the bind though the broker allows it; with the rules
   whole, the bind is made. Root and nobody, with and without namespaces, at the kernel's
   ABI and at ABI 1.

Without Landlock (5.10) there is no connector: binds go through the sandbox's root
(``/proc/<pid>/root``), so its read-only mount view is the kernel's layer there."""

from __future__ import annotations

import errno
import functools
import os
import socket
import stat
import subprocess
import sys

import pytest

import landlock as ll
from lsandbox.linux import _broker
from tests._sandbox import PY
from tests._util import setpriv_nobody
from tests.security import _unix_helpers as H
from tests.security._unix_helpers import brokered, policy, shared_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(ll.abi_version() < 1, reason="no Landlock on this kernel: no connector "
                                 "(binds go through the read-only mount view)")]
MS = ll.FS_MAKE_SOCK
AS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])


def _bind(path: str) -> str:
    os.umask(0o027)
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(path)
        st = os.stat(path)
        return f"{st.st_uid}:{oct(stat.S_IMODE(st.st_mode))}"
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e))
    finally:
        s.close()


@AS
@pytest.mark.parametrize("granted", [False, True], ids=["nothing-granted", "dir-granted"])
def test_brokered_bind_is_made_under_the_connectors_rules(monkeypatch, nobody, granted):
    d = shared_dir()
    monkeypatch.setattr(H, "Broker", functools.partial(_broker.Broker, connector=(MS, [(d, MS)] if granted else [])))
    cwd, mask = os.getcwd(), os.umask(0o022)
    try:
        got, events = brokered(_bind, f"{d}/s", pol=policy({d: "allow"}, writable=(d,)), as_nobody=nobody)
        assert os.getcwd() == cwd and os.umask(mask) == 0o022  # the connector's own fs_struct
        if granted:
            assert got == f"{65534 if nobody else os.geteuid()}:0o750", events
        else:  # the broker allowed it; the kernel refused it
            assert got == "EACCES" and not os.path.lexists(f"{d}/s"), events
        assert not [e for e in events if e.get("kind") == "note"], events
    finally:
        os.umask(mask)


# The test's launcher: lsandbox's CLI with MAKE_SOCK taken away from the connector's rules
# at and above $LSB_TEST_DENY, while the policy, which the broker decides by, allows the bind.
LAUNCHER = r"""
import os, sys
import landlock as ll
from lsandbox.linux import _unix_pins
deny = os.environ.pop("LSB_TEST_DENY", "")
real = _unix_pins.connector_rules

def rules(*a, **kw):
    out = real(*a, **kw)
    if deny and out is not None:
        handled, grants = out
        covers = lambda p: deny == p or deny.startswith(p.rstrip("/") + "/")
        out = handled, [(p, g & ~ll.FS_MAKE_SOCK if covers(p) else g) for p, g in grants]
        print("MAKE_SOCK taken from the connector's rules", file=sys.stderr, flush=True)
    return out

_unix_pins.connector_rules = rules
from lsandbox.cli import main
sys.exit(main())
"""
PROBE = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.bind(sys.argv[1])
    print("ok")
except OSError as e:
    print(e.errno)
"""
MODES = {"namespaces": {}, "no-namespaces": {"LSANDBOX_NO_NAMESPACES": "1"},
         "abi1": {"LANDLOCK_MAX_ABI": "1"}, "abi1-no-namespaces": {"LANDLOCK_MAX_ABI": "1", "LSANDBOX_NO_NAMESPACES": "1"}}


def _run(d: str, deny: bool, nobody: bool, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **MODES[mode], "LSB_TEST_DENY": d if deny else ""}
    prefix = setpriv_nobody() if nobody else []
    return subprocess.run([*prefix, sys.executable, "-c", LAUNCHER, "run", "-w", d, "--allow-unix-socket", d,
                           "--", PY, "-c", PROBE, f"{d}/s"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=d)


@AS
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("deny", [False, True], ids=["rules-whole", "make-sock-taken"])
def test_kernel_refuses_a_bind_landlock_denies_though_the_broker_allows(nobody, mode, deny):
    if nobody and os.geteuid() != 0:
        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    d = shared_dir()
    r = _run(d, deny, nobody, mode)
    assert r.returncode == 0, r
    if deny:
        assert "MAKE_SOCK taken" in r.stderr, r
        assert r.stdout.split() == [str(errno.EACCES)] and not os.path.lexists(f"{d}/s"), r
    else:
        assert r.stdout.split() == ["ok"] and stat.S_ISSOCK(os.lstat(f"{d}/s").st_mode), r


@AS
@pytest.mark.parametrize("mode", ["namespaces", "no-namespaces"])
def test_binds_in_a_workspace_with_a_read_only_carve_out(nobody, mode):
    """A workspace holding ``.git`` (read-only): without namespaces Landlock splits the
    workspace, and the connector grants the split directory itself; the carve-out stays the
    broker's to refuse."""
    if nobody and os.geteuid() != 0:
        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    d = shared_dir()
    os.mkdir(f"{d}/.git")
    os.chmod(f"{d}/.git", 0o777)
    out = []
    for path in (f"{d}/s", f"{d}/.git/s"):
        env = {**os.environ, **MODES[mode]}
        prefix = setpriv_nobody() if nobody else []
        r = subprocess.run([*prefix, sys.executable, "-m", "lsandbox.cli", "run", "-w", d, "--allow-unix-socket", d,
                            "--", PY, "-c", PROBE, path], env=env, capture_output=True, text=True, timeout=60, cwd=d)
        assert r.returncode == 0, r
        out += r.stdout.split()
    assert out == ["ok", str(errno.EACCES)] and not os.path.lexists(f"{d}/.git/s")
