"""Access rights, scopes and flags, named as the kernel names them, pinned to ABI versions.

``AccessFs.from_all(abi)`` is what ABI ``abi`` can restrict: a program that pins an ABI never
starts restricting (and so breaking) more when the kernel is upgraded. The numbers and the
ABI each right came with are ``_rights``'s; these classes name them for API users.
"""

from __future__ import annotations

import enum

from . import _rights as _r
from ._rights import LATEST_ABI as LATEST_ABI


class AccessFs(enum.IntFlag):
    EXECUTE = _r.FS_EXECUTE
    WRITE_FILE = _r.FS_WRITE_FILE
    READ_FILE = _r.FS_READ_FILE
    READ_DIR = _r.FS_READ_DIR
    REMOVE_DIR = _r.FS_REMOVE_DIR
    REMOVE_FILE = _r.FS_REMOVE_FILE
    MAKE_CHAR = _r.FS_MAKE_CHAR
    MAKE_DIR = _r.FS_MAKE_DIR
    MAKE_REG = _r.FS_MAKE_REG
    MAKE_SOCK = _r.FS_MAKE_SOCK
    MAKE_FIFO = _r.FS_MAKE_FIFO
    MAKE_BLOCK = _r.FS_MAKE_BLOCK
    MAKE_SYM = _r.FS_MAKE_SYM
    REFER = _r.FS_REFER  # ABI 2
    TRUNCATE = _r.FS_TRUNCATE  # ABI 3
    IOCTL_DEV = _r.FS_IOCTL_DEV  # ABI 5
    RESOLVE_UNIX = _r.FS_RESOLVE_UNIX  # ABI 9: connect/sendmsg to pathname AF_UNIX sockets

    @classmethod
    def from_all(cls, abi: int) -> AccessFs:
        # one flag construction, not one per right: IntFlag arithmetic costs microseconds
        return cls(_r.fs_all(abi))

    @classmethod
    def from_read(cls, abi: int) -> AccessFs:
        return cls(_r.FS_READ)

    @classmethod
    def from_write(cls, abi: int) -> AccessFs:
        """Everything in ``from_all(abi)`` that is not reading (and not RESOLVE_UNIX, which is
        about connecting, not writing)."""
        return cls(_r.fs_write(abi))

    @classmethod
    def file_rights(cls) -> AccessFs:
        """Rights that make sense on a non-directory (others give EINVAL on a file)."""
        return cls(_r.FS_FILE_RIGHTS)


class AccessNet(enum.IntFlag):
    BIND_TCP = _r.NET_BIND_TCP  # ABI 4
    CONNECT_TCP = _r.NET_CONNECT_TCP  # ABI 4
    BIND_UDP = _r.NET_BIND_UDP  # ABI 10: the local port, explicit or by autobind (a first send, connect)
    CONNECT_SEND_UDP = _r.NET_CONNECT_SEND_UDP  # ABI 10: the remote port, by connect or an explicit destination

    @classmethod
    def from_all(cls, abi: int) -> AccessNet:
        return cls(_r.net_all(abi))


class Scope(enum.IntFlag):
    ABSTRACT_UNIX_SOCKET = _r.SCOPE_ABSTRACT_UNIX_SOCKET  # ABI 6
    SIGNAL = _r.SCOPE_SIGNAL  # ABI 6

    @classmethod
    def from_all(cls, abi: int) -> Scope:
        return cls(_r.scope_all(abi))


class RestrictFlags(enum.IntFlag):
    LOG_SAME_EXEC_OFF = _r.RESTRICT_LOG_SAME_EXEC_OFF  # ABI 7
    LOG_NEW_EXEC_ON = _r.RESTRICT_LOG_NEW_EXEC_ON  # ABI 7
    LOG_SUBDOMAINS_OFF = _r.RESTRICT_LOG_SUBDOMAINS_OFF  # ABI 7
    TSYNC = _r.RESTRICT_TSYNC  # ABI 8

    @classmethod
    def from_all(cls, abi: int) -> RestrictFlags:
        return cls(_r.restrict_flags_all(abi))


def since_abi(right: enum.IntFlag) -> int:
    """The first ABI that has ``right`` (for error messages)."""
    if isinstance(right, AccessFs):
        return min(_fs_since(r) for r in AccessFs if r & right)
    if isinstance(right, AccessNet):
        return min(since for r, since in _r.NET_SINCE if r & right)
    if isinstance(right, Scope):
        return 6
    if isinstance(right, RestrictFlags):
        return 8 if right & RestrictFlags.TSYNC else 7
    raise TypeError(right)


def _fs_since(right: int) -> int:
    return dict(_r.FS_SINCE).get(right, 1)
