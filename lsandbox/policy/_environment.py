"""The command's environment: Codex's ``[shell_environment_policy]`` and the ``--setenv``,
``--unsetenv`` and ``--clearenv`` flags, which build the same :class:`EnvironmentPolicy`.

Codex's steps, in its order (``codex-rs/protocol/src/shell_environment.rs``):

1. ``inherit``: ``"all"`` (the default), ``"core"`` (:data:`CORE_VARS` only) or ``"none"``;
2. unless ``ignore_default_excludes`` (true by default, as in current Codex), drop names
   matching ``*KEY*``, ``*SECRET*``, ``*TOKEN*``;
3. drop names matching ``exclude``;
4. add ``set``;
5. if ``include_only`` is not empty, keep only names matching it.

Patterns are globs (``*``, ``?``, ``[...]``) matched without regard to case, as Codex does.
The flags map onto the same fields: ``--clearenv`` is ``inherit = "none"``, ``--unsetenv K``
adds ``K`` to ``exclude`` and ``--setenv K=V`` adds ``K = V`` to ``set``.
``LSANDBOX_SOCKET_DIR`` is set by the sandbox after these steps.
"""

from __future__ import annotations

from lsandbox_records import Record

TYPE_CHECKING = False  # the launch path does not import collections.abc; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Mapping

INHERIT = ("all", "core", "none")
CORE_VARS = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "LOGNAME", "PATH", "SHELL", "TEMP", "TMP",
             "TMPDIR", "USER")
DEFAULT_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    import fnmatch  # only when a pattern is configured: it imports ``re``

    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns)


class EnvironmentPolicy(Record):
    """How the command's environment is derived from the caller's (default: unchanged)."""

    inherit: str = "all"
    ignore_default_excludes: bool = True
    exclude: tuple[str, ...] = ()
    set: tuple[tuple[str, str], ...] = ()  # sorted (name, value) pairs
    include_only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.inherit not in INHERIT:
            raise ValueError(f"EnvironmentPolicy: inherit must be one of {', '.join(INHERIT)}")
        object.__setattr__(self, "set", tuple(sorted(dict(self.set).items())))

    @property
    def is_default(self) -> bool:
        return self == EnvironmentPolicy()

    def apply(self, env: Mapping[str, str]) -> dict[str, str]:
        """The command's environment, from the caller's ``env``."""
        if self.inherit == "all":
            out = dict(env)
        elif self.inherit == "core":
            out = {k: v for k, v in env.items() if k in CORE_VARS}
        else:
            out = {}
        drop = self.exclude if self.ignore_default_excludes else DEFAULT_EXCLUDES + self.exclude
        if drop:
            out = {k: v for k, v in out.items() if not _matches(k, drop)}
        out.update(self.set)
        if self.include_only:
            out = {k: v for k, v in out.items() if _matches(k, self.include_only)}
        return out

    def to_dict(self) -> dict[str, object]:
        return {"inherit": self.inherit, "ignore_default_excludes": self.ignore_default_excludes,
                "exclude": list(self.exclude), "set": dict(self.set),
                "include_only": list(self.include_only)}
