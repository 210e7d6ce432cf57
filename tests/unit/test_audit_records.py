"""The Landlock audit record parser (lsandbox.linux._audit) on records captured on this
machine (Linux 6.18, Landlock ABI 7) by `lsandbox run --log-denials -p :read-only` writing
outside its roots: from the audit read-log multicast group, from /dev/kmsg (where a path
holding a space is hex), and auditd's log format from the kernel documentation."""

from __future__ import annotations

from lsandbox import Denial
from lsandbox.linux import _audit

# The read-log group gives the record type in the netlink header; the collector prefixes it.
MULTICAST = [
    'type=1335 audit(1795424155.175:6349): pid=21561 uid=0 auid=4294967295 tty=(none) ses=4294967295 '
    'comm="lsandbox" exe="/root/.pyenv/versions/3.11.7/bin/python3.11" nl-mcgrp=1 op=connect res=1',
    'type=1423 audit(1795424155.183:6350): domain=101f5bfdf blockers=fs.make_reg path="/tmp/audit-exp/w" '
    'dev="vda" ino=2262046',
    'type=1424 audit(1795424155.183:6350): domain=101f5bfdf status=allocated mode=enforcing pid=21564 uid=0 '
    'exe="/root/.pyenv/versions/3.11.7/bin/python3.11" comm="lsandbox"',
    'type=1300 audit(1795424155.183:6350): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c '
    'a1=5634929e7ae8 a2=241 a3=1b6 items=0 ppid=21564 pid=21566 auid=4294967295 uid=0 gid=0 euid=0 suid=0 '
    'fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/usr/bin/dash" key=(null)',
    'type=1327 audit(1795424155.183:6350): proctitle=7368002D63006563686F2078203E202F746D702F61756469742D6578702F'
    '772F663B20636174202F6574632F736861646F77203E2F6465762F6E756C6C3B2074727565',
    "type=1320 audit(1795424155.183:6350): ",
    "type=1424 audit(1795424155.227:6351): domain=101f5bfdf status=deallocated denials=1",
]
# /dev/kmsg after "prio,seq,usec,flags;" is cut off.
KMSG = [
    'audit: type=1423 audit(1795424214.547:6356): domain=101f5c031 blockers=fs.make_reg '
    'path=2F746D702F61756469742D6578702F612062 dev="vda" ino=2261395',
    'audit: type=1424 audit(1795424214.547:6356): domain=101f5c031 status=allocated mode=enforcing pid=22683 '
    'uid=0 exe="/root/.pyenv/versions/3.11.7/bin/python3.11" comm="lsandbox"',
    'audit: type=1300 audit(1795424214.547:6356): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c '
    'a1=555b83740930 a2=241 a3=1b6 items=0 ppid=22683 pid=22685 auid=4294967295 uid=0 gid=0 euid=0 suid=0 '
    'fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/usr/bin/dash" key=(null)',
    "audit: type=1327 audit(1795424214.547:6356): proctitle=7368002D63006563686F2078203E20272F746D702F61756469"
    "742D6578702F6120622F6627",
]
# auditd's log (Documentation/admin-guide/LSM/landlock.rst, "Event samples").
AUDITD = [
    'type=LANDLOCK_ACCESS msg=audit(1729738800.268:30): domain=1a6fdc66f blockers=scope.signal opid=1 '
    'ocomm="systemd"',
    'type=LANDLOCK_DOMAIN msg=audit(1729738800.268:30): domain=1a6fdc66f status=allocated mode=enforcing '
    'pid=286 uid=0 exe="/root/sandboxer" comm="sandboxer"',
    'type=SYSCALL msg=audit(1729738800.268:30): arch=c000003e syscall=62 success=no exit=-1 ppid=272 pid=286 '
    'auid=0 uid=0 gid=0 comm="kill"',
    "type=LANDLOCK_DOMAIN msg=audit(1729738800.324:31): domain=1a6fdc66f status=deallocated denials=1",
]


def test_multicast_records_of_our_domain():
    found = _audit.denials(MULTICAST, {21564})
    assert found.events == [
        Denial("filesystem", "fs.make_reg", path="/tmp/audit-exp/w", pid=21566, process="sh",
               rule="landlock", detail=(("source", "audit"),))]
    assert found.events[0].to_dict() == {
        "kind": "filesystem", "op": "fs.make_reg", "path": "/tmp/audit-exp/w", "pid": 21566, "process": "sh",
        "verdict": "deny", "rule": "landlock", "source": "audit"}
    assert found.complete and found.missing == 0 and found.ended == {"101f5bfdf": 1}
    assert _audit.notes(found, "multicast", False) == []


def test_another_sandbox_is_not_ours():
    found = _audit.denials(MULTICAST, {1, 21566})  # 21566 was denied but did not create the domain
    assert found.events == [] and not found.complete
    assert _audit.notes(found, "multicast", False) == []


def test_kmsg_hex_path_and_missing_deallocation():
    found = _audit.denials(KMSG, {22683})
    assert [(e["path"], e["pid"], e["process"]) for e in found.events] == [("/tmp/audit-exp/a b", 22685, "sh")]
    assert not found.complete  # the deallocated record was lost to the rate limit that time
    (note,) = _audit.notes(found, _audit.KMSG, False)
    assert "rate-limits" in note and "may be missing" in note


def test_counted_but_not_logged_denials_are_stated():
    lines = [*MULTICAST[:-1], "type=1424 audit(1795424155.227:6351): domain=101f5bfdf status=deallocated denials=3"]
    found = _audit.denials(lines, {21564})
    assert found.missing == 2
    (note,) = _audit.notes(found, "multicast", False)
    assert note.startswith("the kernel counted 2 more Landlock denial(s) than it logged")
    (kmsg_note,) = _audit.notes(found, _audit.KMSG, True)
    assert "rate limit" in kmsg_note


def test_auditd_format_and_non_filesystem_blockers():
    found = _audit.denials(AUDITD, {286})
    assert found.complete
    assert [e.to_dict() for e in found.events] == [
        {"kind": "scope", "op": "scope.signal", "path": "opid=1 ocomm=systemd", "pid": 286, "process": "kill",
         "verdict": "deny", "rule": "landlock", "source": "audit"}]


def test_untrusted_fields_hex_decode_only_where_the_kernel_encodes():
    fields = _audit._fields('path=2F612062 comm=6162 dev="vda" ino=12 blockers=fs.refer')
    assert fields == {"path": "/a b", "comm": "ab", "dev": "vda", "ino": "12", "blockers": "fs.refer"}
