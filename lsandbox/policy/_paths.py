"""Path expansion and canonicalization.

Policies name paths the way users type them (``~/.ssh``, ``$CWD/build``, ``$TMPDIR``); the
kernel compares canonical paths. Every path in a :class:`~lsandbox.policy.Policy` went
through :func:`canonicalize` when the policy was built, so the backends never resolve.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    import re

VAR_PATTERN = r"\$(\w+)|\$\{(\w+)\}"  # compiled only for a path naming a variable: no ``re``
                                      # import (~2 ms) on ``lsandbox run``'s path otherwise


def expand(path: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Expand ``~``, ``~user``, ``$CWD``, ``$TMPDIR`` and other ``$VAR``/``${VAR}``.

    ``$CWD`` is the given ``cwd`` (default: the process cwd). ``$TMPDIR`` falls back to
    ``/tmp`` when unset. Any other unset variable is an error: a policy that silently names
    the wrong path is worse than one that fails to load.
    """
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd

    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "CWD":
            return cwd
        if name == "TMPDIR":
            return env.get("TMPDIR") or "/tmp"
        if name == "HOME":
            return env.get("HOME") or os.path.expanduser("~")
        if name not in env:
            raise KeyError(name)
        return env[name]

    if "$" in path:
        import re

        out = re.sub(VAR_PATTERN, var, path)
    else:
        out = path
    if out.startswith("~"):
        if out == "~" or out.startswith("~/"):
            home = env.get("HOME") or os.path.expanduser("~")
            out = home + out[1:]
        else:
            out = os.path.expanduser(out)
    return out


def canonicalize(path: str, *, cwd: str | None = None) -> str:
    """Make ``path`` absolute and resolve symlinks as the kernel would.

    Components that do not exist yet are kept lexically (``os.path.realpath`` semantics,
    non-strict), so a policy may name a socket or directory that will be created later.
    """
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd() if cwd is None else cwd, path)
    return os.path.realpath(path)


def is_within(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or below it, by whole components (``/tmp`` does not
    contain ``/tmpfoo``). Both must be canonical."""
    if root == "/":
        return path.startswith("/")
    return path == root or path.startswith(root + "/")
