"""The Codex-compatible TOML loader: a config file (+ flags + requirements) -> :class:`Policy`.

Schema (Codex's permission profiles, ``codex-rs/config/src/permissions_toml.rs``), key by key:

* top level: ``default_permissions``, ``[permissions.<id>]``, and the legacy ``sandbox_mode``
  + ``[sandbox_workspace_write]``. Every other top-level key belongs to another Codex feature
  (model, approval policy, ...) and is ignored, so a Codex ``config.toml`` loads unchanged;
  a key within edit distance of one of ours is reported as a likely typo.
* a profile: ``description``, ``extends``, ``workspace_roots``, ``filesystem``, ``network``.
  Anything else is an error (Codex: ``deny_unknown_fields``).
* ``filesystem``: ``PATH = "read"|"write"|"deny"`` or ``PATH = { SUBPATH = MODE }``; PATH is
  absolute, ``~/...``, ``$VAR/...`` or a special key (``:root``, ``:minimal``,
  ``:workspace_roots``, ``:tmpdir``, ``:slash_tmp``). A trailing ``/**`` means the directory.
* ``network``: ``enabled``, ``mode = "full"|"limited"``, ``domains = { PATTERN =
  "allow"|"deny" }`` (``_domains``), ``allow_local_binding``, ``proxy_url`` (a loopback
  ``http://`` URL: its port is the proxy's), ``unix_sockets = { PATH = "allow"|"none"|"deny" }``,
  legacy ``allow_unix_sockets = [PATH, ...]``, ``dangerously_allow_all_unix_sockets``.

Decisions where Codex is silent or where we cannot enforce what it accepts:

* ``domains`` (or ``mode = "limited"``) turns on the *proxied* network: TCP through the
  filtering proxy only. It implies ``enabled = true`` (so a profile extending ``:workspace``
  needs no more), except that ``enabled = false`` in the same table is a contradiction and
  an error. ``--allow-domain NAME`` is ``domains = { NAME = "allow" }``.
* The proxy settings we cannot honour are refused with an error naming the key: SOCKS5
  (``enable_socks5``, ``socks_url``, ``enable_socks5_udp``), an upstream proxy
  (``allow_upstream_proxy``), a proxy listening beyond loopback
  (``dangerously_allow_non_loopback_proxy``) and TLS interception (``mitm``). Boolean ones
  set to ``false`` (their Codex default, asking for nothing) are accepted.
* Glob patterns (``*``, ``?``, ``[``) in filesystem paths are refused: Landlock grants by
  inode, so a pattern could not cover files created after launch. ``glob_scan_max_depth`` is
  refused with them.
* ``extends`` merges per key: the child's entry for the same filesystem key, socket path or
  network field replaces the parent's; everything else is inherited.
* When two keys resolve to the same canonical path (``:slash_tmp`` and ``:tmpdir`` both being
  ``/tmp``), the more restrictive mode wins (deny > read > write).
* ``workspace_roots`` (and ``-w DIR``, which is the same setting) add roots to the current
  directory. When the profile has no ``:workspace_roots`` entry, each added root gets the
  ``:workspace`` pattern (writable, with ``.git``/``.agents``/``.codex``/``.lsandbox``
  read-only), so ``-w`` is never silently ignored.
* Legacy ``sandbox_mode`` wins over ``default_permissions`` (as in Codex) unless a profile is
  named explicitly with ``-p``; the selected Codex config profile's ``sandbox_mode``
  (``profile = "x"``, ``[profiles.x]``) wins over the top-level one. ``[sandbox_workspace_write]``
  also configures the built-in ``:workspace`` when it is the profile (Codex does the same).
* A child's ``enabled = false`` drops the domains (and limited mode) it inherits: they would
  turn the network back on as the proxied network. ``extends`` chains are at most
  :data:`MAX_EXTENDS` long.
"""

from __future__ import annotations

import os
import stat as _stat
import sys

from lsandbox_records import Record, field

from .._errors import PolicyError, UnenforceableError
from ._builtins import (
    ALIASES,
    BUILTIN_PROFILES,
    EXTENDABLE,
    MINIMAL_PATHS,
    PROTECTED_IN_WORKSPACE,
    WORKSPACE_ROOT_PATTERN,
    builtin_names,
)
from ._domains import DomainAccess, DomainRule, NetMode, check_pattern
from ._environment import INHERIT, EnvironmentPolicy
from ._longest import PathTable
from ._model import (
    DEFAULT_PROXY_PORT,
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
)
from ._paths import canonicalize, expand, is_within, length_problem, path_problem

TYPE_CHECKING = False  # ``typing`` stays off the launch path; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from ._toml_lines import KeyPath, LineIndex


