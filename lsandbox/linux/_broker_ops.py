"""The brokered socket operations that make or name a socket: connect, bind, and the
refusal reports of ``socket``/``socketpair``. One function per operation, each holding its
descriptors in one :class:`Held` context; each returns the call's value or the verdict that
refused it (failures raise ``Fail``/``OSError``).

Every call is performed with no effective capability (``Broker.bare``) by a thread that
holds the command's identity. Connects never answer CONTINUE: the kernel would re-read the
target's memory and fd table, which a racing thread can change after the check.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import time
from contextlib import ExitStack

import seccomp_bpf as sb

from . import _broker_sys as sysc
from . import _waits
from ._broker_decide import Allowed, Denied, Quiet, decide_abstract
from ._broker_fail import Fail, NoGetfd
from ._broker_target import O_UPDIR, proc_rewrite, real_path, umask
from ._features import addfd_available
from ._shared_fs import settle_at
from ._sockaddr import AF_UNIX, SUN_PATH_MAX, family, parse_unix, unix_sockaddr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

    from ._broker import Broker

    Reply: TypeAlias = int | Denied | Quiet

POLL_S = 0.02  # how often a waiting call looks at the target's signals and ID_VALID
INTERRUPTED, TIMED_OUT = 1, 2  # what ended a wait (Broker.pause)


class Held(ExitStack):
    """The descriptors an operation holds (its socket, a pin, passed fds): closed together
    whatever way the operation ends."""

    def fd(self, fd: int) -> int:
        if fd >= 0:
            self.callback(os.close, fd)
        return fd


def op_connect(b: Broker, n: sb.Notification) -> Reply:
    addr = b.read_addr(n, n.args[1], n.args[2])
    with Held() as held:
        try:
            sock = held.fd(b.getfd(n, n.args[0]))
        except NoGetfd:
            if not addfd_available():
                raise  # neither pidfd_getfd nor ADDFD: fail closed
            return connect_addfd(b, n, n.args[0] & 0xFFFFFFFF, addr)
        dom = sysc.so_domain(sock)
        if dom == AF_UNIX and family(addr) == AF_UNIX:
            target = b.targets.unix_target(n.pid, addr, "connect")
            if not isinstance(target, tuple):
                return target
            addr = target[0]
            held.fd(target[1])
        elif dom != AF_UNIX:
            refused = b.inet_allowed(n, dom, addr, bind=False)
            if refused is not None:
                return refused
        if dom == AF_UNIX:
            connect_unix(b, n, sock, addr)
        else:
            connect_other(b, n, sock, addr)
        return 0


def connect_unix(b: Broker, n: sb.Notification, sock: int, addr: bytes) -> None:
    """An AF_UNIX connect never half-completes: it succeeds, fails, or (backlog full)
    would block. So it is tried non-blocking (O_NONBLOCK set on the shared file for the
    duration), and while the server's backlog is full it is retried every few ms by a
    thread that has handed the lead over, until it connects, the target is gone or has a
    signal to take (EINTR), or ``SO_SNDTIMEO`` passes (EAGAIN, as the kernel answers)."""
    flags = fcntl.fcntl(sock, fcntl.F_GETFL)
    if flags & os.O_NONBLOCK:
        b.bare(b.sys_connect, sock, addr)
        return
    fcntl.fcntl(sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    waiting = False
    try:
        delay, deadline = 0.001, 0.0
        while True:
            try:
                b.bare(b.sys_connect, sock, addr)
                return
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
            if not waiting:
                waiting = True
                b.pool.wait_begin()
                timeout = _waits.send_timeout(sock)
                deadline = time.monotonic() + timeout if timeout else 0.0
            ended = b.pause(n, deadline, delay)
            if ended == INTERRUPTED:
                raise Fail(errno.EINTR)
            if ended == TIMED_OUT:
                raise Fail(errno.EAGAIN)
            delay = min(delay * 2, POLL_S)
    finally:
        fcntl.fcntl(sock, fcntl.F_SETFL, flags)
        if waiting:
            b.pool.wait_end()


def connect_other(b: Broker, n: sb.Notification, sock: int, addr: bytes) -> None:
    """Any other family: started non-blocking; a connect in progress (TCP) is waited for
    by a thread that handed the lead over, with the target's signals (EINTR, the connect
    going on, as in the kernel) and ``SO_SNDTIMEO`` (EINPROGRESS) honoured."""
    flags = fcntl.fcntl(sock, fcntl.F_GETFL)
    if flags & os.O_NONBLOCK:
        b.bare(sysc.connect, sock, addr)
        return
    fcntl.fcntl(sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        b.bare(sysc.connect, sock, addr)
        return
    except OSError as e:
        if e.errno != errno.EINPROGRESS:
            raise
    finally:
        fcntl.fcntl(sock, fcntl.F_SETFL, flags)
    b.pool.wait_begin()
    try:
        timeout = _waits.send_timeout(sock)
        deadline = time.monotonic() + timeout if timeout else 0.0
        while True:
            p = select.poll()
            p.register(sock, select.POLLOUT)
            if p.poll(0):
                err = _waits.so_error(sock)
                if err:
                    raise Fail(err)
                return
            ended = b.pause(n, deadline, POLL_S, sock)
            if ended == INTERRUPTED:
                raise Fail(errno.EINTR)
            if ended == TIMED_OUT:
                raise Fail(errno.EINPROGRESS)
    finally:
        b.pool.wait_end()


def connect_addfd(b: Broker, n: sb.Notification, fd: int, addr: bytes) -> Reply:
    """Fallback without pidfd_getfd: make a socket of the target's type here, connect it
    through the pin, and install it over the target's fd number (NOTIF_ADDFD + SETFD,
    keeping O_NONBLOCK/O_CLOEXEC). Only for a fresh AF_UNIX socket (unbound, unconnected:
    state set on the original would be lost); anything else is refused. Whatever the target
    did to its fd table meanwhile, the fd number ends up holding a socket connected to the
    checked inode only."""
    ua = parse_unix(addr)
    if ua is not None and ua.kind == "abstract":  # refused as by Targets.unix_target
        v = decide_abstract(b.targets.rules, ua.display(), "connect")
        if not isinstance(v, Allowed):
            return v
    if ua is None or ua.kind != "pathname":
        return Denied(ua.display() if ua else "(address)", "pidfd_getfd refused: only pathname AF_UNIX connects")
    link = os.readlink(f"/proc/{n.pid}/fd/{fd}")
    if not link.startswith("socket:["):
        raise Fail(errno.ENOTSOCK)
    ino, stype = link[8:-1], None
    with open(f"/proc/{n.pid}/net/unix") as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 7 and cols[6] == ino:
                if cols[5] != "01" or len(cols) > 7:  # connected or bound: state would be lost
                    return Denied(ua.display(), "pidfd_getfd refused: socket not fresh")
                stype = int(cols[4], 16)
    if stype is None:
        return Denied(ua.display(), "pidfd_getfd refused: not an AF_UNIX socket")
    with open(f"/proc/{n.pid}/fdinfo/{fd}") as f:
        oflags = next(int(x.split()[1], 8) for x in f if x.startswith("flags:"))
    import socket as _socket

    with Held() as held:
        target = b.targets.unix_target(n.pid, addr, "connect")
        if not isinstance(target, tuple):
            return target
        dest = target[0]
        held.fd(target[1])
        s = b.bare(_socket.socket, _socket.AF_UNIX, stype)  # made by the command's identity
        held.callback(s.close)
        if oflags & os.O_NONBLOCK:
            s.setblocking(False)
        connect_unix(b, n, s.fileno(), dest)
        b.valid(n)
        sb.notif_addfd(b.listener, n.id, s.fileno(), newfd=fd, setfd=True,
                       newfd_flags=os.O_CLOEXEC if oflags & os.O_CLOEXEC else 0)
        return 0


def op_bind(b: Broker, n: sb.Notification) -> Reply:
    addr = b.read_addr(n, n.args[1], n.args[2])
    with Held() as held:
        sock = held.fd(b.getfd(n, n.args[0]))
        dom = sysc.so_domain(sock)
        if dom != AF_UNIX or family(addr) != AF_UNIX:
            if dom != AF_UNIX:
                refused = b.inet_allowed(n, dom, addr, bind=True)
                if refused is not None:
                    return refused
            b.bare(sysc.bind, sock, addr)
            return 0
        ua = parse_unix(addr)
        if ua is None:
            raise Fail(errno.EINVAL)
        if ua.kind != "pathname":
            if ua.kind == "abstract":
                v = decide_abstract(b.targets.rules, ua.display(), "bind")
                if not isinstance(v, Allowed):
                    return v
            b.bare(sysc.bind, sock, addr)
            return 0
        return bind_path(b, n, sock, os.fsdecode(ua.name))


def bind_path(b: Broker, n: sb.Notification, sock: int, path: str) -> Reply:
    """Bind the base name in the pinned parent directory under the target's umask, so the
    directory decided on is the directory bound in, the mode is what the command would have
    got, and the kernel's errors come back as they are (``getsockname`` then shows the base
    name only: ``bind_here``). Where the plan handles Landlock's ``MAKE_SOCK`` the connector thread does that
    under the sandbox's grants (``_connector``: the kernel's own check after the broker's),
    else this thread."""
    path = proc_rewrite(path, n.pid)
    head, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise Fail(errno.EINVAL)
    if path.startswith("/"):
        dpath = f"/proc/{n.pid}/root" + (head or "/")
    else:
        dpath = f"/proc/{n.pid}/cwd/" + head
    with Held() as held:
        try:
            dfd = held.fd(os.open(dpath, O_UPDIR))
        except OSError as e:
            v = b.targets.decide_missing(n.pid, path, "bind")
            if not isinstance(v, Allowed):
                return v
            raise Fail(e.errno or errno.ENOENT) from e
        real = real_path(dfd).rstrip("/") + "/" + name
        v = b.targets.decide(real, "bind", lambda: b.targets.dir_inside(dfd))
        if not isinstance(v, Allowed):
            return v
        mask = umask(n.pid)
        since = time.time_ns()
        # the connector binds under the sandbox's MAKE_SOCK rules where it can (_connector)
        if b.sys_bind_at is None or not b.sys_bind_at(sock, dfd, os.fsencode(name), mask):
            bind_here(b, sock, dfd, os.fsencode(name), mask)
        if b.prov.exposed(real):
            b.prov.note_bound(dfd, name, since)
        return 0


def bind_here(b: Broker, sock: int, dfd: int, name: bytes, mask: int) -> None:
    """Bind ``name`` in ``dfd`` from this broker thread. With an ``fs_struct`` of its own
    (``unshare(CLONE_FS)``): from its cwd, under the command's umask. Without one (a runtime
    refused ``unshare``: ``_shared_fs``), leaving the supervisor's cwd and umask alone: through
    the pinned directory's descriptor (``/proc/thread-self/fd/N/name``: the kernel walks the
    magic link to that very directory) and then the mode the command's umask gives;
    ``getsockname`` then shows that /proc path."""
    if getattr(b.pool.local, "private_cwd", False):
        os.umask(mask)  # this thread's own, like its cwd
        os.fchdir(dfd)
        try:
            b.bare(sysc.bind, sock, unix_sockaddr(name))
        finally:
            os.chdir("/")
        return
    via = f"/proc/thread-self/fd/{dfd}/".encode() + name
    if len(via) >= SUN_PATH_MAX:
        raise Fail(errno.ENAMETOOLONG)
    b.bare(sysc.bind, sock, unix_sockaddr(via))
    b.bare(settle_at, dfd, name, 0o777 & ~mask, stat.S_IFSOCK, 0o777)


def op_socket(b: Broker, n: sb.Notification, op: str = "socket") -> Reply:
    """Only with denials asked for: a socket call filter A would refuse (``_refusals``);
    refused the same way, and reported."""
    from ._refusals import ANSWER, describe

    event = describe(op, n.args)
    event.update(pid=n.pid, process=b.comm(n.pid))
    b.event(event)
    return Quiet(ANSWER)


def op_socketpair(b: Broker, n: sb.Notification) -> Reply:
    return op_socket(b, n, "socketpair")

