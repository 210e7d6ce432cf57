"""The rights, scopes and flags as plain ints, and what each ABI has of them.

The single source of the numbers: the public ``IntFlag`` classes (``_access``) are built from
them, and :class:`RawRuleset` (``_raw``) takes them as they are. A process that builds a
ruleset from ints and applies it never creates an enum class (``enum`` is a noticeable part
of a short-lived launcher's start) and does no flag arithmetic between ``fork`` and
``execve`` (each new ``IntFlag`` combination allocates a pseudo-member).
"""

from __future__ import annotations

LATEST_ABI = 10

# handled_access_fs / allowed_access of a path-beneath rule
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
FS_RESOLVE_UNIX = 1 << 16  # ABI 9: connect/sendmsg to pathname AF_UNIX sockets

#: The rights that came after ABI 1, with the ABI that brought each.
FS_SINCE = ((FS_REFER, 2), (FS_TRUNCATE, 3), (FS_IOCTL_DEV, 5), (FS_RESOLVE_UNIX, 9))
FS_ABI_1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
#: Rights that make sense on a non-directory (others give EINVAL on a file).
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV | FS_RESOLVE_UNIX

# handled_access_net / allowed_access of a net-port rule
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
NET_BIND_UDP = 1 << 2  # ABI 10: the local port, explicit or by autobind (a first send, connect)
NET_CONNECT_SEND_UDP = 1 << 3  # ABI 10: the remote port, by connect or an explicit destination
NET_SINCE = ((NET_BIND_TCP, 4), (NET_CONNECT_TCP, 4), (NET_BIND_UDP, 10), (NET_CONNECT_SEND_UDP, 10))

# scoped
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

# landlock_restrict_self flags
RESTRICT_LOG_SAME_EXEC_OFF = 1 << 0  # ABI 7
RESTRICT_LOG_NEW_EXEC_ON = 1 << 1  # ABI 7
RESTRICT_LOG_SUBDOMAINS_OFF = 1 << 2  # ABI 7
RESTRICT_TSYNC = 1 << 3  # ABI 8


def fs_all(abi: int) -> int:
    """Every filesystem right ABI ``abi`` can restrict."""
    out = FS_ABI_1 if abi >= 1 else 0
    for right, since in FS_SINCE:
        if abi >= since:
            out |= right
    return out


def fs_write(abi: int) -> int:
    """Everything in :func:`fs_all` that is not reading (and not RESOLVE_UNIX, which is about
    connecting, not writing)."""
    return fs_all(abi) & ~FS_READ & ~FS_RESOLVE_UNIX


def net_all(abi: int) -> int:
    out = 0
    for right, since in NET_SINCE:
        if abi >= since:
            out |= right
    return out


def scope_all(abi: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def restrict_flags_all(abi: int) -> int:
    out = 0
    if abi >= 7:
        out |= RESTRICT_LOG_SAME_EXEC_OFF | RESTRICT_LOG_NEW_EXEC_ON | RESTRICT_LOG_SUBDOMAINS_OFF
    if abi >= 8:
        out |= RESTRICT_TSYNC
    return out
