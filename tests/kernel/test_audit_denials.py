"""Landlock denials read back from the kernel's audit records (lsandbox.linux._audit).

Audit is a machine-wide switch that lsandbox never flips; these tests flip it (root only)
for their own duration with AUDIT_SET, and put back what they found."""

from __future__ import annotations

import json
import os
import socket
import struct

import pytest

import lsandbox
from lsandbox.linux import _audit
from tests._sandbox import cli, policy, rmtree, world_dir

pytestmark = pytest.mark.kernel

# Captured on this machine (kmsg, the read-log multicast group, and auditd's log format).
KMSG = [
    'audit: type=1423 audit(1795421674.315:3919): domain=101f57456 blockers=fs.make_reg path="/tmp" dev="vda" ino=260072',
    'audit: type=1424 audit(1795421674.315:3919): domain=101f57456 status=allocated mode=enforcing pid=21313 uid=0 '
    'exe="/usr/bin/python3.11" comm="lsandbox"',
    'audit: type=1300 audit(1795421674.315:3919): arch=c000003e syscall=257 success=no exit=-13 pid=21320 comm="sh" '
    'exe="/usr/bin/dash"',
    'audit: type=1423 audit(1795421674.316:3920): domain=101f57456 blockers=fs.write_file path=2F746D702F6120622F63 '
    'dev="vda" ino=1',
    'audit: type=1423 audit(1795421674.317:3921): domain=999 blockers=fs.make_reg path="/elsewhere" dev="vda" ino=2',
    "audit: type=1424 audit(1795421674.371:3922): domain=101f57456 status=deallocated denials=2",
]
AUDITD = [
    'type=LANDLOCK_ACCESS msg=audit(1729738800.268:30): domain=195ba459b blockers=net.connect_tcp daddr=127.0.0.1 dest=80',
    'type=LANDLOCK_DOMAIN msg=audit(1729738800.268:30): domain=195ba459b status=allocated mode=enforcing pid=300 uid=0 '
    'exe="/root/sandboxer" comm="sandboxer"',
]


def test_records_are_parsed_and_matched_to_our_domain():
    found, ended = _audit.denials(KMSG, {21313})
    assert ended
    assert found == [
        {"kind": "filesystem", "op": "fs.make_reg", "path": "/tmp", "pid": 21320, "process": "sh",
         "verdict": "deny", "rule": "landlock", "source": "audit"},
        {"kind": "filesystem", "op": "fs.write_file", "path": "/tmp/a b/c", "pid": None, "process": "?",
         "verdict": "deny", "rule": "landlock", "source": "audit"},
    ]
    assert _audit.denials(KMSG, {1}) == ([], False)  # another sandbox's domain is not ours
    net, _ = _audit.denials(AUDITD, {300})
    assert net[0]["kind"] == "network" and net[0]["path"] == "daddr=127.0.0.1 dest=80"


def _set_audit(enabled: int) -> None:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _audit.NETLINK_AUDIT)
    try:
        s.bind((0, 0))
        status = struct.pack("=10I", 1, enabled, 0, 0, 0, 0, 0, 0, 0, 0)  # mask = ENABLED
        s.send(struct.pack("=IHHII", 16 + len(status), 1001, 0x1 | 0x4, 1, 0) + status)
        data = s.recv(8192)
        err = -struct.unpack_from("=i", data, 16)[0]
        if err:
            raise OSError(err, "AUDIT_SET")
    finally:
        s.close()


@pytest.fixture
def audit_on():
    was, _, why = _audit.audit_status()
    if was is None:
        pytest.skip(f"cannot query audit here: {why}")
    try:
        _set_audit(1)
    except OSError as e:
        pytest.skip(f"cannot enable audit here: {e}")
    yield
    _set_audit(int(was))


@pytest.fixture
def audit_off():
    was, _, why = _audit.audit_status()
    if was is None:
        pytest.skip(f"cannot query audit here: {why}")
    _set_audit(0)
    yield
    _set_audit(int(was))


@pytest.fixture
def d():
    path = world_dir()
    yield path
    rmtree(path)


def test_cli_reports_filesystem_denials(audit_on, d, tmp_path):
    events = tmp_path / "events.jsonl"
    r = cli("run", "--log-denials", "--events", str(events), "-p", ":read-only", "--",
            "sh", "-c", f"echo x > {d}/f; echo y > {d}/g; true")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(f"{d}/f")
    summary = r.stderr.split("=== Sandbox denials ===")[1]
    assert f"(sh) fs.make_reg {d}  [landlock]" in summary, summary
    assert "not reported here" not in summary
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    fs = [e for e in lines if e["kind"] == "filesystem"]
    assert len(fs) == 2 and {e["path"] for e in fs} == {d} and fs[0]["op"] == "fs.make_reg"
    assert all(e["source"] == "audit" and e["verdict"] == "deny" for e in fs)
    doctor = json.loads(cli("doctor", "--json").stdout)
    assert doctor["machine"]["audit_readable"] is True


def test_api_denials_include_filesystem(audit_on, d):
    res = lsandbox.run(["sh", "-c", f"echo x > {d}/f"], policy=policy(":read-only"), capture_output=True,
                       log_denials=True)
    assert res.returncode != 0
    assert [(e["kind"], e["path"]) for e in res.denials] == [("filesystem", d)]
    quiet = lsandbox.run(["sh", "-c", f"echo x > {d}/f"], policy=policy(":read-only"), capture_output=True)
    assert quiet.denials == []  # not asked for: no records requested, none read


def test_without_audit_the_summary_says_why(audit_off, d):
    r = cli("run", "--log-denials", "-p", ":read-only", "--", "sh", "-c", f"echo x > {d}/f")
    assert "not reported here: kernel audit is disabled (enable it with `auditctl -e 1`)" in r.stderr
    doctor = json.loads(cli("doctor", "--json").stdout)
    assert doctor["machine"]["audit_readable"] is False
    assert "disabled" in doctor["machine"]["audit_why_not"]


def test_older_landlock_abi_says_why(audit_on, d):
    r = cli("run", "--log-denials", "-p", ":read-only", "--", "sh", "-c", f"echo x > {d}/f",
            env={"LANDLOCK_MAX_ABI": "6"})
    assert "not reported here: Landlock ABI 6 writes no audit records" in r.stderr, r.stderr
