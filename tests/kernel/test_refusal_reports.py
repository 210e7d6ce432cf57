"""Refusals the sandbox makes are reported when denials are asked for: ``socket(AF_INET)``
while the network is off and AF_UNIX datagram sockets while no path is allowed (refused by
seccomp filter A, reported through filter B and the broker), in ``--log-denials``,
``--events`` and the API's ``.denials``; the call still fails exactly as before. Known
harmless probes (nscd) are answered ENOENT and kept out. Unobservable classes are named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

import lsandbox
import seccomp_bpf as sb
from lsandbox.linux._filter_a import build_filter_a
from lsandbox.linux._plan import build_plan, filter_a_bytes, truncate_guard
from lsandbox.linux._refusals import build_filter_a_reporting, notify_rules
from lsandbox.linux._unix_filter import build_notify_filter
from tests._sandbox import LSANDBOX, PY, policy
from tests._util import run_in_child

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

PROBE = r"""
import errno, socket
out = []
for fam, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_DGRAM),
                  (socket.AF_UNIX, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_STREAM)):
    try:
        socket.socket(fam, kind).close(); out.append("ok")
    except OSError as e:
        out.append(errno.errorcode[e.errno])
try:
    socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM); out.append("ok")
except OSError as e:
    out.append(errno.errorcode[e.errno])
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("/var/run/nscd/socket"); out.append("ok")
except OSError as e:
    out.append(errno.errorcode[e.errno])
print(" ".join(out))
"""
REFUSED = "EACCES EACCES EACCES ok EACCES ENOENT"


def _refusals(denials):
    return sorted((e["op"], e["address"]) for e in denials if e.get("layer") == "seccomp")


EXPECTED = [("socket", "AF_INET SOCK_STREAM"), ("socket", "AF_INET6 SOCK_DGRAM"),
            ("socket", "AF_UNIX SOCK_DGRAM"), ("socketpair", "AF_UNIX SOCK_DGRAM")]


@pytest.mark.parametrize("env", [{}, {"LSANDBOX_NO_NAMESPACES": "1"}, {"LANDLOCK_MAX_ABI": "1"}],
                         ids=["ns", "no-ns", "abi1"])
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_cli_reports_socket_refusals(nobody, env):
    tmp = tempfile.mkdtemp(dir="/var/tmp")
    os.chmod(tmp, 0o777)
    events = os.path.join(tmp, "ev.jsonl")
    try:
        r = subprocess.run([*(AS_NOBODY if nobody else []), LSANDBOX, "run", "--log-denials",
                            "--events", events, "--", PY, "-c", PROBE], capture_output=True,
                           text=True, cwd="/", timeout=60, env={**os.environ, **env, "TMPDIR": tmp})
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == REFUSED.split()  # refused exactly as without reporting
        assert "socket AF_INET SOCK_STREAM  [network.enabled = false" in r.stderr
        assert "socketpair AF_UNIX SOCK_DGRAM  [no AF_UNIX socket path is allowed" in r.stderr
        assert "nscd" not in r.stderr and "(none observed)" not in r.stderr
        with open(events) as f:
            evs = [json.loads(line) for line in f]
        assert _refusals(evs) == EXPECTED
        assert all(e["process"] == "python3" for e in evs if e.get("layer") == "seccomp")
    finally:
        shutil.rmtree(tmp)


def _api_probe(log: bool):
    res = lsandbox.run([PY, "-c", PROBE], policy=policy(cwd="/"), capture_output=True, text=True,
                       log_denials=log)
    return res.stdout.split(), _refusals(res.denials), [e for e in res.denials if "nscd" in str(e)]


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_api_reports_socket_refusals_only_when_asked(nobody):
    out, refusals, nscd = run_in_child(_api_probe, True, as_nobody=nobody).unwrap()
    assert out == REFUSED.split() and refusals == EXPECTED and nscd == []
    out, refusals, nscd = run_in_child(_api_probe, False, as_nobody=nobody).unwrap()
    assert out == REFUSED.split() and refusals == [] and nscd == []


def test_explicit_rule_on_a_probe_is_applied_and_reported():
    pol = policy(cwd="/", allow_unix_sockets=[])
    pol = pol.replace(network=pol.network.replace(unix_sockets=(
        lsandbox.UnixSocketRule("/var/run/nscd", lsandbox.SocketAccess.NONE),)))
    res = lsandbox.run([PY, "-c", PROBE], policy=pol, capture_output=True, text=True, log_denials=True)
    assert res.stdout.split()[-1] == "EACCES"
    assert [e["rule"] for e in res.denials if e.get("path") == "/var/run/nscd/socket"]


# ------------------------------------------------- the filter variants, composed as the kernel does

_PRECEDENCE = [sb.KILL_PROCESS.raw, sb.KILL_THREAD.raw, sb.TRAP.raw, 0x00050000, sb.USER_NOTIF.raw,
               0x7FF00000, sb.LOG.raw, sb.ALLOW.raw]


def _stacked(*verdicts: int) -> int:
    """The kernel's choice among stacked filters: the most restrictive action wins (for
    equal actions, the first filter's data)."""
    return min(verdicts, key=lambda v: _PRECEDENCE.index(v & 0xFFFF0000))