def _tomllib() -> Any:
    """tomllib, imported when a file is read (the built-in profiles need no parser)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib

TOP_LEVEL_KEYS = ("default_permissions", "permissions", "sandbox_mode", "sandbox_workspace_write",
                  "shell_environment_policy", "profile", "profiles")
ENV_KEYS = ("inherit", "ignore_default_excludes", "exclude", "set", "include_only",
            "experimental_use_profile", "filters")
PROFILE_KEYS = ("description", "extends", "workspace_roots", "filesystem", "network")
NETWORK_KEYS = (
    "enabled",
    "mode",
    "domains",
    "allow_local_binding",
    "proxy_url",
    "unix_sockets",
    "allow_unix_sockets",
    "dangerously_allow_all_unix_sockets",
)
#: Valid Codex proxy keys we cannot honour: refused unless set to false/empty.
UNENFORCED_NETWORK_KEYS = (
    "enable_socks5",
    "socks_url",
    "enable_socks5_udp",
    "allow_upstream_proxy",
    "dangerously_allow_non_loopback_proxy",
    "mitm",
)
SPECIAL_FS_KEYS = (":root", ":minimal", ":workspace_roots", ":tmpdir", ":slash_tmp")
LEGACY_WW_KEYS = ("writable_roots", "network_access", "exclude_tmpdir_env_var", "exclude_slash_tmp")
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
_RESTRICTIVENESS = {FsAccess.WRITE: 0, FsAccess.READ: 1, FsAccess.DENY: 2}


def _fmt_key(path: Sequence[str]) -> str:
    out = []
    for p in path:
        out.append(p if p and all(c.isalnum() or c in "_-" for c in p) else f'"{p}"')
    return ".".join(out)


def _suggest(word: str, valid: Iterable[str]) -> str:
    import difflib  # only on errors

    match = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


_TYPE_NAMES = {str: "a string", bool: "a boolean", dict: "a table", list: "an array", int: "an integer"}


def _type_name(value: Any) -> str:
    for t, name in ((bool, "a boolean"), (str, "a string"), (dict, "a table"), (list, "an array")):
        if isinstance(value, t):
            return name
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    return type(value).__name__


class _NoLines:
    """The line index of a document without text (the built-in profiles): every key is on
    line 1, as ``LineIndex("")`` says, without importing the TOML line scanner."""

    def line(self, path: KeyPath) -> int:
        return 1


class Source(Record, frozen=False):
    """One loaded TOML document (for error positions)."""

    file: str
    lines: LineIndex | _NoLines

    def error(self, path: KeyPath, message: str, cls: type[PolicyError] = PolicyError) -> PolicyError:
        return cls(message, file=self.file, line=self.lines.line(path), key=_fmt_key(path))

    def origin(self, path: KeyPath) -> str:
        return f"{self.file}:{self.lines.line(path)}"


_BUILTIN_SOURCE = Source("<built-in>", _NoLines())
MAX_CONFIG_BYTES = 4 << 20
MAX_EXTENDS = 64  # deeper chains are a mistake (and Python's recursion limit is near)


def read_toml(path: str, verify: Callable[[bytes], None] | None = None) -> tuple[dict[str, Any], Source]:
    """Read and parse ``path``; a syntax error becomes a PolicyError with its line.
    ``verify`` sees the bytes read before they are parsed (``_trust``), and may refuse them;
    such a file must be a regular file, opened without waiting (a FIFO put in its place
    after the search found a file must not hang the run). ``-c <(cmd)`` still reads a pipe."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | (os.O_NONBLOCK if verify else 0))
        with open(fd, "rb") as f:
            if verify is not None and not _stat.S_ISREG(os.fstat(fd).st_mode):
                raise PolicyError("is not a regular file", file=path)
            raw = f.read(MAX_CONFIG_BYTES + 1)  # bounded: `-c /dev/zero` must not eat memory
    except OSError as e:
        raise PolicyError(f"cannot read config: {e.strerror}", file=path) from None
    except ValueError as e:  # an embedded NUL in the name
        raise PolicyError(f"cannot read config: {e}", file=path) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise PolicyError(f"config is larger than {MAX_CONFIG_BYTES >> 20} MiB", file=path)
    if verify is not None:
        verify(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("config is not valid UTF-8", file=path) from None
    return parse_toml(text, path)


def parse_toml(text: str, filename: str) -> tuple[dict[str, Any], Source]:
    from ._toml_lines import LineIndex

    tomllib = _tomllib()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        import re

        m = re.search(r"\(at line (\d+)", str(e))
        line = int(m.group(1)) if m else getattr(e, "lineno", None)
        msg = str(e).split(" (at ")[0]
        raise PolicyError(f"invalid TOML: {msg}", file=filename, line=line) from None
    return data, Source(filename, LineIndex(text))


# --------------------------------------------------------------------------- profile specs


class Entry(Record, frozen=False):
    """One setting with where it came from."""

    value: Any
    origin: str


class ProfileSpec(Record, frozen=False):
    """A profile after ``extends`` merging, before paths are expanded."""

    name: str
    description: str = ""
    fs: dict[tuple[str, str], Entry] = field(default_factory=dict)  # (base, subpath) -> FsAccess
    workspace_roots: list[Entry] = field(default_factory=list)  # raw path strings
    enabled: Entry | None = None
    unix_sockets: dict[str, Entry] = field(default_factory=dict)  # raw path -> SocketAccess
    allow_all_unix: Entry | None = None
    mode: Entry | None = None  # NetMode
    domains: dict[str, Entry] = field(default_factory=dict)  # normalized pattern -> DomainAccess
    allow_local_binding: Entry | None = None
    proxy_port: Entry | None = None
    chain: list[str] = field(default_factory=list)
    path_sources: dict[str, Source] = field(default_factory=dict)

    def merged_over(self, parent: ProfileSpec) -> ProfileSpec:
        out = ProfileSpec(name=self.name, description=self.description or parent.description)
        out.fs = {**parent.fs, **self.fs}
        out.workspace_roots = [*parent.workspace_roots, *self.workspace_roots]
        out.enabled = self.enabled or parent.enabled
        out.unix_sockets = {**parent.unix_sockets, **self.unix_sockets}
        out.allow_all_unix = self.allow_all_unix or parent.allow_all_unix
        out.mode = self.mode or parent.mode
        out.domains = {**parent.domains, **self.domains}
        if self.enabled is not None and self.enabled.value is False:
            # The child turns the network off: the parent's domains (or limited mode) would
            # turn it back on as the proxied network. (Its own cannot be there: refused.)
            out.mode, out.domains = self.mode, dict(self.domains)
        out.allow_local_binding = self.allow_local_binding or parent.allow_local_binding
        out.proxy_port = self.proxy_port or parent.proxy_port
        out.chain = [self.name, *parent.chain]
        return out


def _expect(src: Source, path: KeyPath, value: Any, typ: type) -> Any:
    ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
    if not ok:
        raise src.error(path, f"expected {_TYPE_NAMES[typ]}, got {_type_name(value)}")
    return value


def _check_keys(src: Source, path: KeyPath, table: Mapping[str, Any], valid: Sequence[str]) -> None:
    for key in table:
        if key not in valid:
            raise src.error(path + (key,), f"unknown key{_suggest(key, valid)}")


def _fs_mode(src: Source, path: KeyPath, value: Any) -> FsAccess:
    if not isinstance(value, str):
        raise src.error(path, f'expected "read", "write" or "deny", got {_type_name(value)}')
    try:
        return FsAccess(value)
    except ValueError:
        raise src.error(
            path, f'invalid mode "{value}": expected "read", "write" or "deny"'
            f"{_suggest(value, ['read', 'write', 'deny'])}"
        ) from None


def _check_fs_path(src: Source, path: KeyPath, raw: str, *, sub: bool) -> str:
    if raw.endswith("/**"):
        raw = raw[:-3] or "/"
    if any(c in raw for c in "*?["):
        raise src.error(
            path,
            "glob patterns are not supported: Landlock grants by inode, so a pattern could "
            "not cover files created after launch; list the paths",
        )
    if not raw:
        raise src.error(path, "empty path")
    if not sub and not (raw.startswith(("/", "~", "$"))):
        raise src.error(path, "filesystem path must be absolute (or start with ~ or $VAR)")
    if sub and raw.startswith("/"):
        raise src.error(path, "a scoped subpath must be relative to its parent entry")
    if sub and any(part in (".", "..") for part in raw.rstrip("/").split("/")) and raw != ".":
        raise src.error(path, "a scoped subpath names a path below its parent entry: no '.' or "
                        "'..' components (as in Codex)")
    return raw


SOCKET_GLOB = ("glob patterns are not supported in socket paths: a rule names one path and "
               "everything below it; list the paths (or their common directory)")


def _socket_path(src: Source, path: KeyPath, raw: Any) -> str:
    raw = _expect(src, path, raw, str)
    if not raw.startswith(("/", "~", "$")):
        raise src.error(path, "socket path must be absolute (or start with ~ or $VAR)")
    if any(c in raw for c in "*?["):
        raise src.error(path, SOCKET_GLOB)
    return raw


def env_name_problem(name: str, *, pattern: bool) -> str | None:
    """Why ``name`` cannot be an environment variable name (or a pattern of names)."""
    if not name:
        return "empty name"
    if "=" in name or "\0" in name:
        return "a name cannot contain '=' or a NUL"
    if not pattern and any(c in name for c in "*?["):
        return "glob characters in a variable name (patterns go in exclude/include_only)"
    return None


def _env_name(src: Source, path: KeyPath, value: Any, *, pattern: bool) -> str:
    problem = env_name_problem(_expect(src, path, value, str), pattern=pattern)
    if problem:
        raise src.error(path, problem)
    return value


def _env_value(src: Source, path: KeyPath, value: Any) -> str:
    if "\0" in _expect(src, path, value, str):
        raise src.error(path, "a value cannot contain a NUL")
    return value


def _parse_profile(name: str, table: Any, src: Source, base: KeyPath) -> tuple[ProfileSpec, str | None]:
    _expect(src, base, table, dict)
    _check_keys(src, base, table, PROFILE_KEYS)
    spec = ProfileSpec(name=name, chain=[name])
    extends = None
    if "description" in table:
        spec.description = _expect(src, base + ("description",), table["description"], str)
    if "extends" in table:
        extends = _expect(src, base + ("extends",), table["extends"], str)
    if "workspace_roots" in table:
        p = base + ("workspace_roots",)
        value = table["workspace_roots"]
        if isinstance(value, dict):  # Codex's form: { PATH = true }; false leaves PATH out
            roots = [k for k, on in value.items() if _expect(src, p + (k,), on, bool)]
        else:
            roots = _expect(src, p, value, list)
        for i, root in enumerate(roots):
            _expect(src, p, root, str)
            spec.workspace_roots.append(Entry(root, src.origin(p)))
            spec.path_sources[f"wr{i}"] = src
    if "filesystem" in table:
        _parse_filesystem(spec, table["filesystem"], src, base + ("filesystem",))
    if "network" in table:
        _parse_network(spec, table["network"], src, base + ("network",))
    return spec, extends


def _parse_filesystem(spec: ProfileSpec, fs: Any, src: Source, base: KeyPath) -> None:
    _expect(src, base, fs, dict)
    for key, value in fs.items():
        p = base + (key,)
        if key == "glob_scan_max_depth":
            raise src.error(p, "has no effect: lsandbox does not support glob patterns")
        if key.startswith(":"):
            if key not in SPECIAL_FS_KEYS:
                raise src.error(
                    p, f"unknown special path{_suggest(key, SPECIAL_FS_KEYS)}; "
                    f"valid: {', '.join(SPECIAL_FS_KEYS)}"
                )
        else:
            key = _check_fs_path(src, p, key, sub=False)
        if isinstance(value, dict):
            for subkey, mode in value.items():
                sp = p + (subkey,)
                sub = _check_fs_path(src, sp, subkey, sub=True)
                _put_stricter(spec.fs, (key, os.path.normpath(sub)), Entry(_fs_mode(src, sp, mode), src.origin(sp)))
        else:
            _put_stricter(spec.fs, (key, "."), Entry(_fs_mode(src, p, value), src.origin(p)))


def _put_stricter(fs: dict[tuple[str, str], Entry], key: tuple[str, str], entry: Entry) -> None:
    """Two spellings of one entry in one table (``"a"`` and ``"a/"``): the more restrictive
    mode wins, whatever their order, as for two keys naming one canonical path."""
    old = fs.get(key)
    if old is None or _RESTRICTIVENESS[entry.value] > _RESTRICTIVENESS[old.value]:
        fs[key] = entry


def _parse_network(spec: ProfileSpec, net: Any, src: Source, base: KeyPath) -> None:
    _expect(src, base, net, dict)
    for key, value in net.items():
        p = base + (key,)
        if key in UNENFORCED_NETWORK_KEYS:
            if value is False or value == {} or value == []:
                continue
            raise src.error(
                p,
                "is a Codex proxy setting that lsandbox cannot enforce (its proxy speaks HTTP "
                "CONNECT and plain HTTP on loopback only: no SOCKS5, upstream proxy or TLS "
                "interception); remove it",
                UnenforceableError,
            )
        if key not in NETWORK_KEYS:
            raise src.error(p, f"unknown key{_suggest(key, NETWORK_KEYS + UNENFORCED_NETWORK_KEYS)}")
        if key == "enabled":
            spec.enabled = Entry(_expect(src, p, value, bool), src.origin(p))
        elif key == "mode":
            _expect(src, p, value, str)
            if value not in ("full", "limited"):
                raise src.error(p, f'invalid mode "{value}": expected "full" or "limited"')
            spec.mode = Entry(NetMode(value), src.origin(p))
        elif key == "domains":
            _expect(src, p, value, dict)
            for pattern, verdict in value.items():
                dp = p + (pattern,)
                if verdict not in ("allow", "deny"):
                    raise src.error(dp, f'expected "allow" or "deny", got {verdict!r}')
                try:
                    norm = check_pattern(pattern)
                except ValueError as e:
                    raise src.error(dp, str(e)) from None
                old = spec.domains.get(norm)
                if old is not None and old.value is DomainAccess.DENY:
                    continue  # two spellings of one pattern: deny beats allow at a tie
                spec.domains[norm] = Entry(DomainAccess(verdict), src.origin(dp))
        elif key == "allow_local_binding":
            spec.allow_local_binding = Entry(_expect(src, p, value, bool), src.origin(p))
        elif key == "proxy_url":
            try:
                port = proxy_url_port(_expect(src, p, value, str))
            except ValueError as e:
                raise src.error(p, str(e), UnenforceableError) from None
            spec.proxy_port = Entry(port, src.origin(p))
        elif key == "unix_sockets":
            _expect(src, p, value, dict)
            for sock, verdict in value.items():
                sp = p + (sock,)
                raw = _socket_path(src, sp, sock)
                if verdict not in ("allow", "none", "deny"):
                    raise src.error(sp, f'expected "allow", "none" or "deny", got {verdict!r}')
                acc = SocketAccess.ALLOW if verdict == "allow" else SocketAccess.NONE
                spec.unix_sockets[raw] = Entry(acc, src.origin(sp))
                spec.path_sources[raw] = src
        elif key == "allow_unix_sockets":
            _expect(src, p, value, list)
            for sock in value:
                raw = _socket_path(src, p, sock)
                spec.unix_sockets[raw] = Entry(SocketAccess.ALLOW, src.origin(p))
                spec.path_sources[raw] = src
        elif key == "dangerously_allow_all_unix_sockets":
            spec.allow_all_unix = Entry(_expect(src, p, value, bool), src.origin(p))
    proxied = bool(net.get("domains")) or net.get("mode") == "limited"
    if proxied and net.get("enabled") is False:
        key = "domains" if net.get("domains") else "mode"
        raise src.error(base + (key,), "needs the network: it contradicts enabled = false in the "
                        "same table (remove one of them)")


def proxy_url_port(url: str) -> int:
    """The port of a Codex ``proxy_url`` we can honour: ``http://`` on loopback (the sandbox
    reaches the proxy on its own loopback; another address could not be honoured)."""
    scheme, sep, rest = url.partition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if not sep or scheme.lower() != "http" or host not in ("127.0.0.1", "localhost") \
            or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"proxy_url {url!r}: only http://127.0.0.1:PORT (or localhost) can be "
                         "honoured: the proxy listens on the sandbox's loopback")
    return int(port)


