"""lsandbox inside a Docker-like container: Docker's default seccomp profile (compiled by our
seccomp_bpf) is applied to the supervisor before it starts. There pidfd_getfd needs
CAP_SYS_PTRACE and unshare/clone namespaces need CAP_SYS_ADMIN, so the sandbox runs without
namespaces and brokers connects with NOTIF_ADDFD; every field must still be enforced."""

from __future__ import annotations

import errno
import json
import os
import sys

import pytest

import seccomp_bpf as sb
from tests._docker_profile import docker_filter, run_under_docker_profile
from tests._sandbox import LSANDBOX, PY, UnixServer, rmtree, world_dir
from tests._util import run_in_child

pytestmark = [pytest.mark.kernel]
X86 = sb.ARCHES.get(sb.native_arch(), 0)


def nr(name: str) -> int:
    return sb.syscall_number(name)


def test_profile_compiles_and_means_what_docker_says():
    prog = docker_filter()
    eperm = 0x00050000 | errno.EPERM
    allow = 0x7FFF0000
    assert sb.simulate(prog, sb.SeccompData(nr("pidfd_getfd"), X86)) == eperm
    assert sb.simulate(prog, sb.SeccompData(nr("unshare"), X86)) == eperm
    assert sb.simulate(prog, sb.SeccompData(nr("io_uring_setup"), X86)) == eperm
    assert sb.simulate(prog, sb.SeccompData(nr("seccomp"), X86)) == allow
    assert sb.simulate(prog, sb.SeccompData(nr("landlock_create_ruleset"), X86)) == allow
    assert sb.simulate(prog, sb.SeccompData(nr("process_vm_readv"), X86)) == allow
    assert sb.simulate(prog, sb.SeccompData(nr("socket"), X86, 0, (1, 1, 0, 0, 0, 0))) == allow
    assert sb.simulate(prog, sb.SeccompData(nr("socket"), X86, 0, (40, 1, 0, 0, 0, 0))) == eperm  # AF_VSOCK
    with_ptrace = docker_filter(frozenset({"CAP_SYS_PTRACE"}))
    assert sb.simulate(with_ptrace, sb.SeccompData(nr("pidfd_getfd"), X86)) == allow


CORE = r"""
import json, os, socket, sys
W, O, OK, NO = sys.argv[1:5]
def t(f):
    try:
        f(); return "ok"
    except OSError as e:
        return type(e).__name__
R = {"write_inside": t(lambda: open(W + "/f", "w").write("x")),
     "write_outside": t(lambda: open(O + "/f", "w").write("x")),
     "tcp": t(lambda: socket.socket()),
     "unix_allowed": t(lambda: socket.socket(socket.AF_UNIX).connect(OK)),
     "unix_denied": t(lambda: socket.socket(socket.AF_UNIX).connect(NO))}
print(json.dumps(R))
"""


def _in_container(ws: str, out: str, ok: str, no: str, env: dict | None = None,
                  argv: list[str] | None = None) -> tuple[int, str, str]:
    code, output = run_under_docker_profile(
        argv or [LSANDBOX, "run", "--allow-unix-socket", ok, "--", PY, "-c", CORE, ws, out, ok, no],
        cwd=ws, env={**os.environ, **(env or {})})
    return code, output, ""


@pytest.mark.skipif(sys.platform != "linux", reason="Linux")
def test_core_cases_under_docker_default_profile():
    ws, out, socks = world_dir("lsb-dk-ws-"), world_dir("lsb-dk-out-"), world_dir("lsb-dk-s-")
    ok, no = UnixServer(os.path.join(socks, "ok.sock")), UnixServer(os.path.join(socks, "no.sock"))
    try:
        rc, output, _ = run_in_child(_in_container, ws, out, ok.path, no.path, timeout=60).unwrap()
        assert rc == 0, output
        got = json.loads([ln for ln in output.splitlines() if ln.startswith("{")][-1])
        assert got == {"write_inside": "ok", "write_outside": "PermissionError", "tcp": "PermissionError",
                       "unix_allowed": "ok", "unix_denied": "PermissionError"}, output
        assert ok.accepts == 1 and no.accepts == 0
    finally:
        ok.close()
        no.close()
        for d in (ws, out, socks):
            rmtree(d)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux")
def test_no_getfd_and_no_addfd_fails_closed():
    """Docker's profile (no pidfd_getfd) on a kernel without ADDFD: an allowed AF_UNIX connect
    is refused rather than performed unchecked, and doctor says the allowlist is not enforced."""
    ws, out, socks = world_dir("lsb-dk-ws-"), world_dir("lsb-dk-out-"), world_dir("lsb-dk-s-")
    ok, no = UnixServer(os.path.join(socks, "ok.sock")), UnixServer(os.path.join(socks, "no.sock"))
    clamp = {"LSANDBOX_SECCOMP_NO_ADDFD": "1"}
    try:
        rc, output, _ = run_in_child(_in_container, ws, out, ok.path, no.path, clamp, timeout=60).unwrap()
        if rc == 125 and "Landlock is not available" in output:
            pytest.skip("no Landlock and no namespaces: run refuses to start (tests/kernel/test_no_landlock.py)")
        got = json.loads([ln for ln in output.splitlines() if ln.startswith("{")][-1])
        assert got["unix_allowed"] == "PermissionError" and got["unix_denied"] == "PermissionError"
        assert ok.accepts == 0 and no.accepts == 0
        rc, output, _ = run_in_child(_in_container, ws, out, ok.path, no.path, clamp,
                                     [LSANDBOX, "doctor", "--json"], timeout=60).unwrap()
        doc = json.loads(output[output.index("{"):])
        rows = {r["field"]: r["state"] for r in doc["fields"]}
        assert doc["machine"]["pidfd_getfd"] is False
        assert rows["unix_sockets allowlist"] == "not enforced" and rc == 1
    finally:
        ok.close()
        no.close()
        for d in (ws, out, socks):
            rmtree(d)
