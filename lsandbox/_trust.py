"""Trust in the config found in the working directory (``./lsandbox.toml``).

The working directory is the default workspace, which the sandboxed command may write: a
config found there may have been written by an earlier sandbox (``default_permissions =
":danger-full-access"``), and loading it by default would give the next run whatever that
command chose. So that config (found by the search, not named with ``-c``) is loaded only
when the user has trusted that file with that content: ``lsandbox trust`` records its
SHA-256 and place (``place``) in ``~/.config/lsandbox/trusted``, outside the workspace,
as direnv's ``allow`` does for ``.envrc``. A changed file must be trusted again; a trusted
file that is gone (or no longer a regular file) stops the run until it is restored or
forgotten (``lsandbox trust --forget``), rather than letting it fall back to a looser
default. The bytes checked are the bytes parsed (``read_toml``'s ``verify``): a sandbox
rewriting the file meanwhile gains nothing. The user's own configs (``~/.config/lsandbox/config.toml``, ``~/.codex/config.toml``)
are trusted as they are: a policy that lets the command write them has given it the home
directory.
"""

from __future__ import annotations

import os

from ._errors import PolicyError

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

UNTRUSTED = ("not trusted: a config in the working directory may have been written by an earlier "
             "sandbox (the workspace is writable); review it, then run `lsandbox trust`, or name it with -c")


def store_path(env: Mapping[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".config", "lsandbox", "trusted")


def place(path: str) -> str:
    """Where an entry says a config is: its directory resolved (a symlinked spelling of the
    project is the same project), its own name not (a planted symlink to another project's
    trusted config is not that config here). Refused unless every character is printable:
    the store is one entry per line, and a line break in a directory name a sandbox made
    (``\\n``, or U+0085/U+2028/U+2029, which ``splitlines`` also breaks on) would write an
    entry for another path."""
    path = os.path.abspath(path)
    where = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if not where.isprintable():
        raise PolicyError("the path has characters that are not printable: not trusted", file=repr(where))
    return where


def _entry(path: str, raw: bytes) -> str:
    import hashlib

    return f"{hashlib.sha256(raw).hexdigest()} {place(path)}"


def _entries(env: Mapping[str, str]) -> list[str]:
    try:
        with open(store_path(env), encoding="utf-8", errors="replace") as f:
            return f.read().split("\n")  # only LF ends an entry (place refuses it in paths)
    except OSError:
        return []


def is_trusted(path: str, raw: bytes, env: Mapping[str, str]) -> bool:
    """Whether ``raw``, read from ``path``, is what the user trusted at ``path``."""
    return _entry(path, raw) in _entries(env)


def was_trusted(path: str, env: Mapping[str, str]) -> bool:
    """Whether some content was trusted at ``path``: a trusted config that is gone must not
    make the next run fall back, silently, to a looser policy (a sandbox may remove it)."""
    entries = _entries(env)  # first: on most launches there is no store, and nothing to resolve
    if not any(entries):
        return False
    try:
        where = place(path)
    except PolicyError:
        return False
    return any(e.split(" ", 1)[-1] == where for e in entries)


def forget(path: str, env: Mapping[str, str]) -> bool:
    """Remove what was trusted at ``path``; whether there was anything."""
    where = place(path)
    old = _entries(env)
    keep = [e for e in old if e.split(" ", 1)[-1] != where]
    if keep != old:
        _write(env, keep)
    return keep != old


def require(path: str, env: Mapping[str, str]) -> Callable[[bytes], None]:
    """A ``verify`` for ``read_toml``: refuses bytes the user has not trusted at ``path``."""
    def verify(raw: bytes) -> None:
        if not is_trusted(path, raw, env):
            raise PolicyError(UNTRUSTED, file=path)
    return verify


def trust(path: str, raw: bytes, env: Mapping[str, str]) -> str:
    """Record ``raw`` as trusted at ``path`` (replacing what was trusted there before);
    returns the entry. The store is replaced by a rename: never half-written."""
    entry = _entry(path, raw)
    where = entry.split(" ", 1)[1]
    _write(env, [*(e for e in _entries(env) if e.split(" ", 1)[-1] != where), entry])
    return entry


def _write(env: Mapping[str, str], entries: list[str]) -> None:
    store = store_path(env)
    tmp = f"{store}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(store), mode=0o700, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(e + "\n" for e in entries if e))
        os.replace(tmp, store)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PolicyError(f"cannot record the trust: {e.strerror}", file=store) from None
