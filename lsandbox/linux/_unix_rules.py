"""AF_UNIX rules as data: Landlock ``RESOLVE_UNIX`` rules (ABI >= 9) and ``explain`` rows.

On Landlock ABI >= 9 the kernel itself checks pathname AF_UNIX connects/sends
(``LANDLOCK_ACCESS_FS_RESOLVE_UNIX``); the launcher adds these rules as a second layer under
the broker. Landlock only grants, so a ``none`` carve-out inside an allowed directory is an
entry with no rights, which ``landlock.plan_path_rules`` turns into grants on the siblings.
"""

from __future__ import annotations

import landlock as ll

from ..policy._model import Policy, SocketAccess

RESOLVE_UNIX_ABI = 9


def resolve_unix_rules(policy: Policy, socket_dir: str, abi: int) -> dict[str, int]:
    """path -> rights for ``RESOLVE_UNIX`` (empty below ABI 9: the broker alone enforces)."""
    if abi < RESOLVE_UNIX_ABI:
        return {}
    net = policy.network
    grant, none = ll.FS_RESOLVE_UNIX, 0
    rules: dict[str, int] = {}
    if net.dangerously_allow_all_unix_sockets:
        rules["/"] = grant
    for r in net.unix_sockets:
        rules[r.path] = grant if r.access == SocketAccess.ALLOW else none
    if socket_dir:
        rules[socket_dir] = grant
    return rules


def explain_unix(policy: Policy, socket_dir: str, abi: int) -> list[dict[str, str]]:
    """One row per AF_UNIX rule: what it grants and which layers enforce it here."""
    kernel = abi >= RESOLVE_UNIX_ABI
    layers = "broker (seccomp user notification)" + (" + Landlock RESOLVE_UNIX" if kernel else "")
    rows = [{"path": r.path, "access": r.access.value, "origin": r.origin, "enforced_by": layers}
            for r in policy.network.unix_sockets]
    if socket_dir:
        rows.append({"path": socket_dir, "access": "allow", "origin": "sandbox socket dir",
                     "enforced_by": layers})
    rows.append({"path": "(abstract names)", "access":
                 "allow" if policy.network.dangerously_allow_all_unix_sockets else "none",
                 "origin": "built-in", "enforced_by": "broker + Landlock scope (ABI >= 6)"})
    rows.append({"path": "(anything else)", "access":
                 "allow" if policy.network.dangerously_allow_all_unix_sockets else "none",
                 "origin": "dangerously_allow_all_unix_sockets", "enforced_by": layers})
    rows.append({"path": "(hard-linked sockets)", "access": "none", "origin": "built-in",
                 "enforced_by": "broker (st_nlink != 1 on the pinned inode)"})
    rows.append({"path": "(sockets moved where the sandbox can write)", "access": "none",
                 "origin": "built-in", "enforced_by": "broker (ctime/birth time and a launch "
                 "snapshot of allowlisted directories; lsandbox.linux._provenance)"})
    return rows
