"""Access rights, scopes and flags, named as the kernel names them, pinned to ABI versions.

``AccessFs.from_all(abi)`` is what ABI ``abi`` can restrict: a program that pins an ABI never
starts restricting (and so breaking) more when the kernel is upgraded.
"""

from __future__ import annotations

import enum

LATEST_ABI = 10


class AccessFs(enum.IntFlag):
    EXECUTE = 1 << 0
    WRITE_FILE = 1 << 1
    READ_FILE = 1 << 2
    READ_DIR = 1 << 3
    REMOVE_DIR = 1 << 4
    REMOVE_FILE = 1 << 5
    MAKE_CHAR = 1 << 6
    MAKE_DIR = 1 << 7
    MAKE_REG = 1 << 8
    MAKE_SOCK = 1 << 9
    MAKE_FIFO = 1 << 10
    MAKE_BLOCK = 1 << 11
    MAKE_SYM = 1 << 12
    REFER = 1 << 13  # ABI 2
    TRUNCATE = 1 << 14  # ABI 3
    IOCTL_DEV = 1 << 15  # ABI 5
    RESOLVE_UNIX = 1 << 16  # ABI 9: connect/sendmsg to pathname AF_UNIX sockets

    @classmethod
    def from_all(cls, abi: int) -> AccessFs:
        # one flag construction, not one per right: IntFlag arithmetic costs microseconds
        return cls(sum(right.value for right, since in _FS_SINCE.items() if abi >= since))

    @classmethod
    def from_read(cls, abi: int) -> AccessFs:
        return cls.EXECUTE | cls.READ_FILE | cls.READ_DIR

    @classmethod
    def from_write(cls, abi: int) -> AccessFs:
        """Everything in ``from_all(abi)`` that is not reading (and not RESOLVE_UNIX, which is
        about connecting, not writing)."""
        return cls(cls.from_all(abi).value & ~cls.from_read(abi).value & ~cls.RESOLVE_UNIX.value)

    @classmethod
    def file_rights(cls) -> AccessFs:
        """Rights that make sense on a non-directory (others give EINVAL on a file)."""
        return cls.EXECUTE | cls.WRITE_FILE | cls.READ_FILE | cls.TRUNCATE | cls.IOCTL_DEV | cls.RESOLVE_UNIX


_FS_SINCE = {r: 1 for r in AccessFs if r.value < AccessFs.REFER.value}
_FS_SINCE.update({AccessFs.REFER: 2, AccessFs.TRUNCATE: 3, AccessFs.IOCTL_DEV: 5, AccessFs.RESOLVE_UNIX: 9})


class AccessNet(enum.IntFlag):
    BIND_TCP = 1 << 0  # ABI 4
    CONNECT_TCP = 1 << 1  # ABI 4
    BIND_UDP = 1 << 2  # ABI 10: the local port, explicit or by autobind (a first send, connect)
    CONNECT_SEND_UDP = 1 << 3  # ABI 10: the remote port, by connect or an explicit destination

    @classmethod
    def from_all(cls, abi: int) -> AccessNet:
        return cls(sum(right.value for right, since in _NET_SINCE.items() if abi >= since))


_NET_SINCE = {AccessNet.BIND_TCP: 4, AccessNet.CONNECT_TCP: 4,
              AccessNet.BIND_UDP: 10, AccessNet.CONNECT_SEND_UDP: 10}


class Scope(enum.IntFlag):
    ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
    SIGNAL = 1 << 1  # ABI 6

    @classmethod
    def from_all(cls, abi: int) -> Scope:
        return cls.ABSTRACT_UNIX_SOCKET | cls.SIGNAL if abi >= 6 else cls(0)


class RestrictFlags(enum.IntFlag):
    LOG_SAME_EXEC_OFF = 1 << 0  # ABI 7
    LOG_NEW_EXEC_ON = 1 << 1  # ABI 7
    LOG_SUBDOMAINS_OFF = 1 << 2  # ABI 7
    TSYNC = 1 << 3  # ABI 8

    @classmethod
    def from_all(cls, abi: int) -> RestrictFlags:
        out = cls(0)
        if abi >= 7:
            out |= cls.LOG_SAME_EXEC_OFF | cls.LOG_NEW_EXEC_ON | cls.LOG_SUBDOMAINS_OFF
        if abi >= 8:
            out |= cls.TSYNC
        return out


def since_abi(right: enum.IntFlag) -> int:
    """The first ABI that has ``right`` (for error messages)."""
    if isinstance(right, AccessFs):
        return min(_FS_SINCE[r] for r in AccessFs if r & right)
    if isinstance(right, AccessNet):
        return min(_NET_SINCE[r] for r in AccessNet if r & right)
    if isinstance(right, Scope):
        return 6
    if isinstance(right, RestrictFlags):
        return 8 if right & RestrictFlags.TSYNC else 7
    raise TypeError(right)
