"""``lsandbox.load_policy``: the one function that turns config + flags into a Policy.

The CLI calls it with its flags and the Python API exposes it, so a flag and the equivalent
config key go through exactly the same code and produce equal policies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ._errors import PolicyError
from .policy._loader import Config, ProfileSpec, materialize
from .policy._model import Policy
from .policy._requirements import (
    apply_requirements,
    check_profile_allowed,
    find_requirements,
    load_requirements,
)

DEFAULT_PROFILE = ":workspace"


def config_search_path(cwd: str, env: Mapping[str, str]) -> list[str]:
    """Where a config is looked for when ``-c`` is not given, in order."""
    home = env.get("HOME") or os.path.expanduser("~")
    return [
        os.path.join(cwd, "lsandbox.toml"),
        os.path.join(home, ".config", "lsandbox", "config.toml"),
        os.path.join(home, ".codex", "config.toml"),
    ]


def find_config(explicit: str | None, cwd: str, env: Mapping[str, str]) -> str | None:
    if explicit is not None:
        if not os.path.exists(explicit):
            raise PolicyError("config file does not exist", file=explicit)
        return explicit
    for path in config_search_path(cwd, env):
        if os.path.isfile(path):
            return path
    return None


def load_policy(
    config: str | None = None,
    profile: str | None = None,
    *,
    cwd: str | None = None,
    writable: Sequence[str] = (),
    allow_unix_sockets: Sequence[str] = (),
    allow_domains: Sequence[str] = (),
    network: bool | None = None,
    requirements: str | None = None,
    search: bool = True,
    env: Mapping[str, str] | None = None,
) -> Policy:
    """Load the effective policy.

    ``config``: a TOML file (Codex ``config.toml`` or ``lsandbox.toml``); when None and
    ``search``, the standard locations are searched. ``profile``: a profile name (``-p``),
    default ``default_permissions`` / legacy ``sandbox_mode`` / ``:workspace``.
    ``writable`` (``-w``) adds workspace roots; ``allow_unix_sockets``
    (``--allow-unix-socket``) adds ``"allow"`` socket rules; ``allow_domains``
    (``--allow-domain``) adds ``domains = { NAME = "allow" }`` rules; ``network`` overrides
    ``network.enabled``. Raises :class:`PolicyError` with file:line:key on bad input.
    """
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    path = find_config(config, cwd, env) if (config is not None or search) else None
    cfg = Config.from_file(path) if path else Config.empty()
    req = load_requirements(find_requirements(requirements, env))

    sandbox_mode = None
    spec: ProfileSpec
    if profile is not None:
        spec = cfg.resolve(profile)
    elif "sandbox_mode" in cfg.data:
        sandbox_mode = cfg.data["sandbox_mode"]
        spec = cfg.legacy_spec()
    elif "default_permissions" in cfg.data:
        spec = cfg.resolve(cfg.data["default_permissions"], from_key=("default_permissions",))
    else:
        spec = cfg.resolve(DEFAULT_PROFILE)
    check_profile_allowed(req, spec.chain, sandbox_mode)
    for sock in allow_unix_sockets:
        if not sock.startswith(("/", "~", "$")):
            raise PolicyError(f"--allow-unix-socket {sock}: socket path must be absolute")
    domains = []
    for name in allow_domains:
        from .policy._domains import check_pattern

        try:
            domains.append((check_pattern(name), "--allow-domain"))
        except ValueError as e:
            raise PolicyError(f"--allow-domain {name}: {e}") from None
    policy = materialize(
        spec,
        cwd=cwd,
        extra_roots=[(w, "-w") for w in writable],
        extra_sockets=[(s, "--allow-unix-socket") for s in allow_unix_sockets],
        extra_domains=domains,
        network=network,
        env=env,
    )
    return apply_requirements(policy, req)
