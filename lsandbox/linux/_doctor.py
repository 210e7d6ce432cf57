"""``lsandbox doctor`` on Linux: what this machine supports and what enforces each policy
field here, as data (the CLI prints it).

What the launch itself depends on (Landlock ABI, user notification, namespaces, root) is
:func:`~lsandbox.linux._features.features`' answer, the same the launcher acts on; doctor
adds what only it asks. Probes are cheap (no filesystem walks, no network) and never hang: a forked child checks
``pidfd_getfd`` with a timeout. The verdict per field is one of ``enforced``, ``degraded``
(enforced another, stricter way) or ``not enforced`` (then ``run`` refuses or the field is
reported), and doctor exits non-zero when any field of the active profile is not enforced.
Rows in state ``open`` name a class of access the sandbox cannot close in this mode (without
namespaces: ``lsandbox.linux._without_namespaces``); they are printed, and reported by every
run, but do not fail the verdict, which is about the profile's own fields.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any

import landlock
import seccomp_bpf as sb

from .._backend import DoctorReport, FieldState
from ..policy import Policy
from ._features import (
    _clamped,
    addfd_available,
    features,
    filesystem_unenforced,
    mount_view_built,
    pidfd_thread_available,
    sync_wake_up_available,
    userns_allowed,
    wait_killable_available,
)


def _pidfd_getfd_works() -> bool:
    from . import _broker_sys

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


def _unshare_refused(root: bool) -> str:
    """Why a forked child cannot unshare the namespaces a sandbox would (a container whose
    seccomp profile refuses ``unshare``, as Docker's default does), else ""."""
    from . import _sys

    flags = _sys.CLONE_NEWNS | _sys.CLONE_NEWPID | (0 if root else _sys.CLONE_NEWUSER)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            _sys.unshare(flags)
            os.write(w, b"ok")
        except OSError as e:
            os.write(w, (e.strerror or str(e.errno)).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        answer = os.read(r, 200).decode(errors="replace")
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return "" if answer == "ok" else f"unshare refused ({answer}), e.g. by a container's seccomp profile"


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = platform.release().split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def probe_machine() -> dict[str, Any]:
    f = features()
    abi, root, notif = f.landlock_abi, f.root, f.user_notif
    userns, why = userns_allowed()
    getfd = _pidfd_getfd_works()
    from ._caps import kept_here

    disabled = _clamped("LSANDBOX_NO_NAMESPACES")
    # features() says namespaces may be tried; whether unshare is refused (a container's
    # seccomp profile) only a launch would find out: doctor asks now
    refused = _unshare_refused(root) if f.namespaces else ""
    ns_here = f.namespaces and not refused
    from ._audit import source_for

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
            "why_not": refused or ("" if userns else why),
            "usable": (root or userns) and not refused,
            "disabled_by_env": disabled,
        },
        "audit_readable": not audit_why_not,
        "audit_why_not": audit_why_not,
        "audit_source": audit_source,
        "capabilities_kept": kept_here(ns_here, root),
        "in_container": os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"),
        # why `lsandbox run` refuses to start here ("" when it starts)
        "run_refused": filesystem_unenforced(abi, f.namespaces, True if mount_view_built() else None) or "",
    }


def _fastpath_state() -> str:
    """'compiled' or why the broker runs in pure Python (a speed matter only)."""
    from . import _fastpath

    return "compiled" if _fastpath.lib is not None else _fastpath.why_not


def field_report(policy: Policy, m: dict[str, Any]) -> list[FieldState]:
    abi = m["landlock_abi"]
    ns = m["namespaces"]["usable"] and not m["namespaces"]["disabled_by_env"]
    rows: list[FieldState] = []

    def row(field: str, state: str, how: str) -> None:
        rows.append(FieldState(field, state, how))

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
            row("read-only carve-outs", "degraded", "Landlock split: new entries in the split directories are "
                "created by the path-operation broker (never a carve-out name), a notification per creating call")
        else:
            row("read-only carve-outs", "not enforced", "no Landlock, no namespaces")
    if policy.filesystem.deny_read:
        row("deny-read paths", "enforced" if abi >= 1 else "not enforced",
            f"Landlock ABI {abi} (sibling enumeration)" if abi else "Landlock is not available")
    if not policy.network.enabled:
        how = "seccomp socket() filter" + (f" + Landlock TCP (ABI {abi})" if abi >= 4 else "")
        if ns and not policy.network.dangerously_allow_all_unix_sockets:
            how += " + own network namespace"
        row("network off", "enforced", how)
    elif policy.network.proxied:  # network.domains: refused by `run` without a namespace
        row("network domains (proxy)", "enforced" if ns else "not enforced",
            "filtering proxy on the own network namespace's loopback + broker" if ns
            else "needs a network namespace of the sandbox's own: run refuses this policy")
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
    if ns:
        row("sandbox dies with its supervisor", "enforced", "PID namespace")
    elif abi >= 6:
        row("sandbox dies with its supervisor", "enforced",
            "the first process kills the command's tree when the supervisor dies; Landlock "
            "scopes the command's signals away from it")
    else:
        row("sandbox dies with its supervisor", "degraded",
            "the first process kills the command's tree when the supervisor dies; below "
            "Landlock ABI 6 the command can kill it first")
    _hardening_rows(row, abi, ns, m)
    return rows


def _hardening_rows(row: Callable[[str, str, str], None], abi: int, ns: bool, m: dict[str, Any]) -> None:
    """What holds whatever the profile says: capabilities, set-id bits, device nodes, inode
    flags, truncation; and, without namespaces, what stays open."""
    from ._caps import describe_kept
    from ._without_namespaces import BROKERED, OPEN

    kept = m["capabilities_kept"]
    row("capabilities in the command", "enforced",
        "none, even as root: all sets cleared, " + (describe_kept(kept) if kept else
                                                    "bounding set dropped, securebits locked"))
    row("set-id bits, device nodes", "enforced",
        "seccomp filter A (modes of chmod/open/creat/mknod) + Landlock without MAKE_CHAR/MAKE_BLOCK "
        "+ no CAP_MKNOD/CAP_FSETID")
    row("inode flags", "enforced", "seccomp filter A refuses FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR and file_setattr")
    if abi >= 3:
        row("truncate outside the writable roots", "enforced", f"Landlock TRUNCATE (ABI {abi})")
    elif abi >= 1:
        row("truncate outside the writable roots", "degraded",
            f"Landlock ABI {abi} has no TRUNCATE: seccomp filter A refuses truncate(2) everywhere "
            "and O_TRUNC without write access")
    if not ns:
        for what, detail in OPEN:
            row(what, "open", f"without namespaces: {detail}")
        addfd = m["seccomp"]["addfd"]
        for what, detail in BROKERED:  # _pathops
            row(what, "brokered" if addfd else "degraded",
                f"without namespaces: {detail}" + ("" if addfd else "; no SECCOMP_IOCTL_NOTIF_ADDFD here: "
                                                    "O_CREAT opens in split directories are refused"))


def doctor(policy: Policy) -> DoctorReport:
    m = probe_machine()
    return DoctorReport("linux", m, field_report(policy, m))
