"""The Landlock rules of the broker's restricted connector (``_connector``), pinned at launch.

The broker performs the sandbox's pathname AF_UNIX calls itself, so the kernel checks them
against the performing thread's Landlock domain, not the sandbox's. The connector thread
carries the sandbox's rules for the two rights that concern those calls:

- ``MAKE_SOCK`` (ABI >= 1): a brokered ``bind`` creates a socket file. The grants are the
  plan's own ``MAKE_SOCK`` grants (the writable roots, the socket directory), and every
  directory Landlock had to split (without namespaces, ``_split``): the policy makes those
  writable and the broker's decision keeps their read-only carve-outs, so the kernel's check
  there is the writable root's.
- ``RESOLVE_UNIX`` (ABI >= 9): a brokered ``connect``/``sendmsg`` to a pathname.

Plain ints only: this runs on every launch, which does not import the broker, the connector
or landlock's enum classes."""

from __future__ import annotations

import os

from landlock import FS_MAKE_SOCK, FS_RESOLVE_UNIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

#: The rights the connector handles when the plan does.
CONNECTOR_RIGHTS = FS_MAKE_SOCK | FS_RESOLVE_UNIX


def connector_rules(handled_fs: int, landlock_rules: Sequence[tuple[str, int]],
                    split: Sequence[str] = ()) -> tuple[int, list[tuple[str, int]]] | None:
    """(the rights the connector handles, its rules as (path, grant)) for a plan's handled
    rights, Landlock rules and split directories; None when the plan handles neither right
    (no Landlock: no connector, the broker calls the kernel directly)."""
    handled = handled_fs & CONNECTOR_RIGHTS
    if not handled:
        return None
    rules: dict[str, int] = {}
    for path, access in landlock_rules:
        if access & handled:
            rules[path] = rules.get(path, 0) | (access & handled)
    if handled & FS_MAKE_SOCK:
        for path in split:
            rules[path] = rules.get(path, 0) | FS_MAKE_SOCK
    return handled, list(rules.items())


class PinnedRules:
    """The connector's rule paths, opened ``O_PATH`` by the launcher before the sandbox runs.
    The connector starts with the broker, on the first brokered call, after the command has
    run: by then a path the sandbox can write (its socket directory, a workspace) may have
    been renamed or replaced by a symlink, and opening the rules by name would grant on
    whatever the command put there. ``rules`` holds each pinned descriptor (the connector is
    a thread of this process) with its rights. A path that cannot be opened gets no rule:
    the connector then refuses more, never less."""

    def __init__(self, handled: int, rules: Sequence[tuple[str, int]]) -> None:
        self.handled = handled
        self._fds: list[int] = []
        self.rules: list[tuple[int, int]] = []
        for path, access in rules:
            try:  # O_NOFOLLOW as landlock's own add_path: a symlink there gets no rule
                fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            self._fds.append(fd)
            self.rules.append((fd, access))

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)