@pytest.mark.parametrize("network", [False, True])
@pytest.mark.parametrize("dgram", [False, True])
def test_reporting_variant_never_allows_what_the_plain_filters_refuse(network, dgram):
    arch = sb.native_arch()
    audit_arch = dict(sb.ARCHES)[arch]
    plain = (build_filter_a(arch, network=network, unix_dgram=dgram),
             build_notify_filter(arch, datagrams=dgram))
    report = (build_filter_a_reporting(arch, network=network, unix_dgram=dgram),
              build_notify_filter(arch, datagrams=dgram, extra=notify_rules(network=network, unix_dgram=dgram)))
    domains = [0, 1, 2, 10, 16, 17, 0x1_00000002, 0xFFFF_FFFF_0000_000A, 0xFFFFFFFF]
    types = [1, 2, 3, 5, 2 | 0x80000, 1 | 0x800, 0x1_00000002, 0xF]
    for name in ("socket", "socketpair"):
        nr = sb.syscall_number(name, arch)
        for d in domains:
            for t in types:
                data = sb.SeccompData(nr, audit_arch, 0, (d, t, 0, 0, 0, 0))
                before = _stacked(*(sb.simulate(p, data) for p in plain))
                after = _stacked(*(sb.simulate(p, data) for p in report))
                if before == sb.ALLOW.raw:
                    assert after == sb.ALLOW.raw, (name, hex(d), hex(t))
                elif before == 0x00050000 | 13:  # EACCES: now reported, or still refused
                    assert after in (sb.USER_NOTIF.raw, before), (name, hex(d), hex(t), hex(after))
                else:
                    assert after == before, (name, hex(d), hex(t), hex(before), hex(after))


def test_plain_filters_when_not_asked():
    """Reporting costs nothing unless asked for: the plan's filters are the plain ones."""
    from lsandbox.linux._features import features

    feats = features()
    pol = policy(cwd="/")
    plan = build_plan(pol, "/tmp/x", feats, filter_a=False)
    arch = sb.native_arch()
    assert not plan.report_refusals
    assert plan.filter_b == build_notify_filter(arch, datagrams=plan.datagrams).to_bytes()
    # Before Landlock ABI 3 (Linux 6.2) filter A also refuses truncation: part of the plain filter
    plain_a = build_filter_a(arch, network=False, unix_dgram=plan.datagrams, truncate_guard=truncate_guard(plan.abi),
                             pidns=plan.namespaces)
    assert filter_a_bytes(plan) == plain_a.to_bytes()
    asked = build_plan(pol, "/tmp/x", feats, filter_a=False, report_refusals=True)
    assert filter_a_bytes(asked) != filter_a_bytes(plan)
    assert asked.filter_b != plan.filter_b


def test_unobservable_carve_outs_are_named(tmp_path):
    from lsandbox.linux._features import features

    if not features().namespaces:
        pytest.skip("without namespaces carve-outs are Landlock rules (EACCES, audited)")
    os.mkdir(tmp_path / ".git")
    res = lsandbox.run(["sh", "-c", "touch .git/x"], policy=policy(cwd=str(tmp_path)),
                       cwd=str(tmp_path), capture_output=True, text=True, log_denials=True)
    assert res.returncode != 0 and "Read-only" in res.stderr
    assert any("EROFS" in n and str(tmp_path / ".git") in n for n in res.denial_notes)
    assert any(".git" in h for h in res.hints)


def _node_lookup() -> str:
    return ("require('dns').lookup('registry.npmjs.org', (e) => { console.log(e ? e.code : 'ok'); "
            "process.exit(e ? 1 : 0); });")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_name_lookup_without_network_reports_the_refusal(tmp_path):
    r = subprocess.run([LSANDBOX, "run", "--log-denials", "--", "node", "-e", _node_lookup()],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert r.returncode == 1 and r.stdout.strip() in ("EAI_AGAIN", "ENOTFOUND"), (r.stdout, r.stderr)
    assert "socket AF_INET" in r.stderr and "[network.enabled = false" in r.stderr
    assert "lsandbox: hint: the network is off" in r.stderr


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_install_without_network_reports_the_refusal(tmp_path):
    (tmp_path / "package.json").write_text('{"name": "t", "version": "1.0.0"}')
    r = subprocess.run([LSANDBOX, "run", "--log-denials", "-w", str(tmp_path), "--", "npm", "install",
                        "--no-audit", "--no-fund", "--fetch-retries=0", "--fetch-timeout=5000",
                        "--cache", str(tmp_path / "cache"), "left-pad"],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert r.returncode != 0
    assert "(npm" in r.stderr and "socket AF_INET" in r.stderr, r.stderr[-2000:]
