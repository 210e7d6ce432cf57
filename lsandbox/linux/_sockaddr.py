"""Parsing the ``sockaddr`` a sandboxed process passed to ``connect``/``bind``/``sendto``.

The kernel reads exactly ``addrlen`` bytes, and an AF_UNIX ``sun_path`` may fill all of
them without a terminating NUL, so parsing goes by ``addrlen`` and stops at the first NUL
inside it (what ``unix_mkname`` does). Three AF_UNIX kinds exist: *unnamed* (only the
family: ``bind`` autobinds an abstract name), *abstract* (``sun_path[0] == 0``) and
*pathname*.
"""

from __future__ import annotations

import struct

from lsandbox_records import Record

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6 = 0, 1, 2, 10
SUN_PATH_MAX = 108
SOCKADDR_UN_MAX = 2 + SUN_PATH_MAX
_FAMILY = struct.Struct("=H")


class UnixAddress(Record):
    kind: str  # "pathname" | "abstract" | "unnamed"
    name: bytes  # the path (without NUL), the abstract name (without the leading NUL), or b""

    def display(self) -> str:
        if self.kind == "abstract":
            return "@" + self.name.decode("utf-8", "backslashreplace")
        if self.kind == "unnamed":
            return "(unnamed)"
        return self.name.decode("utf-8", "surrogateescape")


def family(raw: bytes) -> int:
    """The address family, or -1 when ``raw`` is too short to hold one."""
    return _FAMILY.unpack_from(raw)[0] if len(raw) >= 2 else -1


def parse_unix(raw: bytes) -> UnixAddress | None:
    """Parse an AF_UNIX address of ``len(raw) == addrlen`` bytes; None when it is invalid
    (the kernel would answer EINVAL)."""
    if len(raw) < 2 or len(raw) > SOCKADDR_UN_MAX or family(raw) != AF_UNIX:
        return None
    path = raw[2:]
    if not path:
        return UnixAddress("unnamed", b"")
    if path[0] == 0:
        return UnixAddress("abstract", bytes(path[1:]))
    end = path.find(b"\0")
    return UnixAddress("pathname", bytes(path if end < 0 else path[:end]))


def unix_sockaddr(path: bytes) -> bytes:
    """A ``sockaddr_un`` for ``path`` (NUL-terminated when it fits), for the supervisor's
    own calls. Raises ValueError when the path is too long."""
    if len(path) > SUN_PATH_MAX:
        raise ValueError("AF_UNIX path longer than sun_path")
    return _FAMILY.pack(AF_UNIX) + path + (b"\0" if len(path) < SUN_PATH_MAX else b"")
