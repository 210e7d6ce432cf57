"""``lsandbox doctor``: what this machine supports and what enforces each policy field here.

Probes are cheap (no filesystem walks, no network) and never hang: a forked child checks
``pidfd_getfd`` with a timeout. The verdict per field is one of ``enforced``, ``degraded``
(enforced another, stricter way) or ``not enforced`` (then ``run`` refuses or the field is
reported), and doctor exits non-zero when any field of the active profile is not enforced.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import landlock
import seccomp_bpf as sb

from .linux._features import (
    addfd_available,
    filesystem_unenforced,
    mount_view_built,
    pidfd_thread_available,
    sync_wake_up_available,
    userns_allowed,
    wait_killable_available,
)
from .policy import Policy


def _pidfd_getfd_works() -> bool:
    from .linux import _broker_sys

    pid = os.fork()
    if pid == 0:
        try:
            os.read(os.open("/dev/null", os.O_RDONLY), 0)
            import time

            time.sleep(2)
        finally:
            os._exit(0)
    try:
        pidfd = os.pidfd_open(pid)
        try:
            fd = _broker_sys.pidfd_getfd(pidfd, 0)
            os.close(fd)
            return True
        except OSError:
            return False
        finally:
            os.close(pidfd)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = platform.release().split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def probe_machine() -> dict[str, Any]:
    abi = landlock.abi_version()
    userns, why = userns_allowed()
    root = os.geteuid() == 0
    try:
        notif = sb.action_available(sb.USER_NOTIF)
    except OSError:
        notif = False
    getfd = _pidfd_getfd_works()
    from .linux._audit import source_for

    audit_why_not, audit_source = source_for(abi)  # can Landlock's denial records be read back?
    return {
        "kernel": platform.release(),
        "arch": sb.native_arch(),
        "landlock_abi": abi,
        "landlock_abi_kernel": landlock.kernel_abi(),
        "landlock_errata": landlock.errata(),
        "seccomp": {
            "user_notif": notif,
            "log": sb.action_available(sb.LOG),
            "kill_process": sb.action_available(sb.KILL_PROCESS),
            "new_listener": sb.flag_supported(sb.FLAG_NEW_LISTENER),
            "wait_killable_recv": wait_killable_available(),
            "tsync_esrch": sb.flag_supported(sb.FLAG_TSYNC_ESRCH),
            "addfd": _kernel_at_least(5, 9) and addfd_available(),
            "sync_wake_up": sync_wake_up_available(),
        },
        "pidfd_getfd": bool(getfd),
        "pidfd_thread": pidfd_thread_available(),
        "broker_fastpath": _fastpath_state(),
        "namespaces": {
            "root": root,
            "unprivileged_userns": userns,
            "why_not": "" if userns else why,
            "usable": root or userns,
            "disabled_by_env": os.environ.get("LSANDBOX_NO_NAMESPACES") in ("1", "true", "yes"),
        },
        "audit_readable": not audit_why_not,
        "audit_why_not": audit_why_not,
        "audit_source": audit_source,
        "in_container": os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"),
        # why `lsandbox run` refuses to start here ("" when it starts)
        "run_refused": filesystem_unenforced(
            abi, (root or userns) and not _clamped_ns(), True if mount_view_built() else None) or "",
    }


def _clamped_ns() -> bool:
    return os.environ.get("LSANDBOX_NO_NAMESPACES") in ("1", "true", "yes")


def _fastpath_state() -> str:
    """'compiled' or why the broker runs in pure Python (a speed matter only)."""
    from .linux import _fastpath

    return "compiled" if _fastpath.lib is not None else _fastpath.why_not


def field_report(policy: Policy, m: dict[str, Any]) -> list[dict[str, str]]:
    abi = m["landlock_abi"]
    ns = m["namespaces"]["usable"] and not m["namespaces"]["disabled_by_env"]
    rows = []

    def row(field: str, state: str, how: str) -> None:
        rows.append({"field": field, "state": state, "by": how})

    fs_rules = policy.filesystem.rules
    if abi >= 1:
        row("filesystem read/write roots", "enforced", f"Landlock ABI {abi}")
    elif not m.get("run_refused"):
        row("filesystem read/write roots", "enforced", "read-only mount view (mount namespace; no Landlock)")
    else:
        row("filesystem read/write roots", "not enforced", "Landlock is not available: run refuses to start")
    if policy.filesystem.read_only:
        if ns:
            row("read-only carve-outs", "enforced", "read-only bind mounts (mount namespace)")
        elif abi >= 1:
            row("read-only carve-outs", "degraded", "Landlock split: new top-level entries in the root are refused")
        else:
            row("read-only carve-outs", "not enforced", "no Landlock, no namespaces")
    if policy.filesystem.deny_read:
        row("deny-read paths", "enforced" if abi >= 1 else "not enforced",
            f"Landlock ABI {abi} (sibling enumeration)" if abi else "Landlock is not available")
    del fs_rules
    if not policy.network.enabled:
        how = "seccomp socket() filter" + (f" + Landlock TCP (ABI {abi})" if abi >= 4 else "")
        if ns and not policy.network.dangerously_allow_all_unix_sockets:
            how += " + own network namespace"
        row("network off", "enforced", how)
    notif = m["seccomp"]["user_notif"]
    if notif and (m["pidfd_getfd"] or m["seccomp"]["addfd"]):
        how = "seccomp user notification broker" + ("" if m["pidfd_getfd"] else " (ADDFD fallback: connect only)")
        row("unix_sockets allowlist", "enforced" if m["pidfd_getfd"] else "degraded", how)
    else:
        row("unix_sockets allowlist", "not enforced", "no seccomp user notification / pidfd_getfd")
    if abi >= 6:
        row("abstract sockets, signals", "enforced", f"Landlock scopes (ABI {abi})")
    elif ns:
        row("abstract sockets, signals", "enforced",
            "broker refuses abstract names; the PID namespace hides outside processes")
    else:
        row("abstract sockets, signals", "degraded",
            "broker refuses abstract names; signals to same-user processes outside are NOT confined")
    row("sandbox dies with its supervisor", "enforced" if ns else "degraded",
        "PID namespace" if ns else "PDEATHSIG on the direct child only")
    return rows


def doctor(policy: Policy) -> tuple[dict[str, Any], list[dict[str, str]], bool]:
    m = probe_machine()
    rows = field_report(policy, m)
    ok = all(r["state"] != "not enforced" for r in rows)
    return m, rows, ok