# --------------------------------------------------------------------------- config file


class Config(Record, frozen=False):
    """A parsed config file: its profiles (raw) and where they are."""

    data: dict[str, Any]
    src: Source

    @classmethod
    def from_file(cls, path: str, verify: Callable[[bytes], None] | None = None) -> Config:
        data, src = read_toml(path, verify)
        cfg = cls(data, src)
        cfg.validate_top_level()
        return cfg

    @classmethod
    def empty(cls) -> Config:
        return cls({}, _BUILTIN_SOURCE)

    def validate_top_level(self) -> None:
        src, data = self.src, self.data
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                import difflib  # only on errors

                close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.8)
                if close:
                    raise src.error((key,), f"unknown key (did you mean '{close[0]}'?)")
        if "default_permissions" in data:
            _expect(src, ("default_permissions",), data["default_permissions"], str)
        perms = data.get("permissions", {})
        _expect(src, ("permissions",), perms, dict)
        for name in perms:
            if name.startswith(":"):
                raise src.error(
                    ("permissions", name),
                    "profile names starting with ':' are reserved for built-ins; "
                    "this would redefine a built-in" if name in BUILTIN_PROFILES or name in ALIASES
                    else "profile names starting with ':' are reserved for built-ins",
                )
        if "sandbox_mode" in data:
            mode = _expect(src, ("sandbox_mode",), data["sandbox_mode"], str)
            if mode not in SANDBOX_MODES:
                raise src.error(
                    ("sandbox_mode",),
                    f'invalid sandbox_mode "{mode}"{_suggest(mode, SANDBOX_MODES)}; '
                    f"valid: {', '.join(SANDBOX_MODES)}",
                )
        if "sandbox_workspace_write" in data:
            ww = _expect(src, ("sandbox_workspace_write",), data["sandbox_workspace_write"], dict)
            _check_keys(src, ("sandbox_workspace_write",), ww, LEGACY_WW_KEYS)
        if "shell_environment_policy" in data:
            self.environment()
        # Parse every profile now: an error in an unused profile is still an error.
        for name, table in perms.items():
            _parse_profile(name, table, src, ("permissions", name))

    def environment(self) -> EnvironmentPolicy:
        """``[shell_environment_policy]`` (Codex's keys, see ``_environment``); keys lsandbox
        cannot honour are refused by name."""
        src, base = self.src, ("shell_environment_policy",)
        table = _expect(src, base, self.data.get("shell_environment_policy", {}), dict)
        _check_keys(src, base, table, ENV_KEYS)
        if table.get("experimental_use_profile", False) is not False:
            raise src.error(base + ("experimental_use_profile",),
                            "lsandbox runs the command itself, not through a shell profile; "
                            "remove it or set it to false", UnenforceableError)
        if "filters" in table:
            raise src.error(base + ("filters",), "the keyed filter table is not supported by "
                            "lsandbox; use exclude and include_only", UnenforceableError)
        kw: dict[str, Any] = {}
        if "inherit" in table:
            p = base + ("inherit",)
            value = _expect(src, p, table["inherit"], str)
            if value not in INHERIT:
                raise src.error(p, f'invalid inherit "{value}"{_suggest(value, INHERIT)}; '
                                   f"valid: {', '.join(INHERIT)}")
            kw["inherit"] = value
        if "ignore_default_excludes" in table:
            kw["ignore_default_excludes"] = _expect(src, base + ("ignore_default_excludes",),
                                                    table["ignore_default_excludes"], bool)
        for key in ("exclude", "include_only"):
            if key in table:
                p = base + (key,)
                kw[key] = tuple(_env_name(src, p, x, pattern=True)
                                for x in _expect(src, p, table[key], list))
        if "set" in table:
            p = base + ("set",)
            pairs = []
            for k, v in _expect(src, p, table["set"], dict).items():
                pairs.append((_env_name(src, p + (k,), k, pattern=False),
                              _env_value(src, p + (k,), v)))
            kw["set"] = tuple(pairs)
        return EnvironmentPolicy(**kw)

    @property
    def profiles(self) -> dict[str, Any]:
        return self.data.get("permissions", {})

    def resolve(self, name: str, *, from_key: KeyPath | None = None) -> ProfileSpec:
        """Resolve ``name`` (user profile or built-in) through its ``extends`` chain."""
        return self._resolve(name, [], from_key)

    def _unknown(self, name: str, from_key: KeyPath | None) -> PolicyError:
        if name.startswith(":"):
            msg = f"unknown built-in profile '{name}'; valid built-ins: {', '.join(builtin_names())}"
        else:
            valid = sorted(self.profiles) + builtin_names()
            msg = f"unknown profile '{name}'{_suggest(name, valid)}; defined: {', '.join(valid)}"
        if from_key is None:
            return PolicyError(msg, file=None if self.src is _BUILTIN_SOURCE else self.src.file)
        return self.src.error(from_key, msg)

    def _resolve(self, name: str, seen: list[str], from_key: KeyPath | None) -> ProfileSpec:
        if name in seen:
            cycle = " -> ".join([*seen[seen.index(name):], name])
            raise self.src.error(from_key or (), f"extends cycle: {cycle}")
        if len(seen) >= MAX_EXTENDS:
            raise self.src.error(from_key or (), f"extends chain longer than {MAX_EXTENDS} profiles")
        canonical = ALIASES.get(name, name)
        if canonical in BUILTIN_PROFILES:
            spec, _ = _parse_profile(canonical, BUILTIN_PROFILES[canonical], _BUILTIN_SOURCE, ())
            for e in spec.fs.values():
                e.origin = canonical
            if spec.enabled:
                spec.enabled.origin = canonical
            if spec.allow_all_unix:
                spec.allow_all_unix.origin = canonical
            spec.name = name
            return spec
        if name.startswith(":") or name not in self.profiles:
            raise self._unknown(name, from_key)
        base = ("permissions", name)
        spec, extends = _parse_profile(name, self.profiles[name], self.src, base)
        if extends is None:
            return spec
        ext_key = base + ("extends",)
        ext_canonical = ALIASES.get(extends, extends)
        if ext_canonical in BUILTIN_PROFILES and ext_canonical not in EXTENDABLE:
            raise self.src.error(
                ext_key,
                f"built-in '{extends}' cannot be extended; extendable: {', '.join(sorted(EXTENDABLE))}",
            )
        parent = self._resolve(extends, [*seen, name], ext_key)
        merged = spec.merged_over(parent)
        merged.path_sources = {**parent.path_sources, **spec.path_sources}
        return merged

    def sandbox_mode(self) -> tuple[str, KeyPath] | None:
        """The legacy ``sandbox_mode`` and where it is set: the selected Codex config
        profile's (``profile = "x"``, ``[profiles.x] sandbox_mode``) wins over the top-level
        one, as in Codex. The other sandbox settings are not read from a config profile:
        refused there by name rather than ignored."""
        name = self.data.get("profile")
        if name is not None:
            _expect(self.src, ("profile",), name, str)
            profiles = _expect(self.src, ("profiles",), self.data.get("profiles", {}), dict)
            if name not in profiles:
                raise self.src.error(("profile",), f"names no [profiles.{name}] table")
            table = _expect(self.src, ("profiles", name), profiles[name], dict)
            for key in ("default_permissions", "permissions", "sandbox_workspace_write"):
                if key in table:
                    raise self.src.error(("profiles", name, key), "lsandbox reads this only at the top "
                                         "level, not from a Codex config profile: move it there")
            if "sandbox_mode" in table:
                p: KeyPath = ("profiles", name, "sandbox_mode")
                mode = _expect(self.src, p, table["sandbox_mode"], str)
                if mode not in SANDBOX_MODES:
                    raise self.src.error(p, f'invalid sandbox_mode "{mode}"; valid: {", ".join(SANDBOX_MODES)}')
                return mode, p
        if "sandbox_mode" in self.data:
            return self.data["sandbox_mode"], ("sandbox_mode",)
        return None

    def legacy_spec(self, mode: str, where: KeyPath) -> ProfileSpec:
        """The profile the legacy ``sandbox_mode`` settings describe."""
        ww = self.data.get("sandbox_workspace_write", {})
        src = self.src
        origin = src.origin(where)
        builtin = {"read-only": ":read-only", "workspace-write": ":workspace",
                   "danger-full-access": ":danger-full-access"}[mode]
        spec = self.resolve(builtin)
        spec.name = f"sandbox_mode={mode}"
        for e in spec.fs.values():
            e.origin = origin
        if mode != "workspace-write":
            if ww:
                raise src.error(
                    ("sandbox_workspace_write",),
                    f'only applies with sandbox_mode = "workspace-write", not "{mode}"',
                )
            return spec
        self.apply_workspace_write(spec)
        return spec

    def apply_workspace_write(self, spec: ProfileSpec) -> None:
        """``[sandbox_workspace_write]``: the settings of the workspace-write mode, which Codex
        applies to the built-in ``:workspace`` too (selected by name, not extended)."""
        ww = self.data.get("sandbox_workspace_write", {})
        src = self.src
        base = ("sandbox_workspace_write",)
        if "writable_roots" in ww:
            p = base + ("writable_roots",)
            for root in _expect(src, p, ww["writable_roots"], list):
                _expect(src, p, root, str)
                spec.workspace_roots.append(Entry(root, src.origin(p)))
        if "network_access" in ww:
            p = base + ("network_access",)
            spec.enabled = Entry(_expect(src, p, ww["network_access"], bool), src.origin(p))
        if _expect(src, base, ww.get("exclude_tmpdir_env_var", False), bool):
            spec.fs.pop((":tmpdir", "."), None)
        if _expect(src, base, ww.get("exclude_slash_tmp", False), bool):
            spec.fs.pop((":slash_tmp", "."), None)


