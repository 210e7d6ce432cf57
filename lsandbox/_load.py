"""``lsandbox.load_policy``: the one function that turns config + flags into a Policy.

The CLI calls it with its flags and the Python API exposes it, so a flag and the equivalent
config key go through exactly the same code and produce equal policies.
"""

from __future__ import annotations

import os

from ._errors import PolicyError
from .policy._builtins import ALIASES
from .policy._environment import EnvironmentPolicy
from .policy._loader import SOCKET_GLOB, Config, Entry, ProfileSpec, env_name_problem, materialize
from .policy._model import FsAccess, Policy
from .policy._paths import path_problem
from .policy._requirements import (
    apply_requirements,
    check_profile_allowed,
    find_requirements,
    load_requirements,
)

TYPE_CHECKING = False  # the launch path does not import collections.abc; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_PROFILE = ":workspace"


def config_search_path(cwd: str, env: Mapping[str, str]) -> list[str]:
    """Where a config is looked for when ``-c`` is not given, in order (the first, in the
    working directory, only once trusted: ``_trust``)."""
    home = env.get("HOME") or os.path.expanduser("~")
    return [
        os.path.join(cwd, "lsandbox.toml"),
        os.path.join(home, ".config", "lsandbox", "config.toml"),
        os.path.join(home, ".codex", "config.toml"),
    ]


def find_config(explicit: str | None, cwd: str, env: Mapping[str, str]) -> str | None:
    if explicit is not None:
        if "\0" in explicit:
            raise PolicyError("config file does not exist", file=explicit)
        try:
            os.stat(explicit)
        except OSError as e:  # say why: a missing file and an unsearchable parent differ
            import errno

            why = "does not exist" if e.errno == errno.ENOENT else f"cannot be read ({e.strerror})"
            raise PolicyError(f"config file {why}", file=explicit) from None
        return explicit
    search = config_search_path(cwd, env)
    if not os.path.isfile(search[0]):
        from ._trust import was_trusted

        if was_trusted(search[0], env):
            raise PolicyError("was trusted and is now missing or not a regular file (a sandbox may have "
                              "removed it, to run under a looser policy): restore it, or forget it with "
                              "`lsandbox trust --forget`", file=search[0])
    for path in search:
        if os.path.isfile(path):
            return path
    return None


def needs_trust(explicit: str | None, path: str, cwd: str) -> bool:
    """Whether ``path``, found for ``explicit``, is the working directory's config found by
    the search (``_trust``): one named with ``-c`` is the user's choice."""
    return explicit is None and path == os.path.join(cwd, "lsandbox.toml")


