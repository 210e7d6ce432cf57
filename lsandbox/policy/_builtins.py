"""Built-in profiles, written in the same schema as user profiles so one resolver handles both.

Names start with ``:`` (user profiles may not). Only ``:read-only`` and ``:workspace`` can be
extended, like Codex. ``:workspace-write`` does not exist in Codex but users type it (it is the
legacy ``sandbox_mode`` name): we accept it as an alias of ``:workspace`` and ``explain`` says so.
"""

from __future__ import annotations

TYPE_CHECKING = False  # ``typing`` stays off the launch path; type checkers see True
if TYPE_CHECKING:
    from typing import Any


#: Inside every workspace root these stay read-only: version control metadata and the agents'
#: own configuration (Codex protects ``.git``, ``.agents``, ``.codex``; we add our ``.lsandbox``)
#: so a sandboxed command cannot rewrite hooks or loosen its own next policy.
PROTECTED_IN_WORKSPACE: tuple[str, ...] = (".git", ".agents", ".codex", ".lsandbox")

WORKSPACE_ROOT_PATTERN: dict[str, str] = {
    ".": "write",
    **{name: "read" for name in PROTECTED_IN_WORKSPACE},
}

BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    ":read-only": {
        "description": "Read everything, write nothing, no network.",
        "filesystem": {":root": "read"},
        "network": {"enabled": False},
    },
    ":workspace": {
        "description": "Read everything; write the workspace roots (not their .git, .agents, "
        ".codex, .lsandbox), /tmp and $TMPDIR; no network.",
        "filesystem": {
            ":root": "read",
            ":workspace_roots": dict(WORKSPACE_ROOT_PATTERN),
            ":slash_tmp": "write",
            ":tmpdir": "write",
        },
        "network": {"enabled": False},
    },
    ":danger-full-access": {
        "description": "No restrictions (the filesystem is writable, network and every "
        "AF_UNIX socket allowed).",
        "filesystem": {":root": "write"},
        "network": {"enabled": True, "dangerously_allow_all_unix_sockets": True},
    },
}

ALIASES: dict[str, str] = {":workspace-write": ":workspace"}
EXTENDABLE: frozenset[str] = frozenset({":read-only", ":workspace"})


def builtin_names() -> list[str]:
    """Every accepted built-in name, aliases included, sorted."""
    return sorted([*BUILTIN_PROFILES, *ALIASES])


#: ``:minimal``: what a dynamically linked program needs to start and run a shell, and no
#: user data. Entries that do not exist on this machine are skipped.
MINIMAL_PATHS: tuple[str, ...] = (
    "/bin",
    "/sbin",
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/dev",
    "/proc",
    "/sys/devices/system/cpu",
    "/run/systemd/resolve",
)