# --------------------------------------------------------------------------- materialize


def _base_paths(base: str, roots: list[str], env: Mapping[str, str]) -> list[str]:
    if base == ":root":
        return ["/"]
    if base == ":minimal":
        return [p for p in MINIMAL_PATHS if os.path.lexists(p)]
    if base == ":workspace_roots":
        return roots
    if base == ":tmpdir":
        tmp = env.get("TMPDIR")
        return [tmp] if tmp else []
    if base == ":slash_tmp":
        return ["/tmp"]
    return [base]


class _Rule(Record):
    """A filesystem rule on its way into the policy: as written (``lexical``, absolute) and
    resolved (``path``)."""

    lexical: str
    path: str
    access: FsAccess
    origin: str
    flag: bool = False
    protect: bool = False  # a read-only name in a writable root (.git ...), not a rule written


def _link_holders(lexical: str) -> list[tuple[str, int]]:
    """The (resolved) directories holding the symlinks that resolving ``lexical`` follows,
    component by component as the kernel does (a missing rest is kept as it is), with the
    owner of each link."""
    holders: list[tuple[str, int]] = []
    pending = list(reversed(lexical.split("/")))
    cur, hops = "/", 0
    while pending:
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            cur = os.path.dirname(cur)
            continue
        cand = os.path.join(cur, comp)
        if not os.path.islink(cand):
            cur = cand
            continue
        hops += 1
        if hops > 40:
            break
        try:
            holders.append((cur, os.lstat(cand).st_uid))
            text = os.readlink(cand)
        except OSError:
            holders.append((cur, -1))
            break
        if text.startswith("/"):
            cur = "/"
        pending.extend(reversed(text.split("/")))
    return holders


