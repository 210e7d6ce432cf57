"""Administrator requirements: settings a user profile cannot loosen.

Files: ``/etc/lsandbox/requirements.toml``, and a second file named by the ``--requirements``
option or env ``LSANDBOX_REQUIREMENTS`` (it must exist). The second file adds requirements: it
cannot lift the system file's, since the user a requirement binds is the one who picks the
option. Supported keys, modelled on Codex's ``requirements.toml``::

    allowed_permission_profiles = { ":read-only" = true, ":workspace" = true }  # closed list
    allowed_sandbox_modes = ["read-only", "workspace-write"]
    [permissions.filesystem]
    deny_read = ["~/.ssh", "/etc/shadow"]                             # additive
    [permissions.network]
    enabled = false                          # the network may not be turned on
    dangerously_allow_all_unix_sockets = false
    unix_sockets = { "/var/run/docker.sock" = "none" }                # forced denials

A user setting that conflicts (a profile that is not allowed, ``--network`` when the network
is forbidden, a rule granting access inside a required denial) is an error naming both places,
not a silent override: the user learns why their command will not get what they asked.

As in Codex: ``allowed_permission_profiles`` is a closed list (the selected profile must be
there as ``true``; a legacy ``sandbox_mode`` selects its built-in); ``allowed_sandbox_modes``
judges every policy by what it writes (``/``: danger-full-access; anything: workspace-write;
nothing: read-only), not only a legacy ``sandbox_mode``. ``~`` in a requirement is the user's
home from the password database, not ``$HOME``, which the user sets.
"""

from __future__ import annotations

import os

from lsandbox_records import Record, field

from .._errors import PolicyError
from ._loader import Source, _check_keys, _expect, read_toml
from ._model import (
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
)
from ._paths import canonicalize, expand, is_within

TYPE_CHECKING = False  # ``typing`` stays off the launch path; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT_REQUIREMENTS = "/etc/lsandbox/requirements.toml"
ENV_VAR = "LSANDBOX_REQUIREMENTS"


class Requirements(Record):
    file: str | None = None
    allowed_profiles: Mapping[str, bool] = field(default_factory=dict)
    allowed_sandbox_modes: tuple[str, ...] | None = None
    deny_read: tuple[tuple[str, str], ...] = ()  # (canonical path, origin)
    network_enabled: bool | None = None
    network_origin: str = ""
    allow_all_unix: bool | None = None
    allow_all_unix_origin: str = ""
    unix_none: tuple[tuple[str, str], ...] = ()
    given: frozenset[str] = frozenset()  # the keys the file set (an empty list still binds)


def find_requirements(explicit: str | None, env: Mapping[str, str] | None = None) -> list[str]:
    """The requirements files that bind this run: the system file when it exists, and the
    one named by ``explicit`` (``--requirements``) or the environment, which must exist."""
    env = os.environ if env is None else env
    out = [DEFAULT_REQUIREMENTS] if os.path.exists(DEFAULT_REQUIREMENTS) else []
    path = explicit or env.get(ENV_VAR)
    if path:
        if not os.path.exists(path):
            raise PolicyError("requirements file does not exist", file=path)
        if not out or not os.path.samefile(path, out[0]):
            out.append(path)
    return out


def load_requirements(path: str | None) -> Requirements:
    if path is None:
        return Requirements()
    data, src = read_toml(path)
    _check_keys(src, (), data, ("allowed_permission_profiles", "allowed_sandbox_modes", "permissions"))
    req: dict[str, Any] = {"file": path}
    if "allowed_permission_profiles" in data:
        p: tuple[str, ...] = ("allowed_permission_profiles",)
        table = _expect(src, p, data[p[0]], dict)
        for k, v in table.items():
            _expect(src, p + (k,), v, bool)
        req["allowed_profiles"] = dict(table)
        req["given"] = frozenset({"allowed_profiles"})
    if "allowed_sandbox_modes" in data:
        p = ("allowed_sandbox_modes",)
        modes = _expect(src, p, data[p[0]], list)
        req["allowed_sandbox_modes"] = tuple(_expect(src, p, m, str) for m in modes)
    perms = _expect(src, ("permissions",), data.get("permissions", {}), dict)
    _check_keys(src, ("permissions",), perms, ("filesystem", "network"))
    fs = _expect(src, ("permissions", "filesystem"), perms.get("filesystem", {}), dict)
    _check_keys(src, ("permissions", "filesystem"), fs, ("deny_read",))
    if "deny_read" in fs:
        p = ("permissions", "filesystem", "deny_read")
        req["deny_read"] = tuple(
            (_canon(src, p, _expect(src, p, x, str)), src.origin(p)) for x in _expect(src, p, fs["deny_read"], list)
        )
    net = _expect(src, ("permissions", "network"), perms.get("network", {}), dict)
    _check_keys(src, ("permissions", "network"), net, ("enabled", "dangerously_allow_all_unix_sockets", "unix_sockets"))
    if "enabled" in net:
        p = ("permissions", "network", "enabled")
        req["network_enabled"] = _expect(src, p, net["enabled"], bool)
        req["network_origin"] = src.origin(p)
    if "dangerously_allow_all_unix_sockets" in net:
        p = ("permissions", "network", "dangerously_allow_all_unix_sockets")
        req["allow_all_unix"] = _expect(src, p, net[p[-1]], bool)
        req["allow_all_unix_origin"] = src.origin(p)
    if "unix_sockets" in net:
        p = ("permissions", "network", "unix_sockets")
        out = []
        for k, v in _expect(src, p, net["unix_sockets"], dict).items():
            if v not in ("none", "deny"):
                raise src.error(p + (k,), 'requirements can only force "none"/"deny" here')
            out.append((_canon(src, p + (k,), k), src.origin(p + (k,))))
        req["unix_none"] = tuple(out)
    return Requirements(**req)


