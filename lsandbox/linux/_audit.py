"""Filesystem (and other Landlock) denials, read back from the kernel's audit records.

Landlock ABI 7 writes audit records of its denials (kernel docs,
``Documentation/admin-guide/LSM/landlock.rst``). Seen on this machine (Linux 6.18)::

    type=1423 audit(1795424155.183:6350): domain=101f5bfdf blockers=fs.make_reg path="/tmp/w" dev="vda" ino=2262046
    type=1424 audit(1795424155.183:6350): domain=101f5bfdf status=allocated mode=enforcing pid=21564 uid=0 exe="..." comm="lsandbox"
    type=1300 audit(1795424155.183:6350): arch=c000003e syscall=257 success=no exit=-13 ... ppid=21564 pid=21566 ... comm="sh" exe="/usr/bin/dash" ...
    type=1424 audit(1795424155.227:6351): domain=101f5bfdf status=deallocated denials=1

``LANDLOCK_ACCESS`` (1423) is one denial: the domain that blocked it, the missing rights
(``blockers``), the object (``path`` is hex when it holds a space or a quote). The first logged
denial of a domain carries ``LANDLOCK_DOMAIN`` (1424) ``status=allocated`` with the pid that
called ``landlock_restrict_self``; the SYSCALL record (1300) of the same event (serial) names
the process that was denied. When the domain ends, ``status=deallocated denials=N`` counts
*every* denial, logged or not: that is how lsandbox knows when records were lost.

Three things must hold for lsandbox to see them, and :func:`unobservable` names the first
that does not:

1. Landlock ABI >= 7, and the child asks for records after ``execve``
   (``LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON``; by default only the process that called
   ``landlock_restrict_self`` is logged, i.e. never the command). The launcher sets it only
   when denials were asked for (``--log-denials``, ``--events``, ``log_denials=True``), so a
   sandbox nobody watches does not fill the system log.
2. Audit is enabled (``auditctl -e 1``, or ``audit=1`` on the kernel command line). It is a
   machine-wide switch: lsandbox never flips it, never talks to auditd, and never takes its
   place (the read-log group below is a read-only tap); ``doctor`` says how to enable it.
3. The records can be read. Best: the audit netlink *read-log multicast group*
   (``AUDIT_NLGRP_READLOG``, needs CAP_AUDIT_READ, e.g. root): every record, live, whether or
   not auditd runs. The kernel logs each join and leave of that group as an event of its own
   (type 1335), so lsandbox joins once per run and decides by its capability set, never by a
   trial join. Otherwise, without an audit daemon the kernel prints the records to the kernel
   log, read from ``/dev/kmsg`` (CAP_SYSLOG, or ``kernel.dmesg_restrict = 0``), but that
   printing is rate-limited (``kernel.printk_ratelimit``/``_burst``, by default 10 lines per 5 s,
   some four lines per denial, shared with every other kernel message), so the summary says
   denials may be missing unless the domain's ``deallocated`` count proves none were. With
   auditd the records go to auditd, whose log (``/var/log/audit/audit.log``) must be readable.

Matching: the parent knows the pid that called ``landlock_restrict_self`` (the child, or the
PID-1 init, as the supervisor's PID namespace sees it; audit needs the
initial one, see :func:`audit_status`); the ``allocated`` record carrying that pid names the
sandbox's domain, and only ``LANDLOCK_ACCESS`` records of that domain are reported (other
sandboxes on the machine, and domains the workload nests inside ours, are not ours). The
kernel queues the records inside the denied syscall and a kernel thread (kauditd) hands them
out, so after the sandbox ended collection watches audit's queue (AUDIT_GET ``backlog``) run
empty instead of waiting a fixed time; ``lost`` growing meanwhile means
the backlog overflowed. From the kernel log it also waits for the domain's ``deallocated``
record (at most ``SETTLE_S``: it comes after an RCU grace period), whose count
proves nothing was rate-limited away; from auditd's log, which has no queue to watch, it
waits for ``QUIET_S`` of silence.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
import time

from .._backend import Denial

AUDIT_GET = 1000
NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
CAP_AUDIT_READ = 37
RCVBUF = 4 << 20
LANDLOCK_ACCESS, LANDLOCK_DOMAIN, SYSCALL = "1423", "1424", "1300"
_NAMES = {"LANDLOCK_ACCESS": LANDLOCK_ACCESS, "LANDLOCK_DOMAIN": LANDLOCK_DOMAIN, "SYSCALL": SYSCALL}
KMSG = "/dev/kmsg"
AUDIT_LOG = "/var/log/audit/audit.log"
SETTLE_S = 1.0
QUIET_S = 0.2  # auditd's log: no queue to watch, only silence
DRAIN_S = 0.005  # after the queue ran empty: the record kauditd was sending meanwhile
# What the kernel prints when it dropped records: printk's rate limit (on the next line that
# passes it), audit's own limit, or a full backlog.
_LOSS = ("kauditd_printk_skb", "printk limit exceeded", "backlog limit exceeded", "audit_lost=")
_RECORD = re.compile(r"type=(\d+|[A-Z_]+) (?:msg=)?audit\((\d+\.\d+):(\d+)\): (.*)")
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')
_HEX = re.compile(r"(?:[0-9A-F]{2})+")


def _audit_get() -> tuple[int, ...]:
    """struct audit_status from AUDIT_GET (enabled, failure, pid, rate_limit, backlog_limit,
    lost, backlog, ...; the mask first). Raises OSError with the kernel's errno."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_AUDIT)
    try:
        s.settimeout(0.5)
        s.bind((0, 0))
        s.send(struct.pack("=IHHII", 16, AUDIT_GET, 0x1 | 0x4, 1, 0))  # REQUEST | ACK
        for _ in range(4):
            data = s.recv(8192)
            _, kind = struct.unpack_from("=IH", data)
            if kind == 2:  # NLMSG_ERROR: an error, or the ACK after the reply
                err = -struct.unpack_from("=i", data, 16)[0]
                if err:
                    raise OSError(err, os.strerror(err))
            elif kind == AUDIT_GET:
                return struct.unpack_from("=8I", data, 16)
        raise OSError(errno.ETIMEDOUT, "no reply to AUDIT_GET")
    finally:
        s.close()


