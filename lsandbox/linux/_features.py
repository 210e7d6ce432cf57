"""What this machine offers the Linux backend, probed once per process (cheap, no walks).

``LSANDBOX_NO_NAMESPACES=1`` makes the backend behave as in a container that refuses
namespaces (for tests of that mode on a machine that has them).
"""

from __future__ import annotations

import os
from functools import cache

import landlock
import seccomp_bpf
from lsandbox_records import Record


def _clamped(name: str) -> bool:
    return os.environ.get(name, "") in ("1", "true", "yes")


def addfd_available() -> bool:
    """SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9); ``LSANDBOX_SECCOMP_NO_ADDFD=1`` emulates its absence."""
    return not _clamped("LSANDBOX_SECCOMP_NO_ADDFD")


def pidfd_thread_available() -> bool:
    """``pidfd_open(tid, PIDFD_THREAD)`` (Linux 6.9): a pidfd for any thread, not only a
    thread-group leader. ``LSANDBOX_NO_PIDFD_THREAD=1`` emulates its absence; the broker then
    opens the leader and checks (kcmp) that the thread shares its descriptor table."""
    if _clamped("LSANDBOX_NO_PIDFD_THREAD"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid(), os.O_EXCL))  # PIDFD_THREAD == O_EXCL
        return True
    except OSError:
        return False


def wait_killable_available() -> bool:
    """SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19); ``LSANDBOX_SECCOMP_NO_WAIT_KILLABLE=1``
    emulates its absence. With it, a brokered call can no longer be interrupted by a non-fatal
    signal once the broker has received it, so the broker's work is never thrown away and
    redone; without it the same answers are given, with more restarts."""
    if _clamped("LSANDBOX_SECCOMP_NO_WAIT_KILLABLE"):
        return False
    try:
        return seccomp_bpf.flag_supported(seccomp_bpf.FLAG_WAIT_KILLABLE_RECV)
    except OSError:
        return False


class Features(Record):
    landlock_abi: int
    user_notif: bool
    namespaces: bool  # may try user/mount/pid namespaces
    root: bool


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def userns_allowed() -> tuple[bool, str]:
    """Can an unprivileged process create a user namespace here? (reason when not)"""
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return False, "user.max_user_namespaces is 0"
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return False, "kernel.unprivileged_userns_clone is 0"
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return False, "AppArmor restricts unprivileged user namespaces"
    return True, ""


@cache
def features() -> Features:
    root = os.geteuid() == 0
    ns = not _clamped("LSANDBOX_NO_NAMESPACES")
    if ns and not root:
        ns = userns_allowed()[0]
    try:
        notif = seccomp_bpf.action_available(seccomp_bpf.USER_NOTIF)
    except OSError:
        notif = False
    return Features(landlock.abi_version(), notif, ns, root)