def _workspace_cwd(cwd: str | None) -> str:
    """The directory the workspace root is (``cwd``, else the process's own), checked."""
    if cwd is None:
        try:
            return os.getcwd()
        except FileNotFoundError:
            raise PolicyError("the current directory no longer exists (deleted?); cd elsewhere "
                              "or name the workspace with --chdir DIR") from None
    problem = path_problem(os.path.abspath(cwd), directory=True)
    if problem:
        raise PolicyError(f"working directory {cwd}: {problem}")
    return os.path.abspath(cwd)  # $CWD is absolute: a relative -C was joined onto itself


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
    read: Sequence[str] = (),
    deny: Sequence[str] = (),
    setenv: Sequence[str] | Mapping[str, str] = (),
    unsetenv: Sequence[str] = (),
    clearenv: bool = False,
) -> Policy:
    """Load the effective policy.

    ``config``: a TOML file (Codex ``config.toml`` or ``lsandbox.toml``); when None and
    ``search``, the standard locations are searched. ``profile``: a profile name (``-p``),
    default ``default_permissions`` / legacy ``sandbox_mode`` / ``:workspace``.
    ``writable`` (``-w``) adds workspace roots; ``allow_unix_sockets``
    (``--allow-unix-socket``) adds ``"allow"`` socket rules; ``network`` overrides
    ``network.enabled``. ``read``/``deny`` (``--read``/``--deny``) add filesystem entries
    ``PATH = "read"``/``"deny"``. ``setenv`` (``K=V`` strings or a mapping), ``unsetenv``
    and ``clearenv`` extend ``[shell_environment_policy]``'s ``set``, ``exclude`` and
    ``inherit = "none"``. ``cwd`` (``-C``) is the workspace root and ``$CWD``.
    ``allow_domains`` (``--allow-domain``) adds ``domains = { NAME = "allow" }`` rules.
    Raises :class:`PolicyError` with file:line:key on bad input.
    """
    env = os.environ if env is None else env
    cwd = _workspace_cwd(cwd)
    path = find_config(config, cwd, env) if (config is not None or search) else None
    if path and needs_trust(config, path, cwd):
        from ._trust import require

        cfg = Config.from_file(path, require(path, env))
    else:
        cfg = Config.from_file(path) if path else Config.empty()
    reqs = [load_requirements(f) for f in find_requirements(requirements, env)]

    sandbox_mode = None
    spec: ProfileSpec
    legacy = cfg.sandbox_mode()
    if profile is not None:
        spec = cfg.resolve(profile)
    elif legacy is not None:
        sandbox_mode = legacy[0]
        spec = cfg.legacy_spec(*legacy)
    elif "default_permissions" in cfg.data:
        spec = cfg.resolve(cfg.data["default_permissions"], from_key=("default_permissions",))
    else:
        spec = cfg.resolve(DEFAULT_PROFILE)
    if sandbox_mode is None and ALIASES.get(spec.name, spec.name) == ":workspace":
        cfg.apply_workspace_write(spec)
    for req in reqs:
        check_profile_allowed(req, spec.chain, sandbox_mode)
    for sock in allow_unix_sockets:
        if not sock.startswith(("/", "~", "$")):
            raise PolicyError(f"--allow-unix-socket {sock}: socket path must be absolute")
        if any(c in sock for c in "*?["):
            raise PolicyError(f"--allow-unix-socket {sock}: {SOCKET_GLOB}")
    for flag, paths, access in (("--read", read, FsAccess.READ), ("--deny", deny, FsAccess.DENY)):
        for raw in paths:
            spec.fs[(_flag_fs_path(flag, raw), ".")] = Entry(access, flag)
    environment = _environment(cfg, setenv, unsetenv, clearenv)
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
    if not environment.is_default:
        policy = policy.replace(environment=environment)
    for req in reqs:
        policy = apply_requirements(policy, req)
    return policy


def _flag_fs_path(flag: str, raw: str) -> str:
    """What the config loader checks of a filesystem key, for ``--read``/``--deny``."""
    if raw.endswith("/**"):
        raw = raw[:-3] or "/"
    if any(c in raw for c in "*?["):
        raise PolicyError(f"{flag} {raw}: glob patterns are not supported: Landlock grants by "
                          "inode, so a pattern could not cover files created after launch")
    if not raw.startswith(("/", "~", "$")):
        raise PolicyError(f"{flag} {raw}: path must be absolute (or start with ~ or $VAR)")
    return raw


def _environment(cfg: Config, setenv: Sequence[str] | Mapping[str, str], unsetenv: Sequence[str],
                 clearenv: bool) -> EnvironmentPolicy:
    """The config's ``[shell_environment_policy]`` with the flags applied on top."""
    base = cfg.environment() if "shell_environment_policy" in cfg.data else EnvironmentPolicy()
    if not (setenv or unsetenv or clearenv):
        return base
    pairs = dict(base.set)
    from collections.abc import Mapping  # only with --setenv or setenv=

    items = setenv.items() if isinstance(setenv, Mapping) else (_split_setenv(a) for a in setenv)
    for k, v in items:
        problem = env_name_problem(k, pattern=False) or ("a value cannot contain a NUL" if "\0" in v else None)
        if problem:
            raise PolicyError(f"--setenv {k}=...: {problem}")  # the value may be a secret
        pairs[k] = v
    for k in unsetenv:
        problem = env_name_problem(k, pattern=True)
        if problem:
            raise PolicyError(f"--unsetenv {k}: {problem}")
    return base.replace(inherit="none" if clearenv else base.inherit,
                        exclude=base.exclude + tuple(unsetenv), set=tuple(pairs.items()))


def _split_setenv(arg: str) -> tuple[str, str]:
    k, eq, v = arg.partition("=")
    if not eq:
        raise PolicyError(f"--setenv {arg}: expected NAME=VALUE")
    return k, v
