"""Filesystem (and other Landlock) denials, read back from the kernel's audit records.

Landlock ABI 7 writes an audit record for each denial (``LANDLOCK_ACCESS``, type 1423: the
domain, the blocked rights, the path) and one per domain (``LANDLOCK_DOMAIN``, 1424: who
created it, on its first denial, then ``status=deallocated`` when it ends). Three things must
hold for lsandbox to see them, and :func:`unobservable` names the first that does not:

1. Landlock ABI >= 7, and the child asks for records after ``execve``
   (``LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON``; by default only the process that called
   ``landlock_restrict_self`` is logged, i.e. never the command). The launcher sets it only
   when denials were asked for (``--log-denials``, ``--events``, ``log_denials=True``), so a
   sandbox nobody watches does not fill the system log.
2. Audit is enabled (``auditctl -e 1``, or ``audit=1`` on the kernel command line).
   lsandbox never flips this machine-wide switch itself; ``doctor`` says how.
3. The records can be read. Best: the audit netlink *read-log multicast group*
   (``AUDIT_NLGRP_READLOG``, needs CAP_AUDIT_READ, e.g. root): every record, live, whether or
   not auditd runs, and without taking auditd's place. Otherwise without an audit daemon the
   kernel prints them to the kernel log, read from ``/dev/kmsg`` (root, or
   ``kernel.dmesg_restrict = 0``), but printing is rate-limited (``printk_ratelimit``: about
   ten records per five seconds, some four per denial) so most denials of a busy sandbox are
   lost there; with auditd they go to auditd, whose log file (``/var/log/audit/audit.log``)
   must be readable.

Matching: the parent knows the pid that called ``landlock_restrict_self`` (the child, or the
PID-1 init the relay forked); the ``LANDLOCK_DOMAIN`` record carrying that pid names the
sandbox's domain, and only ``LANDLOCK_ACCESS`` records of that domain are reported (other
sandboxes on the machine, and domains the workload nests inside ours, are not ours). The
kernel prints audit records from a kernel thread, so collection waits for the domain's
``deallocated`` record (at most ``SETTLE_S``). The kernel rate-limits printed audit records
(``audit: printk limit exceeded``): under a storm of denials some are missing, and the
summary says records may be incomplete when the kernel log overflowed.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
import time

AUDIT_GET = 1000
NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
RCVBUF = 4 << 20
LANDLOCK_ACCESS, LANDLOCK_DOMAIN, SYSCALL = "1423", "1424", "1300"
_NAMES = {"LANDLOCK_ACCESS": LANDLOCK_ACCESS, "LANDLOCK_DOMAIN": LANDLOCK_DOMAIN, "SYSCALL": SYSCALL}
KMSG = "/dev/kmsg"
AUDIT_LOG = "/var/log/audit/audit.log"
SETTLE_S = 1.0
QUIET_S = 0.05
_RECORD = re.compile(r"type=(\d+|[A-Z_]+) (?:msg=)?audit\((\d+\.\d+):(\d+)\): (.*)")
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')


def audit_status() -> tuple[bool | None, int, str]:
    """(enabled, auditd pid, why unknown) from AUDIT_GET over netlink. Needs
    CAP_AUDIT_CONTROL in the initial user namespace; otherwise (None, 0, reason)."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    except OSError as e:
        return None, 0, f"no audit netlink socket ({e.strerror})"
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
                    return None, 0, f"the audit status is not readable ({os.strerror(err)})"
            elif kind == AUDIT_GET:
                _mask, enabled, _failure, pid = struct.unpack_from("=IIII", data, 16)
                return bool(enabled), pid, ""
        return None, 0, "no reply to AUDIT_GET"
    except OSError as e:
        return None, 0, f"the audit status is not readable ({e.strerror})"
    finally:
        s.close()


def _source(pid: int) -> str:
    return AUDIT_LOG if pid else KMSG


def _multicast() -> socket.socket | None:
    """A socket in the read-log multicast group, or None without CAP_AUDIT_READ."""
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


def unobservable(abi: int) -> str:
    """Why Landlock denials cannot be reported here, or "" when they can."""
    if abi < 7:
        return f"Landlock ABI {abi} writes no audit records (ABI 7, Linux 6.15, does)"
    enabled, pid, why = audit_status()
    if enabled is None:
        return why
    if not enabled:
        return "kernel audit is disabled (enable it with `auditctl -e 1`)"
    probe = _multicast()
    if probe is not None:
        probe.close()
        return ""
    src = _source(pid)
    if not os.access(src, os.R_OK):
        return (f"auditd (pid {pid}) receives the records and {src} is not readable" if pid
                else f"{src} is not readable (root, or kernel.dmesg_restrict = 0)")
    return ""