def _no_links(r: _Rule) -> bool:
    """Resolving followed no symlink: realpath gave the path as written (without ``..``,
    which realpath resolves after the links before it). Saves the walk for most rules."""
    return "/.." not in r.lexical and os.path.normpath(r.lexical) == r.path


def _place(cands: list[_Rule], fs_entries: dict[str, tuple[FsAccess, str]],
           put: Callable[..., None], always_writable: Iterable[str] = ()) -> None:
    """Put ``cands`` into ``fs_entries``, so that a symlink the command could have made
    never widens the policy. A rule whose path resolves through a symlink that lies in a
    directory the policy lets the command write (made by the command in an earlier run, or
    by another user in /tmp) takes effect only where it narrows what the rest of the policy
    gives its target: ``"dist" = "read"`` with ``dist -> ~/.ssh/id_rsa`` put read on a
    denied secret, a ``write`` rule could have landed on ``~/.bashrc``; such a rule is an
    error naming the link (not skipped: a setting is never silently dropped). The read-only
    names of writable roots (``protect``) only ever narrow, silently (they are not written
    by the user). A link is the command's to make when it lies at or below anything a rule
    makes writable, whatever deeper rule covers its directory (the command can make that
    directory before a read rule on it means anything: Landlock and the view place no rule
    on what does not exist), or below ``always_writable`` (what a run under the default
    profile writes: the workspace roots, /tmp, $TMPDIR, /dev/shm: a link made by an
    earlier run under another profile); a link owned by neither this user nor root is
    another user's. Order: rules without links, then links no one else could have
    made, then the others; protected names last."""
    def table() -> PathTable[FsAccess]:
        return PathTable({p: a for p, (a, _) in fs_entries.items()})

    def narrows(r: _Rule, t: PathTable[FsAccess]) -> bool:
        cur = t.get(r.path)
        return _RESTRICTIVENESS[r.access] >= _RESTRICTIVENESS[cur if cur is not None else FsAccess.DENY]

    writable = {r.path for r in cands if r.access is FsAccess.WRITE} | set(always_writable)
    me = os.geteuid()

    def untrusted(holder: tuple[str, int]) -> bool:
        return holder[1] not in (me, 0) or any(is_within(holder[0], w) for w in writable)

    linked = {id(r): [] if _no_links(r) else _link_holders(r.lexical) for r in cands}
    plain = [r for r in cands if not r.protect]
    for r in plain:
        if not linked[id(r)]:
            put(r.path, r.access, r.origin, r.flag)
    late = []
    for r in plain:
        if linked[id(r)]:
            if any(untrusted(h) for h in linked[id(r)]):
                late.append(r)
            else:
                put(r.path, r.access, r.origin, r.flag)
    t1 = table()
    for r in late:
        if not narrows(r, t1):
            where = next(h[0] for h in linked[id(r)] if untrusted(h))
            raise PolicyError(
                f"{r.origin}: {r.lexical} resolves through a symlink in {where}, which the command (or "
                f"another user) may write, to {r.path}: a {r.access.value} rule there would give more than "
                f"the rest of the policy does; name {r.path} itself if that is meant")
        put(r.path, r.access, r.origin)
    guards = [r for r in cands if r.protect]
    t2 = table()
    for r in guards:  # never where the rest says less (a root's .git under --deny ROOT stays denied)
        if not linked[id(r)] and narrows(r, t2):
            put(r.path, r.access, r.origin)
    t3 = table()
    for r in guards:
        if linked[id(r)] and narrows(r, t3):
            put(r.path, r.access, r.origin)


