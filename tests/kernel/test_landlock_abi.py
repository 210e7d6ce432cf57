"""The landlock library against the real kernel, at every ABI from 1 to the kernel's via the
clamp, as root and as nobody. One forked child per ABI runs all probes and reports."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

import landlock as ll
from tests._util import run_in_child

KERNEL_ABI = ll.kernel_abi()
pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(KERNEL_ABI == 0, reason="Landlock is not enabled in this kernel")]


@pytest.fixture
def world(request):
    """Dirs under /tmp that nobody can use too: R (read-only), W1/W2 (writable), R/deny."""
    base = tempfile.mkdtemp(prefix="lsb-ll-")
    os.chmod(base, 0o777)
    paths = {}
    for name in ("R", "W1", "W2", "R/deny", "R/sib"):
        p = os.path.join(base, name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, 0o777)
        paths[name] = p
    for f in ("R/file", "R/deny/secret", "R/sib/ok", "W1/moveme", "W1/linkme"):
        with open(os.path.join(base, f), "w") as fh:
            fh.write("data")
        os.chmod(os.path.join(base, f), 0o666)
    yield base, paths
    shutil.rmtree(base, ignore_errors=True)


def _err(fn) -> str:
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def _probe(abi: int, base: str, ports: tuple[int, int], abstract: bytes, victim: int) -> dict:
    R, W1, W2 = (os.path.join(base, n) for n in ("R", "W1", "W2"))
    read = ll.AccessFs.from_read(abi)
    write = read | ll.AccessFs.from_write(abi)
    rules = {"/": read, W1: write, W2: write, os.path.join(R, "deny"): ll.AccessFs(0)}
    rs = ll.Ruleset(handled_fs=ll.AccessFs.from_all(abi), handled_net=ll.AccessNet.from_all(abi),
                    scoped=ll.Scope.from_all(abi), max_abi=abi)
    for path, acc in ll.plan_path_rules(rules):
        rs.add_path(path, acc)
    rs.add_net_port(ports[0], ll.AccessNet.CONNECT_TCP)
    status = rs.restrict_self()
    out = {"status": status.ruleset.value, "abi": status.abi}

    def write_to(path):
        with open(path, "w") as f:
            f.write("x")

    out["write_outside"] = _err(lambda: write_to(os.path.join(R, "new")))
    out["write_inside"] = _err(lambda: write_to(os.path.join(W1, "new")))
    out["truncate_ro"] = _err(lambda: os.truncate(os.path.join(R, "file"), 0))
    out["rename_w1_w2"] = _err(lambda: os.rename(os.path.join(W1, "moveme"), os.path.join(W2, "moved")))
    out["link_w_to_r"] = _err(lambda: os.link(os.path.join(W1, "linkme"), os.path.join(R, "linked")))
    out["read_denied"] = _err(lambda: open(os.path.join(R, "deny", "secret")).read())
    out["read_sibling"] = _err(lambda: open(os.path.join(R, "sib", "ok")).read())
    out["read_etc"] = _err(lambda: open("/etc/hostname").read())

    def tcp(port):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        finally:
            s.close()

    out["tcp_allowed_port"] = _err(lambda: tcp(ports[0]))
    out["tcp_other_port"] = _err(lambda: tcp(ports[1]))

    def udp(op):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # a first datagram autobinds a local port: refused with BIND_UDP handled, too
            s.bind(("127.0.0.1", 0)) if op == "bind" else s.sendto(b"x", ("127.0.0.1", ports[0]))
        finally:
            s.close()

    out["udp_bind"] = _err(lambda: udp("bind"))
    out["udp_send"] = _err(lambda: udp("send"))

    def abstract_connect():
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(abstract)
        finally:
            s.close()

    out["abstract_outside"] = _err(abstract_connect)
    out["signal_outside"] = _err(lambda: os.kill(victim, 0))
    return out


def _expected(abi: int) -> dict:
    return {
        "status": "fully_enforced", "abi": abi,
        "write_outside": "EACCES", "write_inside": "ok",
        "truncate_ro": "EACCES" if abi >= 3 else "ok",  # truncate(2) is only controlled from ABI 3
        "rename_w1_w2": "EXDEV" if abi == 1 else "ok",  # ABI 1: reparenting always denied
        "link_w_to_r": "EACCES",  # no MAKE_REG in R, whatever REFER says
        "read_denied": "EACCES", "read_sibling": "ok", "read_etc": "ok",
        "tcp_allowed_port": "ok", "tcp_other_port": "EACCES" if abi >= 4 else "ok",
        "udp_bind": "EACCES" if abi >= 10 else "ok", "udp_send": "EACCES" if abi >= 10 else "ok",
        "abstract_outside": "EPERM" if abi >= 6 else "ok",
        "signal_outside": "EPERM" if abi >= 6 else "ok",
    }


@pytest.fixture
def servers():
    tcp = [socket.socket() for _ in range(2)]
    for s in tcp:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
    name = f"\0lsb-ll-test-{os.getpid()}".encode()
    ab = socket.socket(socket.AF_UNIX)
    ab.bind(name)
    ab.listen(16)
    victim = subprocess.Popen(["sleep", "60"])
    yield (tcp[0].getsockname()[1], tcp[1].getsockname()[1]), name, victim.pid
    victim.kill()
    victim.wait()
    for s in [*tcp, ab]:
        s.close()


@pytest.mark.parametrize("abi", range(1, KERNEL_ABI + 1))
def test_each_abi(world, servers, abi):
    base, _ = world
    ports, name, victim = servers
    got = run_in_child(_probe, abi, base, ports, name, victim).unwrap()
    assert got == _expected(abi)


@pytest.mark.parametrize("abi", [1, KERNEL_ABI])
def test_each_abi_as_nobody(world, servers, abi):
    base, _ = world
    ports, name, victim = servers
    got = run_in_child(_probe, abi, base, ports, name, victim, as_nobody=True).unwrap()
    want = _expected(abi)
    want["signal_outside"] = "EPERM"  # nobody may not signal root's process anyway
    assert got == want


def test_probes_succeed_without_landlock(world, servers):
    """The attacks are real: unsandboxed, every denied probe above succeeds."""
    base, _ = world
    ports, name, victim = servers
    R = os.path.join(base, "R")

    def free():
        out = {}
        out["write_outside"] = _err(lambda: open(os.path.join(R, "new"), "w").close())
        out["read_denied"] = _err(lambda: open(os.path.join(R, "deny", "secret")).read())
        out["truncate_ro"] = _err(lambda: os.truncate(os.path.join(R, "file"), 0))
        return out

    assert run_in_child(free).unwrap() == {"write_outside": "ok", "read_denied": "ok", "truncate_ro": "ok"}


def test_hard_requirement_names_abi_9():
    # Clamped to 8 so that RESOLVE_UNIX is the one right missing, on any kernel with Landlock.
    with pytest.raises(ll.LandlockUnsupportedError,
                       match=rf"RESOLVE_UNIX needs ABI 9; this kernel provides ABI {min(8, ll.abi_version())}"):
        ll.Ruleset(handled_fs=ll.AccessFs.EXECUTE | ll.AccessFs.RESOLVE_UNIX,
                   compat=ll.CompatLevel.HARD_REQUIREMENT, max_abi=8)
    with pytest.raises(ll.LandlockUnsupportedError, match="CONNECT_TCP needs ABI 4"):
        ll.Ruleset(handled_net=ll.AccessNet.CONNECT_TCP, compat=ll.CompatLevel.HARD_REQUIREMENT, max_abi=3)


def test_best_effort_reports_partial():
    def child():
        rs = ll.Ruleset(handled_fs=ll.AccessFs.from_all(9), scoped=ll.Scope.from_all(9), max_abi=5)
        rs.add_path("/", ll.AccessFs.from_all(9))
        st = rs.restrict_self()
        return st.ruleset.value, int(st.dropped_fs), int(st.dropped_scopes)

    state, dropped_fs, dropped_scopes = run_in_child(child).unwrap()
    have = min(5, ll.abi_version())  # on an older kernel, more is dropped: exactly what it lacks
    assert state == "partially_enforced"
    lacking = ll.AccessFs.from_all(9) & ~ll.AccessFs.from_all(have)
    if have == 1:  # ABI 1 always denies reparenting: REFER is not weakened, so not reported
        lacking &= ~ll.AccessFs.REFER
    assert dropped_fs == int(lacking)
    assert dropped_scopes == int(ll.Scope.from_all(6) & ~ll.Scope.from_all(have))


@pytest.mark.skipif(ll.abi_version() < 1, reason="needs Landlock")
def test_a_rule_by_descriptor_grants_the_inode_opened_before_a_rename():
    """``add_path_fd``: the rule follows the inode pinned earlier, not what the path names
    when the ruleset is built (the connector's rules are opened before the sandbox runs)."""
    base = tempfile.mkdtemp(prefix="lsb-llfd-")
    try:
        os.mkdir(f"{base}/pinned")
        with open(f"{base}/pinned/f", "w") as f:
            f.write("pinned")
        os.mkdir(f"{base}/other")
        with open(f"{base}/other/f", "w") as f:
            f.write("other")
        fd = os.open(f"{base}/pinned", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        os.rename(f"{base}/pinned", f"{base}/moved")  # then the old name leads elsewhere
        os.symlink(f"{base}/other", f"{base}/pinned")

        def probe() -> list[str]:
            ll.Ruleset(handled_fs=ll.AccessFs.READ_FILE).add_path_fd(fd, ll.AccessFs.READ_FILE).restrict_self()
            out = []
            for p in (f"{base}/moved/f", f"{base}/pinned/f"):
                try:
                    with open(p) as f:
                        out.append(f.read())
                except PermissionError:
                    out.append("EACCES")
            return out

        assert run_in_child(probe).unwrap() == ["pinned", "EACCES"]
        os.close(fd)
    finally:
        shutil.rmtree(base)
