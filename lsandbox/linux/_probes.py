"""Known-harmless probes: AF_UNIX paths that ordinary programs try and do without.

glibc asks the name service cache daemon (nscd) first for every user, group and host
lookup (``id``, ``getent``, ``getaddrinfo``, so curl, pytest, pip...) and falls back to
its own lookups when the socket is missing. Refused with EACCES, each lookup would fill the
denial report with two lines nobody can act on. When no rule names these paths, the broker
answers ENOENT (as on a machine without nscd), so programs fall back quietly, and records
nothing. A rule naming the path (``"allow"`` or ``"none"``) is applied as written.
"""

from __future__ import annotations

QUIET_PROBES: frozenset[str] = frozenset({
    "/var/run/nscd/socket",
    "/run/nscd/socket",
})