def materialize(
    spec: ProfileSpec,
    *,
    cwd: str,
    extra_roots: Sequence[tuple[str, str]] = (),
    extra_sockets: Sequence[tuple[str, str]] = (),
    extra_domains: Sequence[tuple[str, str]] = (),
    network: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Policy:
    """Expand and canonicalize a resolved profile into a Policy.

    ``extra_roots`` / ``extra_sockets`` are ``(raw path, origin)`` pairs from flags; they are
    handled exactly like ``workspace_roots`` and ``unix_sockets = { P = "allow" }`` entries;
    ``extra_domains`` (normalized pattern, origin) like ``domains = { PATTERN = "allow" }``.
    """
    env = os.environ if env is None else env

    def canon(raw: str, origin: str, kind: str = "fs", literal: bool = False) -> str:
        """``kind``: "fs" (a filesystem rule), "root" (a workspace root: an existing
        directory) or "socket" (an AF_UNIX rule: only its length is checked). ``literal``:
        ``raw`` is a path already (a canonical root and a fixed name, ``$TMPDIR``'s value):
        a ``$`` or ``~`` in a directory's name is not expanded again."""
        problem = length_problem(raw)
        if problem is None:
            try:
                path = canonicalize(raw if literal else expand(raw, cwd=cwd, env=env), cwd=cwd)
            except KeyError as e:
                raise PolicyError(f"{origin}: environment variable ${e.args[0]} in '{raw}' is not set") from None
            except ValueError as e:
                problem = str(e)
            except OSError as e:  # realpath met a link it may not read (/proc/1/root...)
                problem = f"cannot resolve it: {e.strerror or e}"
            else:
                problem = (length_problem(path) if kind == "socket"
                           else path_problem(path, directory=kind == "root"))
        if problem:
            sep = " " if origin.startswith("-") else ": "  # "-w DIR: ..." / "file:3: DIR: ..."
            shown = raw if len(raw) <= 120 else f"{raw[:60]}...({len(raw)} characters)"
            raise PolicyError(f"{origin}{sep}{shown}: {problem}")
        return path

    added = [Entry(r, o) for r, o in extra_roots]
    all_added = [*spec.workspace_roots, *added]
    added_canon = [(canon(e.value, e.origin, "root"), e) for e in all_added]
    roots = list(dict.fromkeys([canonicalize(cwd)] + [p for p, _ in added_canon]))

    fs_entries: dict[str, tuple[FsAccess, str]] = {}
    flagged: set[str] = set()
    w_roots = {p for p, e in added_canon if e.origin == "-w"}

    def put(path: str, access: FsAccess, origin: str, flag: bool = False) -> None:
        """Two rules on one canonical path: a flag's (``--read``, ``--deny``, ``-w DIR``)
        beats the config's, however either is spelled; otherwise the more restrictive wins."""
        old = fs_entries.get(path)
        if old is not None and flag != (path in flagged):
            if not flag:
                return
        elif old is not None and _RESTRICTIVENESS[access] <= _RESTRICTIVENESS[old[0]]:
            return
        fs_entries[path] = (access, origin)
        if flag:
            flagged.add(path)

    cands: list[_Rule] = []

    # A workspace root as written (-w through a link): the rules below it resolve through it.
    root_lexical = {p: os.path.join(cwd, expand(e.value, cwd=cwd, env=env)) for p, e in added_canon}

    def add(raw: str, access: FsAccess, origin: str, *, literal: bool = False, flag: bool = False,
            protect: bool = False, lexical: str | None = None) -> None:
        try:
            path = canon(raw, origin, literal=literal)
        except PolicyError:
            if protect:  # a link loop planted in a writable root must not stop every launch
                return
            raise
        if lexical is None:
            lexical = raw if literal else expand(raw, cwd=cwd, env=env)
        cands.append(_Rule(os.path.join(cwd, lexical), path, access, origin, flag, protect))

    has_ws_key = any(base == ":workspace_roots" for base, _ in spec.fs)
    for (base, sub), entry in spec.fs.items():
        special = base.startswith(":")  # its paths are paths already: nothing to expand
        flag = entry.origin in ("--read", "--deny")
        for bp in _base_paths(base, roots, env):
            lex = root_lexical.get(bp) if base == ":workspace_roots" else None
            if sub == ".":
                by_w = base == ":workspace_roots" and bp in w_roots  # -w DIR itself
                add(bp, entry.value, entry.origin, literal=special, flag=flag or by_w, lexical=lex)
                continue
            if not special:
                lex = os.path.join(cwd, expand(bp, cwd=cwd, env=env))
                bp = canon(bp, entry.origin)
            protect = base == ":workspace_roots" and sub in PROTECTED_IN_WORKSPACE and entry.value is not FsAccess.WRITE
            add(os.path.join(bp, sub), entry.value, entry.origin, literal=True, protect=protect,
                lexical=os.path.join(lex, sub) if lex else None)
    if not has_ws_key:
        for root, e in added_canon:
            add(root, FsAccess.WRITE, e.origin, literal=True, flag=e.origin == "-w", lexical=root_lexical[root])
            for sub, mode in WORKSPACE_ROOT_PATTERN.items():
                if sub != ".":
                    add(os.path.join(root, sub), FsAccess(mode), e.origin, literal=True, protect=True,
                        lexical=os.path.join(root_lexical[root], sub))
    # What any run writes under the default profile: a link there may be an earlier run's.
    default_writable = [*roots, "/tmp", os.path.realpath(env.get("TMPDIR") or "/tmp"), "/dev/shm"]
    default_writable = [os.path.realpath(p) for p in default_writable]
    _place(cands, fs_entries, put, default_writable)
    # Every other writable root keeps its existing .git/.agents/.codex/.lsandbox read-only
    # too, as Codex's writable roots do, unless the policy names that path itself.
    more: list[_Rule] = []
    for root, (access, origin) in list(fs_entries.items()):
        if access is FsAccess.WRITE and root != "/":
            for name in PROTECTED_IN_WORKSPACE:
                child = os.path.join(root, name)
                if os.path.lexists(child) and os.path.realpath(child) not in fs_entries:
                    more.append(_Rule(child, os.path.realpath(child), FsAccess.READ,
                                      f"{origin} (read-only in every writable root)", False, True))
    _place(more, fs_entries, put, default_writable)

    sockets: dict[str, UnixSocketRule] = {}
    for raw, entry in [*spec.unix_sockets.items(), *((r, Entry(SocketAccess.ALLOW, o)) for r, o in extra_sockets)]:
        path = canon(raw, entry.origin, "socket")
        old = sockets.get(path)
        # Two spellings of one socket (/var/run -> /run): "none" wins the tie, whichever
        # comes last, as the more restrictive filesystem rule and a denied domain do.
        if old is None or (old.access is SocketAccess.ALLOW and entry.value is not SocketAccess.ALLOW):
            sockets[path] = UnixSocketRule(path, entry.value, entry.origin)

    domains = {pat: DomainRule(pat, e.value, e.origin) for pat, e in spec.domains.items()}
    for pat, origin in extra_domains:
        if pat not in domains or domains[pat].access is not DomainAccess.DENY:  # deny wins a tie
            domains[pat] = DomainRule(pat, DomainAccess.ALLOW, origin)
    mode = spec.mode.value if spec.mode else NetMode.FULL
    enabled = spec.enabled.value if spec.enabled else False
    if domains or mode is NetMode.LIMITED:
        enabled = True  # domains turn on the proxied network (a contradiction was refused above)
    if network is not None:
        if network is False and domains:
            origin = next(iter(domains.values())).origin
            raise PolicyError(f"--no-network contradicts the network domains of the policy ({origin})")
        enabled = network
    return Policy(
        filesystem=FilesystemPolicy(tuple(FsRule(p, a, o) for p, (a, o) in fs_entries.items())),
        network=NetworkPolicy(
            enabled=enabled,
            unix_sockets=tuple(sockets.values()),
            dangerously_allow_all_unix_sockets=bool(spec.allow_all_unix and spec.allow_all_unix.value),
            mode=mode,
            domains=tuple(domains.values()),
            allow_local_binding=bool(spec.allow_local_binding and spec.allow_local_binding.value),
            proxy_port=spec.proxy_port.value if spec.proxy_port else DEFAULT_PROXY_PORT,
        ),
        name=spec.name,
        description=spec.description,
    )