def _fields(text: str) -> dict[str, str]:
    out = {}
    for key, value in _FIELD.findall(text):
        if value.startswith('"'):
            value = value[1:-1]
        elif key in ("path", "exe", "comm", "name") and re.fullmatch(r"(?:[0-9A-F]{2})+", value):
            value = bytes.fromhex(value).decode("utf-8", "surrogateescape")  # untrusted: hex
        out[key] = value
    return out


def parse(lines: list[str]) -> dict[str, dict[str, list[dict[str, str]]]]:
    """Audit records grouped by event serial, then by type (numbers; names are mapped)."""
    events: dict[str, dict[str, list[dict[str, str]]]] = {}
    for line in lines:
        m = _RECORD.search(line)
        if m is None:
            continue
        kind = _NAMES.get(m.group(1), m.group(1))
        events.setdefault(m.group(3), {}).setdefault(kind, []).append(_fields(m.group(4)))
    return events


def denials(lines: list[str], restrict_pids: set[int]) -> tuple[list[dict], bool]:
    """(denial events of the domains created by ``restrict_pids``, every such domain ended)."""
    events = parse(lines)
    domains: set[str] = set()
    ended: set[str] = set()
    for ev in events.values():
        for rec in ev.get(LANDLOCK_DOMAIN, []):
            if rec.get("status") == "allocated" and rec.get("pid", "").isdigit() \
                    and int(rec["pid"]) in restrict_pids:
                domains.add(rec.get("domain", ""))
            elif rec.get("status") == "deallocated":
                ended.add(rec.get("id", rec.get("domain", "")))
    out = []
    for ev in events.values():
        sysc = (ev.get(SYSCALL) or [{}])[0]
        for rec in ev.get(LANDLOCK_ACCESS, []):
            if rec.get("domain") not in domains:
                continue
            blockers = rec.get("blockers", "")
            kind = blockers.split(".")[0] if blockers else "landlock"
            detail = {k: v for k, v in rec.items() if k not in ("domain", "blockers", "path")}
            out.append({"kind": {"fs": "filesystem", "net": "network"}.get(kind, kind), "op": blockers,
                        "path": rec.get("path", " ".join(f"{k}={v}" for k, v in detail.items())),
                        "pid": int(sysc["pid"]) if sysc.get("pid", "").isdigit() else None,
                        "process": sysc.get("comm", "?"), "verdict": "deny", "rule": "landlock",
                        "source": "audit"})
    return out, bool(domains) and domains <= ended


class Collector:
    """Opened before the sandbox starts (positioned at the end of the record source), read
    after it ended. ``why_not`` is non-empty when nothing can be collected here."""

    def __init__(self, abi: int) -> None:
        self.why_not = unobservable(abi)
        self.lost = False
        self._fd = -1
        self._log = False
        self._sock: socket.socket | None = None
        self.source = ""
        if self.why_not:
            return
        self._sock = _multicast()
        if self._sock is not None:
            self.source = "audit netlink (read-log group)"
            return
        _, pid, _ = audit_status()
        self._log = bool(pid)
        self.source = AUDIT_LOG if self._log else f"{KMSG} (rate-limited by printk)"
        try:
            if self._log:
                self._fd = os.open(AUDIT_LOG, os.O_RDONLY | os.O_CLOEXEC)
            else:
                self._fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as e:
            self.why_not = f"cannot read {AUDIT_LOG if self._log else KMSG} ({e.strerror})"

    def _read_multicast(self, sock: socket.socket) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return lines
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the receive buffer overflowed
                    self.lost = True
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
        lines: list[str] = []
        if self._sock is not None:
            return self._read_multicast(self._sock)
        if self._log:
            data = b""
            while chunk := os.read(self._fd, 1 << 16):
                data += chunk
            return data.decode("utf-8", "replace").splitlines()
        while True:  # /dev/kmsg: one record per read
            try:
                rec = os.read(self._fd, 8192)
            except BlockingIOError:
                return lines
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten before we read it
                    self.lost = True
                    continue
                raise
            if not rec:
                return lines
            text = rec.decode("utf-8", "replace")
            lines.append(text.split(";", 1)[-1])

    def close(self) -> None:
        """Stop reading without collecting (the sandbox never started)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def collect(self, restrict_pids: set[int]) -> list[dict]:
        """The sandbox's Landlock denials (call once, after it ended)."""
        if self._fd < 0 and self._sock is None:
            return []
        lines: list[str] = []
        deadline = time.monotonic() + SETTLE_S
        quiet_since = time.monotonic()
        try:
            while True:
                new = self._read()
                now = time.monotonic()
                if new:
                    lines += new
                    quiet_since = now
                found, ended = denials(lines, restrict_pids)
                if ended or now >= deadline or (not found and now - quiet_since >= QUIET_S):
                    if any("limit exceeded" in ln or "audit_lost=" in ln for ln in lines):
                        self.lost = True
                    return found
                time.sleep(0.005)
        finally:
            self.close()
