"""Path expansion and canonicalization.

Policies name paths the way users type them (``~/.ssh``, ``$CWD/build``, ``$TMPDIR``); the
kernel compares canonical paths. Every path in a :class:`~lsandbox.policy.Policy` went
through :func:`canonicalize` when the policy was built, so the backends never resolve.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # ``typing`` stays off the launch path; type checkers see True
if TYPE_CHECKING:
    import re
    from collections.abc import Mapping

# compiled only for a path naming a variable, so ``lsandbox run`` does not import ``re``
VAR_PATTERN = r"\$(\w+)|\$\{(\w+)\}"


def expand(path: str, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Expand ``~``, ``~user``, ``$CWD``, ``$TMPDIR`` and other ``$VAR``/``${VAR}``.

    ``$CWD`` is the given ``cwd`` (default: the process cwd). ``$TMPDIR`` falls back to
    ``/tmp`` when unset. Any other unset variable (``KeyError``) or unknown ``~user``
    (``ValueError``) is an error: a policy that silently names the wrong path is worse than
    one that fails to load.
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
            user = out.split("/", 1)[0]
            done = os.path.expanduser(out)
            if done.startswith("~"):  # no such user: the path would land below the cwd
                raise ValueError(f"no user {user[1:]!r} for {user}")
            out = done
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


NAME_MAX = 255  # bytes in one path component (Linux, every common filesystem)
PATH_MAX = 4096  # bytes in a path, the terminating NUL included


def length_problem(path: str) -> str | None:
    """Why the kernel would refuse ``path`` as a string (ENAMETOOLONG, a NUL), or None."""
    if "\0" in path:
        return "contains a NUL byte"
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        return "is not encodable as a file name"
    if len(raw) >= PATH_MAX:
        return f"path is {len(raw)} bytes long; the kernel's limit is {PATH_MAX - 1}"
    for name in raw.split(b"/"):
        if len(name) > NAME_MAX:
            return f"a name in it is {len(name)} bytes long; the limit is {NAME_MAX}"
    return None


def path_problem(path: str, *, directory: bool = False) -> str | None:
    """Why the sandbox could not place a rule at canonical ``path``, or None.

    A rule's path is opened when the sandbox starts; one that cannot be opened there (a file
    used as a directory, a symlink loop, a parent this user cannot search, a name too long)
    would fail the launch with a bare OSError, so it is refused when the policy is built,
    naming the path. A path that does not exist is fine (nothing to grant yet) unless
    ``directory``: a workspace root must be an existing directory, as bubblewrap requires
    of its bind sources, or ``-w`` with a typo would silently grant nothing."""
    import errno
    import stat

    problem = length_problem(path)
    if problem:
        return problem
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return "does not exist" if directory else None
        if e.errno == errno.ENOTDIR:
            return "a component of the path is not a directory"
        if e.errno == errno.ELOOP:
            return "too many levels of symbolic links (a symlink loop)"
        if e.errno == errno.EACCES:
            return f"permission denied (a directory on the way is not searchable by uid {os.geteuid()})"
        return e.strerror or str(e)
    if directory and not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    return None
