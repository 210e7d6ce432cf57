"""Landlock denials read back from the kernel's audit records (lsandbox.linux._audit).

Audit is a machine-wide switch that lsandbox never flips; these tests flip it (root only)
for their own duration with AUDIT_SET, and put back what they found. The kernel-log test also
sets kernel.printk_ratelimit_burst for its duration (the kernel log is rate-limited, shared
with the whole machine). The record parser is unit-tested in tests/unit/test_audit_records.py."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess

import pytest

import landlock
import lsandbox
from lsandbox.linux import _audit
from lsandbox.linux._features import features
from tests._sandbox import LSANDBOX, as_nobody_setup, cli, policy, rmtree, world_dir
from tests._util import run_in_child

pytestmark = pytest.mark.kernel
ABI = landlock.abi_version()
# Landlock writes audit records from ABI 7 (Linux 6.15); before, the run says why instead.
needs_records = pytest.mark.skipif(ABI < 7, reason=f"Landlock ABI {ABI} writes no audit records (ABI 7 does)")

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


def _still(enabled: bool) -> None:
    """Audit is machine-wide: if another process switched it meanwhile (another test run on
    this machine), the run proves nothing either way."""
    if _audit.audit_status()[0] is not enabled:
        pytest.skip("another process switched kernel audit during the test (it is machine-wide)")


@pytest.fixture
def audit_on(monkeypatch):
    # The probes write outside the roots. With namespaces the read-only mount view refuses
    # those writes (EROFS) before Landlock sees them, so no record exists: the record path is
    # tested without namespaces (tests/security/test_hardening_view.py covers the view).
    monkeypatch.setenv("LSANDBOX_NO_NAMESPACES", "1")
    features.cache_clear()
    was, _, why = _audit.audit_status()
    if was is None:
        pytest.skip(f"cannot query audit here: {why}")
    try:
        _set_audit(1)
    except OSError as e:
        pytest.skip(f"cannot enable audit here: {e}")
    yield
    _set_audit(int(was))
    features.cache_clear()


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


@needs_records
def test_cli_reports_filesystem_denials(audit_on, d, tmp_path):
    events = tmp_path / "events.jsonl"
    r = cli("run", "--log-denials", "--events", str(events), "-p", ":read-only", "--",
            "sh", "-c", f"echo x > {d}/f; echo y > {d}/g; true")
    _still(True)
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
    assert doctor["machine"]["audit_source"] == "the audit netlink read-log group"


@needs_records
def test_api_denials_include_filesystem(audit_on, d):
    res = lsandbox.run(["sh", "-c", f"echo x > {d}/f"], policy=policy(":read-only"), capture_output=True,
                       log_denials=True)
    _still(True)
    assert res.returncode != 0
    assert [(e["kind"], e["path"]) for e in res.denials] == [("filesystem", d)]
    assert res.fs_denials_unobservable == ""
    # the only note: what stays open without namespaces (these tests run without them)
    assert all(n.startswith("without namespaces these stay open") for n in res.denial_notes), res.denial_notes
    quiet = lsandbox.run(["sh", "-c", f"echo x > {d}/f"], policy=policy(":read-only"), capture_output=True)
    assert quiet.denials == []  # not asked for: no records requested, none read


@needs_records
def test_without_audit_the_summary_says_why(audit_off, d):
    r = cli("run", "--log-denials", "-p", ":read-only", "--", "sh", "-c", f"echo x > {d}/f")
    _still(False)
    assert "not reported here: kernel audit is disabled (enable it with `auditctl -e 1`)" in r.stderr
    doctor = json.loads(cli("doctor", "--json").stdout)
    assert doctor["machine"]["audit_readable"] is False
    assert "disabled" in doctor["machine"]["audit_why_not"]


def test_older_landlock_abi_says_why(audit_on, d):
    r = cli("run", "--log-denials", "-p", ":read-only", "--", "sh", "-c", f"echo x > {d}/f",
            env={"LANDLOCK_MAX_ABI": "6"})
    assert f"not reported here: Landlock ABI {min(6, ABI)} writes no audit records" in r.stderr, r.stderr


def _listener_joins(sock: socket.socket, pid: int) -> int:
    """Joins of the read-log group by ``pid`` among the records waiting on ``sock``."""
    n = 0
    while True:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            return n
        text = data[16:].split(b"\0", 1)[0].decode()
        n += struct.unpack_from("=H", data, 4)[0] == 1335 and f" pid={pid} " in text and "op=connect" in text


@needs_records
def test_one_read_log_join_per_run(audit_on, d):
    """Every join of the read-log group is an audit event of its own (and eats the kernel log's
    rate limit): a run joins once, and doctor never does."""
    tap = _audit._join_readlog()
    if tap is None:
        pytest.skip("cannot join the audit read-log group here")
    with tap:
        p = subprocess.Popen([LSANDBOX, "run", "--log-denials", "-p", ":read-only", "--", "sh", "-c",
                              f"echo x > {d}/f"], stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=30)
        _still(True)
        assert f"fs.make_reg {d}" in err, err
        assert _listener_joins(tap, p.pid) == 1
        doctor = subprocess.Popen([LSANDBOX, "doctor", "--json"], stdout=subprocess.PIPE)
        doctor.communicate(timeout=30)
        assert _listener_joins(tap, doctor.pid) == 0


@pytest.fixture
def printk_limit():
    """Sets kernel.printk_ratelimit (interval, s) and _burst, which audit's kernel-log printing
    obeys, for the test. (Raising the burst alone waits for the current interval to end.)"""
    paths = ["/proc/sys/kernel/printk_ratelimit", "/proc/sys/kernel/printk_ratelimit_burst"]
    was = []
    try:
        for path in paths:
            with open(path) as f:
                was.append(f.read().strip())
            with open(path, "w") as f:
                f.write(was[-1])
    except OSError as e:
        pytest.skip(f"cannot set {path}: {e.strerror}")

    def set_limit(interval: int | str, burst: int | str) -> None:
        for path, value in zip(paths, (interval, burst), strict=True):
            with open(path, "w") as f:
                f.write(str(value))

    yield set_limit
    set_limit(*was)


def _without_audit_read() -> None:
    import prctl

    prctl.capbset.audit_read = False
    prctl.cap_effective.audit_read = False
    prctl.cap_permitted.audit_read = False


@needs_records
def test_kernel_log_source(audit_on, printk_limit, d):
    """Without CAP_AUDIT_READ (but allowed to read /dev/kmsg) the records come from the kernel
    log: complete while printing keeps up; a plain statement when its rate limit drops them."""
    argv = [LSANDBOX, "run", "--log-denials", "-p", ":read-only", "--", "sh", "-c", f"echo x > {d}/f"]
    printk_limit(0, 10)  # no limit
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, preexec_fn=_without_audit_read)
    _still(True)
    summary = r.stderr.split("=== Sandbox denials ===")[1]
    assert f"(sh) fs.make_reg {d}  [landlock]" in summary, summary
    assert "may be missing" not in summary and "not reported here" not in summary
    printk_limit(5, 0)  # nothing printed: the denial happens, its records never reach the log
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, preexec_fn=_without_audit_read)
    _still(True)
    summary = r.stderr.split("=== Sandbox denials ===")[1]
    assert "fs.make_reg" not in summary and "(none observed)" in summary, summary
    assert "read from /dev/kmsg, which the kernel rate-limits" in summary


def _api_write_as_nobody(d: str) -> tuple[int, list[dict], str]:
    as_nobody_setup()
    res = lsandbox.run(["sh", "-c", f"echo x > {d}/f"], policy=policy(":read-only"), capture_output=True,
                       log_denials=True)
    return res.returncode, res.denials, res.fs_denials_unobservable


@needs_records
def test_unprivileged_user_is_told_why_and_logs_nothing(audit_on, d):
    """An unprivileged user cannot read the audit status or records: the result says so, and
    the command's denials are not logged for nobody to read (no LOG_NEW_EXEC_ON)."""
    tap = _audit._join_readlog()
    if tap is None:
        pytest.skip("cannot join the audit read-log group here")
    with tap:
        code, denials, why = run_in_child(_api_write_as_nobody, d, as_nobody=True, timeout=60).unwrap()
        records = []
        while True:
            try:
                records.append(tap.recv(1 << 16))
            except BlockingIOError:
                break
    _still(True)
    assert code != 0 and not os.path.exists(f"{d}/f")
    assert denials == []
    assert why.startswith("the audit status is not readable") and "CAP_AUDIT_CONTROL" in why, why
    # A logged denial would come with its domain's "allocated" record (uid 65534); other
    # tests' domains may still be ending meanwhile (their "deallocated" records).
    assert not [r for r in records if b"status=allocated" in r and b" uid=65534 " in r]