def _canon(src: Source, path: tuple[str, ...], raw: str) -> str:
    if not raw.startswith(("/", "~", "$")):
        raise src.error(path, "path must be absolute (or start with ~ or $VAR)")
    env = dict(os.environ)
    try:
        import pwd

        env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        pass
    try:
        return canonicalize(expand(raw, env=env))
    except KeyError as e:
        raise src.error(path, f"environment variable ${e.args[0]} is not set") from None
    except ValueError as e:
        raise src.error(path, str(e)) from None


_LEGACY_BUILTIN = {"read-only": ":read-only", "workspace-write": ":workspace",
                   "danger-full-access": ":danger-full-access"}


def _allowed(req: Requirements, name: str) -> bool:
    """Is the profile ``name`` on the closed list? (An alias counts under either spelling.)"""
    from ._builtins import ALIASES

    names = {name, ALIASES.get(name, name)} | {a for a, c in ALIASES.items() if c == name}
    return any(req.allowed_profiles.get(n) is True for n in names)


def check_profile_allowed(req: Requirements, chain: list[str], sandbox_mode: str | None) -> None:
    if req.file is None:
        return
    selected = _LEGACY_BUILTIN[sandbox_mode] if sandbox_mode is not None else chain[0]
    for name in dict.fromkeys([selected, *chain]):
        if req.allowed_profiles.get(name) is False:
            raise PolicyError(f"profile '{name}' is not allowed by the administrator's requirements",
                              file=req.file, key="allowed_permission_profiles")
    if "allowed_profiles" in req.given and not _allowed(req, selected):
        raise PolicyError(f"profile '{selected}' is not allowed by the administrator's requirements "
                          f"(allowed: {', '.join(n for n, v in req.allowed_profiles.items() if v) or 'none'})",
                          file=req.file, key="allowed_permission_profiles")


def sandbox_mode_of(policy: Policy) -> str:
    """The Codex sandbox mode a policy amounts to: ``/`` writable is danger-full-access;
    anything else writable, the network, or an AF_UNIX socket allowed (Codex's read-only
    mode has none of them; ``docker.sock`` is as good as a write) is workspace-write; else
    read-only. (What a profile writes short of
    ``/``, ``-w`` included, is bounded by this list, not by ``allowed_permission_profiles``.)"""
    writes = [r.path for r in policy.filesystem.rules if r.access is FsAccess.WRITE]
    if "/" in writes:
        return "danger-full-access"
    net = policy.network
    sockets = any(r.access is SocketAccess.ALLOW for r in net.unix_sockets)
    if writes or net.enabled or net.dangerously_allow_all_unix_sockets or sockets:
        return "workspace-write"
    return "read-only"


def check_sandbox_mode(policy: Policy, req: Requirements) -> None:
    if req.allowed_sandbox_modes is None:
        return
    mode = sandbox_mode_of(policy)
    if mode not in req.allowed_sandbox_modes:
        raise PolicyError(f"profile '{policy.name}' amounts to sandbox_mode '{mode}', which the "
                          f"administrator's requirements do not allow (allowed: "
                          f"{', '.join(req.allowed_sandbox_modes) or 'none'})",
                          file=req.file, key="allowed_sandbox_modes")


def apply_requirements(policy: Policy, req: Requirements) -> Policy:
    """Add the required restrictions; refuse user settings that conflict with them."""
    if req.file is None:
        return policy
    check_sandbox_mode(policy, req)
    rules = {r.path: r for r in policy.filesystem.rules}
    for path, origin in req.deny_read:
        for r in policy.filesystem.rules:
            if r.access is not FsAccess.DENY and is_within(r.path, path):
                raise PolicyError(f"{r.origin}: grants {r.access.value} on {r.path}, inside {path} "
                                  f"which the administrator's requirements ({origin}) deny")
        rules[path] = FsRule(path, FsAccess.DENY, origin)
    net = policy.network
    if req.network_enabled is False and net.enabled:
        raise PolicyError(f"the network is enabled, but the administrator's requirements "
                          f"({req.network_origin}) forbid it")
    if req.allow_all_unix is False and (net.dangerously_allow_all_unix_sockets or any(
            s.path == "/" and s.access is SocketAccess.ALLOW for s in net.unix_sockets)):
        raise PolicyError(f"every AF_UNIX socket is allowed (dangerously_allow_all_unix_sockets, or an allow rule at /), but the administrator's "
                          f"requirements ({req.allow_all_unix_origin}) forbid it")
    socks = {s.path: s for s in net.unix_sockets}
    for path, origin in req.unix_none:
        for s in net.unix_sockets:
            if s.access is SocketAccess.ALLOW and is_within(s.path, path):
                raise PolicyError(f"{s.origin}: allows AF_UNIX sockets at {s.path}, which the "
                                  f"administrator's requirements ({origin}) deny")
        socks[path] = UnixSocketRule(path, SocketAccess.NONE, origin)
    return policy.replace(
        filesystem=FilesystemPolicy(tuple(rules.values())),
        network=net.replace(unix_sockets=tuple(socks.values())) if isinstance(net, NetworkPolicy) else net,
    )
