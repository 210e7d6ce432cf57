"""What this machine offers the Linux backend, probed once per process (cheap, no walks).

``LSANDBOX_NO_NAMESPACES=1`` makes the backend behave as in a container that refuses
namespaces (for tests of that mode on a machine that has them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import landlock
import seccomp_bpf


@dataclass(frozen=True)
class Features:
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
    ns = os.environ.get("LSANDBOX_NO_NAMESPACES", "") not in ("1", "true", "yes")
    if ns and not root:
        ns = userns_allowed()[0]
    try:
        notif = seccomp_bpf.action_available(seccomp_bpf.USER_NOTIF)
    except OSError:
        notif = False
    return Features(landlock.abi_version(), notif, ns, root)