def audit_status() -> tuple[bool | None, int, str]:
    """(enabled, auditd pid, why unknown) from AUDIT_GET over netlink. The kernel answers only
    CAP_AUDIT_CONTROL in the initial user and PID namespaces; otherwise (None, 0, reason)."""
    try:
        _mask, enabled, _failure, pid, *_ = _audit_get()
    except OSError as e:
        if e.errno in (errno.EPERM, errno.ECONNREFUSED):
            return None, 0, (f"the audit status is not readable ({e.strerror}: it needs "
                             "CAP_AUDIT_CONTROL in the initial user and PID namespaces, e.g. "
                             "root outside containers)")
        return None, 0, f"the audit status is not readable ({e.strerror})"
    return bool(enabled), pid, ""


def _lost_and_backlog() -> tuple[int, int] | None:
    """Audit's count of records dropped machine-wide, and the records still queued for
    kauditd (None if the status cannot be read)."""
    try:
        status = _audit_get()
    except OSError:
        return None
    return status[6], status[7]


def can_read_multicast() -> bool:
    """CAP_AUDIT_READ in the effective set: the kernel lets us join the read-log group. (Read
    from /proc, not tried: every join, even a refused one, is itself an audit event.)"""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_AUDIT_READ & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def _plan(abi: int) -> tuple[str, str]:
    """(why not, source): source is "multicast", AUDIT_LOG or KMSG when why not is ""."""
    if abi < 7:
        return f"Landlock ABI {abi} writes no audit records (ABI 7, Linux 6.15, does)", ""
    enabled, pid, why = audit_status()
    if enabled is None:
        return why, ""
    if not enabled:
        return "kernel audit is disabled (enable it with `auditctl -e 1`)", ""
    if can_read_multicast():
        return "", "multicast"
    if pid:
        if not os.access(AUDIT_LOG, os.R_OK):
            return f"auditd (pid {pid}) receives the records and {AUDIT_LOG} is not readable", ""
        return "", AUDIT_LOG
    if not os.access(KMSG, os.R_OK):
        return f"{KMSG} is not readable (CAP_SYSLOG, or kernel.dmesg_restrict = 0)", ""
    return "", KMSG


def unobservable(abi: int) -> str:
    """Why Landlock denials cannot be reported here, or "" when they can."""
    return _plan(abi)[0]


