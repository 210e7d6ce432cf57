"""One-line hints after a failed command, when the sandbox is the likely cause.

Only with denials asked for (``--log-denials``; the API's ``log_denials=True``): they read
the denial events, and a command's own failures must not be blamed on the sandbox when
nothing was collected. Platform-neutral: events are plain dicts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

MAX_DIRS = 3
#: Tools whose cache or state lives under the home directory, which :workspace leaves
#: read-only: they fail there with EACCES/EROFS (npm says "sudo chown -R ... ~/.npm").
TOOL_CACHES = {
    "npm": "~/.npm", "npx": "~/.npm", "yarn": "~/.cache/yarn", "pnpm": "~/.cache/pnpm",
    "pip": "~/.cache/pip", "pip3": "~/.cache/pip", "cargo": "~/.cargo", "go": "~/.cache/go-build",
    "gradle": "~/.gradle", "mvn": "~/.m2",
}
_WRITE_OPS = ("write", "make_", "remove_", "truncate", "refer")


def _home_entry(path: str, home: str) -> str | None:
    """``~/.npm`` for ``/home/u/.npm/_cacache/x`` (the first component under ``home``)."""
    if not home or home == "/" or not path.startswith(home.rstrip("/") + "/"):
        return None
    first = path[len(home.rstrip("/")) + 1:].split("/", 1)[0]
    return f"~/{first}" if first else None


def hints(events: Sequence[dict], *, returncode: int, network: bool, read_only: Sequence[str] = (),
          fs_unobservable: bool = False, home: str | None = None, command: str = "",
          writable: Callable[[str], bool] | None = None) -> list[str]:
    """Hints for a command that exited ``returncode`` (none when it succeeded). ``command``
    (argv[0]) and ``writable`` (does the policy let it write this canonical path?) name a
    known tool's cache the policy leaves read-only, even when denials cannot be observed."""
    if returncode == 0:
        return []
    home = os.path.realpath(home if home is not None else os.path.expanduser("~"))
    out: list[str] = []
    denials = [e for e in events if e.get("verdict") == "deny"]
    if not network and any(e.get("kind") == "network" for e in denials):
        out.append("the network is off in this sandbox and the command tried to use it "
                   "(allow it with --network, or network.enabled = true)")
    dirs: list[str] = []
    for e in denials:
        if e.get("kind") != "filesystem" or not any(w in str(e.get("op", "")) for w in _WRITE_OPS):
            continue
        entry = _home_entry(str(e.get("path", "")), home)
        if entry and entry not in dirs:
            dirs.append(entry)
    for d in dirs[:MAX_DIRS]:
        out.append(f"writes to {d} were refused; if it is a tool's cache or state, allow it "
                   f"with -w {d} (or point the tool at $TMPDIR)")
    tool = os.path.basename(command)
    cache = TOOL_CACHES.get(tool)
    if cache and writable is not None and cache not in dirs and not writable(os.path.join(home, cache[2:])):
        out.append(f"{cache} ({tool}'s cache) is not writable in this sandbox; if {tool} failed "
                   f"on it, allow it with -w {cache} (it must exist)")
        dirs.append(cache)
    if read_only:
        out.append("writes into " + ", ".join(os.path.basename(p) for p in read_only[:4])
                   + " are refused (read-only carve-outs, EROFS, not reported): "
                   "if the command failed writing there, this is why")
    if fs_unobservable and not dirs:
        out.append("filesystem denials cannot be observed here; if the command failed writing "
                   "outside the workspace (a cache such as ~/.npm or ~/.cache), allow it with -w DIR")
    return out