def source_for(abi: int) -> tuple[str, str]:
    """(why not, where the records would be read from, in words) for ``doctor``."""
    why, source = _plan(abi)
    words = {"multicast": "the audit netlink read-log group",
             KMSG: f"{KMSG}, rate-limited by the kernel (denials may be missing)",
             AUDIT_LOG: f"auditd's log {AUDIT_LOG}"}
    return why, words.get(source, "")


def _fields(text: str) -> dict[str, str]:
    out = {}
    for key, value in _FIELD.findall(text):
        if value.startswith('"'):
            value = value[1:-1]
        elif key in ("path", "exe", "comm", "name", "ocomm") and _HEX.fullmatch(value):
            value = bytes.fromhex(value).decode("utf-8", "surrogateescape")  # untrusted: hex
        out[key] = value
    return out


def parse(lines: list[str]) -> dict[str, dict[str, list[dict[str, str]]]]:
    """Audit records grouped by event serial, then by type (numbers; names are mapped).
    Accepts kmsg lines (``audit: type=N audit(...)``), the read-log group's text prefixed with
    ``type=N``, and auditd's log (``type=NAME msg=audit(...)``)."""
    events: dict[str, dict[str, list[dict[str, str]]]] = {}
    for line in lines:
        m = _RECORD.search(line)
        if m is None:
            continue
        kind = _NAMES.get(m.group(1), m.group(1))
        events.setdefault(m.group(3), {}).setdefault(kind, []).append(_fields(m.group(4)))
    return events


class Found:
    """What the records say about the domains created by the given pids."""

    def __init__(self) -> None:
        self.events: list[Denial] = []
        self.domains: set[str] = set()
        self.ended: dict[str, int] = {}  # domain -> the kernel's count of its denials
        self.logged = 0  # LANDLOCK_ACCESS records of ours (the kernel counts one per record)

    @property
    def complete(self) -> bool:
        """Every domain of ours ended (no more records will come)."""
        return bool(self.domains) and self.domains <= self.ended.keys()

    @property
    def missing(self) -> int:
        """Denials the kernel counted in our ended domains but no record reported."""
        return max(0, sum(n for d, n in self.ended.items() if d in self.domains) - self.logged)


def denials(lines: list[str], restrict_pids: set[int]) -> Found:
    """The denial events of the Landlock domains created by ``restrict_pids``."""
    events = parse(lines)
    found = Found()
    counts: dict[str, int] = {}
    for ev in events.values():
        for rec in ev.get(LANDLOCK_DOMAIN, []):
            if rec.get("status") == "allocated" and rec.get("pid", "").isdigit() \
                    and int(rec["pid"]) in restrict_pids:
                found.domains.add(rec.get("domain", ""))
            elif rec.get("status") == "deallocated":
                n = rec.get("denials", "")
                counts[rec.get("domain", "")] = int(n) if n.isdigit() else 0
    found.ended = {d: n for d, n in counts.items() if d in found.domains}
    for ev in events.values():
        sysc = (ev.get(SYSCALL) or [{}])[0]
        ours = [rec for rec in ev.get(LANDLOCK_ACCESS, []) if rec.get("domain") in found.domains]
        found.logged += len(ours)
        for rec in ours:
            blockers = rec.get("blockers", "")
            kind = blockers.split(".")[0] if blockers else "landlock"
            detail = {k: v for k, v in rec.items() if k not in ("domain", "blockers", "path")}
            found.events.append(Denial(
                {"fs": "filesystem", "net": "network"}.get(kind, kind), blockers,
                path=rec.get("path", " ".join(f"{k}={v}" for k, v in detail.items())),
                pid=int(sysc["pid"]) if sysc.get("pid", "").isdigit() else None,
                process=sysc.get("comm", "?"), rule="landlock", detail=(("source", "audit"),)))
    return found


def notes(found: Found, source: str, overflowed: bool) -> list[str]:
    """Plain statements of what the collected denials may lack."""
    if found.missing:
        return [f"the kernel counted {found.missing} more Landlock denial(s) than it logged: "
                + ("dropped by the kernel log's rate limit" if source == KMSG
                   else "audit rules excluded them, the audit backlog was full, or a program "
                   "inside restricted itself further")]
    if source == KMSG and not found.complete:
        return [f"read from {KMSG}, which the kernel rate-limits (kernel.printk_ratelimit): "
                "filesystem denials may be missing" + (" (it dropped lines)" if overflowed else "")]
    if overflowed and not found.complete:
        return ["the kernel dropped audit records: denials may be incomplete"]
    return []


class Collector:
    """Opened before the sandbox starts (positioned at the end of the record source), read
    after it ended. ``why_not`` is non-empty when nothing can be collected here."""

    def __init__(self, abi: int) -> None:
        self.why_not, self.source = _plan(abi)
        self.notes: list[str] = []
        self._overflowed = False
        self._fd = -1
        self._sock: socket.socket | None = None
        if self.why_not:
            return
        self._lost0 = (_lost_and_backlog() or (0, 0))[0]
        if self.source == "multicast":
            self._sock = _join_readlog()
            if self._sock is not None:
                return
            self.source = KMSG  # refused after all (a security module?): the kernel log
        try:
            flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if self.source == KMSG else 0)
            self._fd = os.open(self.source, flags)
            os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as e:
            self.why_not = f"cannot read {self.source} ({e.strerror})"

    def _read_multicast(self, sock: socket.socket) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return lines
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the receive buffer overflowed
                    self._overflowed = True
                    continue
                raise
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if length < 16:
                    break
                text = data[off + 16:off + length].split(b"\0", 1)[0].decode("utf-8", "replace")
                lines.append(f"type={kind} {text}")
                off += (length + 3) & ~3

    def _read(self) -> list[str]:
        if self._sock is not None:
            return self._read_multicast(self._sock)
        if self.source == AUDIT_LOG:
            data = b""
            while chunk := os.read(self._fd, 1 << 16):
                data += chunk
            return data.decode("utf-8", "replace").splitlines()
        lines: list[str] = []
        while True:  # /dev/kmsg: one record per read, "prio,seq,usec,flags;text\n"
            try:
                rec = os.read(self._fd, 8192)
            except BlockingIOError:
                return lines
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten before we read it
                    self._overflowed = True
                    continue
                raise
            if not rec:
                return lines
            lines.append(rec.decode("utf-8", "replace").split(";", 1)[-1])

    def collect(self, restrict_pids: set[int]) -> list[Denial]:
        """The sandbox's Landlock denials (call once, after it ended); sets :attr:`notes`.

        Every record of the sandbox was queued for kauditd inside the denied syscall, so once
        the sandbox ended, audit's queue running empty (``backlog`` 0) means they were handed
        out: no fixed waiting. The kernel log waits for the domain's ``deallocated`` record
        too (its count is the only proof that rate limiting dropped nothing), as does
        auditd's log (auditd writes it after it received the records)."""
        if self._fd < 0 and self._sock is None:
            return []
        lines: list[str] = []
        start = quiet_since = time.monotonic()
        drained_at = 0.0
        found: Found | None = None
        try:
            while True:
                new = self._read()
                now = time.monotonic()
                if new or found is None:  # parse again only when records arrived
                    lines += new
                    quiet_since = now
                    found = denials(lines, restrict_pids)
                counters = None if self.source == AUDIT_LOG else _lost_and_backlog()
                if counters is not None and counters[0] > self._lost0:
                    self._overflowed = True  # the backlog overflowed (maybe not ours)
                if counters is None or counters[1]:
                    drained_at = 0.0
                elif not drained_at:
                    drained_at = now
                drained = bool(drained_at) and now - drained_at >= DRAIN_S and now - quiet_since >= DRAIN_S
                wait_count = self.source != "multicast" and bool(found.domains)
                if found.complete or now - start >= SETTLE_S or (drained and not wait_count) \
                        or (counters is None and not found.domains and now - quiet_since >= QUIET_S):
                    self._overflowed |= any(m in ln for ln in lines for m in _LOSS)
                    self.notes = notes(found, self.source, self._overflowed)
                    return found.events
                time.sleep(0.001 if drained_at else 0.003)
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading (after :meth:`collect`, or without it when the sandbox never started)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _join_readlog() -> socket.socket | None:
    """A non-blocking socket in the read-log multicast group, or None if the kernel refuses."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_AUDIT)
    except OSError:
        return None
    try:
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (privileged)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        s.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s
