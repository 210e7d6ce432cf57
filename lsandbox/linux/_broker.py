"""The AF_UNIX broker: the supervisor performs every notified address-bearing socket call.

Filter B (``_unix_filter``) sends ``connect``, ``bind``, ``sendto`` with an address,
``sendmsg`` and ``sendmmsg`` here. For each notification the broker reads the address once
from the target's memory (honouring ``addrlen``), checks the notification is still valid,
takes the target's socket *object* with ``pidfd_getfd``, and performs the call itself on that
object with the bytes it read. It never answers CONTINUE: the kernel would re-read the
target's memory and fd table, which a racing thread can change after the check (a flipped
``sun_path``, a ``dup2`` of another socket onto the fd number).

Pathname AF_UNIX addresses are resolved as the target sees them (``/proc/<tid>/cwd`` and
``/proc/<tid>/root``; ``/proc/self``, ``/proc/thread-self`` and ``/dev/fd`` as the
target's), the socket inode is *pinned* with ``O_PATH|O_NOFOLLOW`` (a final symlink is
followed by the broker, at most 40 times), and the decision is taken on the pin's real path
(the kernel's ``/proc/self/fd/N`` link): whatever a racing rename or symlink swap did, the
inode connected to is the inode whose path was decided, reached through ``/proc/self/fd/N``
(which also lifts the 108-byte ``sun_path`` limit). A pinned socket with ``st_nlink != 1``
is refused: a hard link planted in a writable, allowlisted directory
(``ln /var/run/docker.sock /tmp/.X11-unix/X9``) is unreachable, while ordinary sockets
(always one link) keep working.

Confused deputy: DAC is checked against the caller's filesystem credentials. When the
target's euid/egid (the owner of ``/proc/<tid>``) differ from the supervisor's, the
handling thread takes the target's fsuid, fsgid and groups (per-thread raw syscalls) for
path resolution, the connect/bind and the send, so it can reach nothing the target could
not. (ACLs and capabilities other than the fs ones are the kernel's business as usual.)

Binds are performed from a thread with a private cwd (``unshare(CLONE_FS)``) that
``fchdir``s into the pinned parent directory and binds the base name: the directory decided
on is the directory bound in. Cost: ``getsockname`` then shows the base name only.

Abstract names: the supervisor is outside Landlock's abstract-socket scope, so connecting
on the target's behalf would reach abstract sockets outside the sandbox; abstract
connect/bind/send are refused (EACCES, with an event) unless
``dangerously_allow_all_unix_sockets``. Sandboxed processes talk to each other through the
sandbox-local socket directory, which is always allowed. Autobind (an unnamed ``bind``) is
performed.

Datagrams: ``sendto`` with an address, ``sendmsg`` and ``sendmmsg`` are performed by the
broker with the payload copied out of the target (``sendmsg`` control data: SCM_RIGHTS fds
are fetched with ``pidfd_getfd``; SCM_CREDENTIALS is refused, since the supervisor's
credentials would vouch for it). Cost: every ``sendmsg``/``sendmmsg`` of the workload
(also on TCP/UDP sockets) pays a notification round trip plus the copy; plain
``send``/``write`` on connected sockets and ``sendto`` without an address pay nothing.

Concurrency: a leader/follower pool. One thread polls the listener and receives; it keeps
handling inline while nothing can block, and hands leadership to a follower before a call
that may block, so a slow connect never stalls other notifications. AF_UNIX connects are
made non-blocking and retried while the backlog is full (checking the target is still
waiting), so a dead target never pins a broker thread.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import struct
import threading
import time
from collections.abc import Callable

import seccomp_bpf as sb
from lsandbox_records import Record

from ..policy._model import Policy, SocketAccess
from ..policy._paths import is_within
from . import _broker_sys as sysc
from . import _fastpath as _fp
from ._features import addfd_available, pidfd_thread_available
from ._metaops import ALL_NRS as _PATH_NRS
from ._metaops import attached as _path_ops
from ._probes import QUIET_PROBES
from ._provenance import Provenance
from ._sockaddr import AF_INET, AF_INET6, AF_UNIX, family, parse_unix, unix_sockaddr

_NR = {name: sb.syscall_number(name, sb.native_arch())
       for name in ("connect", "bind", "sendto", "sendmsg", "sendmmsg", "socket", "socketpair")}
_OP = {v: k for k, v in _NR.items()}
SOCKADDR_STORAGE = 128
MAX_PAYLOAD = 64 << 20
UIO_MAXIOV = 1024
MAX_SYMLINKS = 40
SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
_MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
_IOVEC = struct.Struct("=QQ")
_CMSG = struct.Struct("=Qii")  # len, level, type
_MMSG_SIZE = _MSGHDR.size + 8  # mmsghdr: msghdr + unsigned msg_len (+ padding)
_O_PIN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class _Answer(Exception):
    """Raised inside a handler to answer the notification with an errno."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.err = err


class _Denied(Exception):
    def __init__(self, path: str, rule: str) -> None:
        super().__init__(path)
        self.path, self.rule = path, rule


class _NoGetfd(Exception):
    """pidfd_getfd is refused here (a container profile without CAP_SYS_PTRACE)."""


class _Creds(Record):
    fsuid: int
    fsgid: int
    groups: tuple[int, ...]


def _read_creds(tid: int) -> _Creds:
    fsuid = fsgid = -1
    groups: tuple[int, ...] = ()
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Uid:"):
                fsuid = int(line.split()[4])
            elif line.startswith(b"Gid:"):
                fsgid = int(line.split()[4])
            elif line.startswith(b"Groups:"):
                groups = tuple(int(g) for g in line.split()[1:])
    if fsuid < 0 or fsgid < 0:
        raise _Answer(errno.EACCES)
    return _Creds(fsuid, fsgid, groups)


def _tgid(tid: int) -> int:
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
    raise _Answer(errno.ESRCH)


def _proc_rewrite(path: str, tid: int) -> str:
    """Make ``/proc/self``, ``/proc/thread-self`` and ``/dev/fd`` name the target's."""
    for prefix in ("/proc/self", "/proc/thread-self", "/dev/fd"):
        if path == prefix or path.startswith(prefix + "/"):
            tgid = _tgid(tid)
            head = {"/proc/self": f"/proc/{tgid}", "/proc/thread-self": f"/proc/{tgid}/task/{tid}",
                    "/dev/fd": f"/proc/{tgid}/fd"}[prefix]
            return head + path[len(prefix):]
    return path


def _lexical(path: str, tid: int) -> str:
    """The absolute, lexically normalized path (for decisions when nothing exists there)."""
    if not path.startswith("/"):
        try:
            path = os.readlink(f"/proc/{tid}/cwd") + "/" + path
        except OSError:
            path = "/" + path
    return os.path.normpath(path).replace("//", "/")


def _notification(r: object) -> sb.Notification:
    """A :class:`seccomp_bpf.Notification` from the fast path's ``struct lsb_fast``."""
    return sb.Notification(r.id, r.pid, 0, r.nr, 0, 0, tuple(r.args))  # type: ignore[attr-defined]


def _real_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


class Broker:
    """Serve filter B's notifications on ``listener_fd`` (owned from now on) by ``policy``.

    ``socket_dir`` (the sandbox-local socket directory, canonical) is always allowed for
    connect and bind. ``on_event`` receives one dict per denial; it is called from broker
    threads and must not block for long.
    """

    def __init__(self, listener_fd: int, policy: Policy, socket_dir: str,
                 on_event: Callable[[dict], None], *, threads: int = 4,
                 provenance: Provenance | None = None) -> None:
        self._fd = listener_fd
        self._policy = policy
        self._socket_dir = os.path.realpath(socket_dir) if socket_dir else ""
        # Built before the sandbox starts by the launcher (its snapshot must predate the
        # workload); the default, built here, is for callers that start the broker first.
        self._prov = provenance or Provenance(policy, self._socket_dir, time.time_ns())
        self._on_event = on_event
        self._rules = {r.path: r for r in policy.network.unix_sockets}
        self._nthreads = max(2, threads)
        self._lead = threading.Lock()
        self._stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._threads: list[threading.Thread] = []
        self._local = threading.local()
        self._my_creds = _Creds(os.geteuid(), os.getegid(), tuple(os.getgroups()))
        self._ids = (os.geteuid(), os.getegid())
        self.sync_wake_up = False
        self.finished = threading.Event()  # set once every target is gone (listener hung up)
        self.stats = {"fast": 0, "slow": 0}  # notifications served by the C fast path / Python
        self._pidfd_thread = pidfd_thread_available()  # else the fast path would only ever defer

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        try:
            sb.set_listener_flags(self._fd, sb.USER_NOTIF_FD_SYNC_WAKE_UP)
            self.sync_wake_up = True
        except OSError:
            self.sync_wake_up = False  # kernel < 6.6: slower wake-ups, same semantics
        # The first thread starts the others: Thread.start() waits for the new thread to run,
        # and the launch should not pay that four times.
        self._spawn(0)

    def _spawn(self, i: int) -> None:
        t = threading.Thread(target=self._thread_main, args=(i,), name=f"lsandbox-broker-{i}",
                             daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        """Stop serving and close the listener: pending and future notified calls then fail
        (ENOSYS), so the sandbox fails closed."""
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        joined = 0  # thread 0 first: once it has ended, every thread it started is listed
        while joined < len(self._threads):
            self._threads[joined].join(timeout=5)
            joined += 1
        for fd in (self._fd, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._threads.clear()

    # -- thread pool (leader/follower) -------------------------------------------------
    def _thread_main(self, i: int = 0) -> None:
        if i == 0:
            for j in range(1, self._nthreads):
                if not self._stop:
                    self._spawn(j)
        try:
            sysc.unshare_fs()
        except OSError:
            pass  # binds then fail closed (see _bind)
        self._local.private_cwd = True
        if _fp.lib is not None and self._pidfd_thread:
            self._fast_main()
            return
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)

        def step() -> None:
            notif = self._receive(poller)
            if notif is not None:
                self.stats["slow"] += 1
                self._handle(notif)

        self._lead_loop(step)

    def _lead_loop(self, step: Callable[[], None]) -> None:
        """Leader/follower: whoever holds ``_lead`` runs ``step`` (wait for, receive and serve
        one notification) until it hands leadership over before a call that may block."""
        while not self._stop:
            if not self._lead.acquire(timeout=0.2):
                continue
            self._local.leading = True
            try:
                while not self._stop and self._local.leading:
                    step()
            finally:
                if self._local.leading:
                    self._local.leading = False
                    self._lead.release()

    def _fast_main(self) -> None:
        """The leader/follower loop over the compiled fast path (``_fastpath.h``): C waits,
        receives and pins; Python decides every path; unusual notifications go to
        :meth:`_handle` exactly as in the pure-Python loop."""
        ffi, lib = _fp.ffi, _fp.lib
        r = ffi.new("struct lsb_fast *")
        connect_nr, (uid, gid) = _NR["connect"], self._ids

        def step() -> None:
            st = lib.lsb_fast_next(self._fd, self._wake_r, 500, connect_nr, uid, gid, r)
            if st == _fp.DECIDE:
                self.stats["fast"] += 1
                self._fast_connect(r)
            elif st == _fp.SLOW:
                self.stats["slow"] += 1
                self._handle(_notification(r))
            elif st == _fp.WAKE:
                self._stop = True
            elif st == _fp.HUP:
                self.finished.set()
                self._stop = True
            elif st < 0:
                raise OSError(-st, "seccomp notification receive failed")

        self._lead_loop(step)

    def _fast_connect(self, r: object) -> None:
        """Decide the pinned path C prepared; connect through the pin (C) or deny."""
        ffi, lib = _fp.ffi, _fp.lib
        try:
            path = os.fsdecode(ffi.string(r.path, r.path_len))  # type: ignore[attr-defined]
            self._decide(path)
            self._planted(path, r.pin)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001 - a denial, or anything unexpected: fail closed
            os.close(r.pin)  # type: ignore[attr-defined]
            os.close(r.sock)  # type: ignore[attr-defined]
            if isinstance(e, _Denied):
                self._emit(_notification(r), "connect", e.path, e.rule)
            err = e.err if isinstance(e, _Answer) else errno.EACCES
            lib.lsb_fast_answer(self._fd, r.id, 0, err)  # type: ignore[attr-defined]
            return
        if lib.lsb_fast_connect(self._fd, r) != -errno.EAGAIN:
            return
        # The server's backlog is full: retry in Python (leadership handed over, ID_VALID).
        n, sock, pin = _notification(r), r.sock, r.pin  # type: ignore[attr-defined]
        try:
            self._connect_unix(n, sock, unix_sockaddr(f"/proc/self/fd/{pin}".encode()))
            self._send(n.id)
        except _Answer as a:
            self._send(n.id, error=a.err)
        except OSError as e:
            self._send(n.id, error=e.errno or errno.EACCES)
        finally:
            os.close(pin)
            os.close(sock)

    def _receive(self, poller: select.poll) -> sb.Notification | None:
        for fd, ev in poller.poll(500):
            if fd == self._wake_r:
                self._stop = True
                return None
            if ev & select.POLLIN:
                try:
                    return sb.notif_recv(self._fd)
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.EINTR):
                        return None  # the target left its syscall between poll and RECV
                    raise
            if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                self.finished.set()
                self._stop = True
        return None

    def _handoff(self) -> None:
        """Before a call that may block: let a follower take over the listener."""
        if getattr(self._local, "leading", False):
            self._local.leading = False
            self._lead.release()

    # -- one notification --------------------------------------------------------------
    def _handle(self, n: sb.Notification) -> None:
        if n.nr in _PATH_NRS:  # without namespaces: creation in split directories, metadata (_pathops, _metaops)
            _path_ops(self).handle(n, getattr(self._local, "private_cwd", False))
            return
        op = _OP.get(n.nr)
        try:
            if op is None:
                raise _Answer(errno.ENOSYS)
            val = getattr(self, "_op_" + op)(n)
            self._send(n.id, val=val)
        except _Answer as a:
            self._send(n.id, error=a.err)
        except _Denied as d:
            self._emit(n, op or "?", d.path, d.rule)
            self._send(n.id, error=errno.EACCES)
        except _NoGetfd:
            self._emit(n, op or "?", "(socket)", "pidfd_getfd refused: only connect is brokered here")
            self._send(n.id, error=errno.EACCES)
        except OSError as e:
            self._send(n.id, error=e.errno or errno.EACCES)
        except Exception:  # noqa: BLE001 - fail closed, keep serving
            self._send(n.id, error=errno.EACCES)

    def _op_socket(self, n: sb.Notification, op: str = "socket") -> int:
        """Only with denials asked for: a socket call filter A would refuse (``_refusals``);
        refused the same way, and reported."""
        from ._refusals import ANSWER, describe

        event = describe(op, n.args)
        event.update(pid=n.pid, process=self._comm(n.pid))
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 - a failing sink must not take the broker down
            pass
        raise _Answer(ANSWER)

    def _op_socketpair(self, n: sb.Notification) -> int:
        return self._op_socket(n, "socketpair")

    @staticmethod
    def _comm(pid: int) -> str:
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                return f.read().strip().decode("utf-8", "replace")
        except OSError:
            return "?"

    def _send(self, nid: int, *, val: int = 0, error: int = 0) -> None:
        try:
            sb.notif_send(self._fd, nid, val=val, error=error)
        except OSError as e:
            if e.errno != errno.ENOENT:  # ENOENT: the target died or was signalled
                raise

    def _emit(self, n: sb.Notification, op: str, path: str, rule: str) -> None:
        try:
            with open(f"/proc/{n.pid}/comm", "rb") as f:
                comm = f.read().strip().decode("utf-8", "replace")
        except OSError:
            comm = "?"
        try:
            self._on_event({"kind": "unix_socket", "op": op, "path": path, "pid": n.pid,
                            "process": comm, "verdict": "deny", "rule": rule})
        except Exception:  # noqa: BLE001 - a failing sink must not take the broker down
            pass

    def _valid(self, n: sb.Notification) -> None:
        if not sb.notif_id_valid(self._fd, n.id):
            raise _Answer(errno.ENOENT)  # SEND will fail with ENOENT anyway; nothing to do

    def _read(self, n: sb.Notification, addr: int, size: int) -> bytes:
        try:
            data = sysc.read_memory(n.pid, addr, size)
        except OSError as e:
            raise _Answer(errno.EFAULT if e.errno in (errno.EFAULT, 14) else errno.ESRCH) from e
        self._valid(n)  # the read came from the thread that is still blocked in this call
        return data

    def _read_addr(self, n: sb.Notification, ptr: int, addrlen: int) -> bytes:
        addrlen &= 0xFFFFFFFF
        if addrlen > SOCKADDR_STORAGE or addrlen >= 1 << 31:
            raise _Answer(errno.EINVAL)
        return self._read(n, ptr, addrlen)

    def _pidfd(self, tid: int) -> int:
        """A pidfd that reaches thread ``tid``'s descriptor table. Linux >= 6.9: a thread pidfd.
        Before: the thread-group leader's, after checking with kcmp that the thread shares
        the leader's table (a thread made by a raw clone without CLONE_FILES does not;
        ``unshare`` is refused in the sandbox, so that cannot change afterwards)."""
        if self._pidfd_thread:
            return os.pidfd_open(tid, sysc.PIDFD_THREAD)
        tgid = _tgid(tid)
        pidfd = os.pidfd_open(tgid)
        if tgid != tid and not sysc.same_fd_table(tgid, tid):
            os.close(pidfd)
            raise _Answer(errno.EACCES)
        return pidfd

    def _getfd(self, n: sb.Notification, fd: int) -> int:
        try:
            pidfd = self._pidfd(n.pid)
        except OSError as e:
            raise _Answer(errno.ESRCH if e.errno == errno.ESRCH else errno.EACCES) from e
        try:
            return sysc.pidfd_getfd(pidfd, fd & 0xFFFFFFFF)
        except OSError as e:
            if e.errno == errno.EBADF:
                raise _Answer(errno.EBADF) from e
            # EPERM: pidfd_getfd refused (Docker's default profile without CAP_SYS_PTRACE).
            # connect has a NOTIF_ADDFD fallback (_op_connect); everything else fails closed.
            raise _NoGetfd() from e
        finally:
            os.close(pidfd)

    # -- credentials -------------------------------------------------------------------
    def _as_target(self, n: sb.Notification) -> bool:
        """Take the target's fs credentials in this thread when they differ; returns whether
        they must be restored."""
        st = os.stat(f"/proc/{n.pid}")
        if (st.st_uid, st.st_gid) == self._ids:
            return False
        creds = _read_creds(n.pid)
        if creds == self._my_creds:
            return False
        try:
            sysc.set_thread_creds(creds.fsuid, creds.fsgid, creds.groups)
        except OSError as e:
            raise _Denied("(credentials)", "cannot act with the target's credentials") from e
        return True

    def _restore(self) -> None:
        c = self._my_creds
        sysc.set_thread_creds(c.fsuid, c.fsgid, c.groups)

    # -- decisions ---------------------------------------------------------------------
    def _decide(self, path: str, *, bind: bool = False) -> None:
        if self._socket_dir and is_within(path, self._socket_dir):
            return
        net = self._policy.network
        rule = None
        probe = path
        while True:  # longest match = the deepest ancestor with a rule: O(depth), not O(rules)
            rule = self._rules.get(probe)
            if rule is not None or probe == "/":
                break
            probe = probe.rsplit("/", 1)[0] or "/"
        if rule is not None:
            if rule.access != SocketAccess.ALLOW:
                raise _Denied(path, f"{rule.path} = {rule.access.value}")
        elif not net.dangerously_allow_all_unix_sockets:
            if path in QUIET_PROBES and not bind:
                raise _Answer(errno.ENOENT)  # nscd and the like: no socket, no report (_probes)
            raise _Denied(path, "no rule")
        if bind:
            from ..policy._model import FsAccess

            parent = os.path.dirname(path)
            if self._policy.filesystem.access(parent) != FsAccess.WRITE:
                raise _Denied(path, f"bind: {parent} is not writable")

    def _planted(self, real: str, pin: int) -> None:
        """Refuse a socket the sandbox moved into an allowlisted place (``_provenance``)."""
        reason = self._prov.check(real, pin)
        if reason is not None:
            raise _Denied(real, reason)

    def _pin(self, n: sb.Notification, raw: bytes) -> tuple[int, str]:
        """Resolve ``raw`` as the target and pin the socket inode; returns (fd, real path)."""
        path = first = _proc_rewrite(os.fsdecode(raw), n.pid)
        for _ in range(MAX_SYMLINKS):
            base = f"/proc/{n.pid}/root" if path.startswith("/") else f"/proc/{n.pid}/cwd/"
            full = base + path
            try:
                fd = os.open(full, _O_PIN)
            except OSError as e:
                self._decide(_lexical(first, n.pid))  # a denied path stays EACCES whether or not it exists
                raise _Answer(e.errno or errno.ENOENT) from e
            try:
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    link = _proc_rewrite(os.readlink(full), n.pid)
                    if not link.startswith("/"):
                        head = os.path.dirname(path)
                        link = (head + "/" if head else "") + link
                    path = link
                    os.close(fd)
                    continue
                real = _real_path(fd)
                self._decide(real)
                if not stat.S_ISSOCK(st.st_mode):
                    raise _Answer(errno.ECONNREFUSED)
                if st.st_nlink != 1:
                    raise _Denied(real, f"planted socket: {st.st_nlink} hard links")
                self._planted(real, fd)
                return fd, real
            except BaseException:
                os.close(fd)
                raise
        self._decide(_lexical(first, n.pid))
        raise _Answer(errno.ELOOP)

    def _unix_target(self, n: sb.Notification, addr: bytes, op: str) -> tuple[bytes, int]:
        """(sockaddr to use from the supervisor, pin fd or -1) for an AF_UNIX destination."""
        ua = parse_unix(addr)
        if ua is None:
            raise _Answer(errno.EINVAL)
        if ua.kind == "pathname":
            pin, _ = self._pin(n, ua.name)
            return unix_sockaddr(f"/proc/self/fd/{pin}".encode()), pin
        if ua.kind == "abstract" and not self._policy.network.dangerously_allow_all_unix_sockets:
            raise _Denied(ua.display(), "abstract names are not brokered")
        return addr, -1

    @staticmethod
    def _blocking(fd: int) -> bool:
        return not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK

    @staticmethod
    def _domain(fd: int) -> int:
        return sysc.so_domain(fd)

    def _inet_allowed(self, n: sb.Notification, fam: int, addr: bytes, *, bind: bool) -> None:
        if fam in (AF_INET, AF_INET6) and not self._policy.network.enabled:
            raise _Answer(errno.EACCES)
        if bind and fam in (AF_INET, AF_INET6) and len(addr) >= 4 and self._ids[0] == 0:
            port = struct.unpack_from("!H", addr, 2)[0]
            if 0 < port < 1024 and os.stat(f"/proc/{n.pid}").st_uid != 0:
                raise _Answer(errno.EACCES)  # the root supervisor must not lend its capability

    # -- the operations ----------------------------------------------------------------
    def _op_connect(self, n: sb.Notification) -> int:
        addr = self._read_addr(n, n.args[1], n.args[2])
        try:
            sock = self._getfd(n, n.args[0])
        except _NoGetfd:
            if not addfd_available():
                raise  # neither pidfd_getfd nor ADDFD: fail closed
            return self._connect_addfd(n, n.args[0] & 0xFFFFFFFF, addr)
        restore = False
        pin = -1
        try:
            dom = self._domain(sock)
            if dom == AF_UNIX and family(addr) == AF_UNIX:
                restore = self._as_target(n)
                addr, pin = self._unix_target(n, addr, "connect")
            elif dom != AF_UNIX:
                self._inet_allowed(n, dom, addr, bind=False)
            if dom == AF_UNIX:
                self._connect_unix(n, sock, addr)
                return 0
            if self._blocking(sock):
                self._handoff()
            sysc.connect(sock, addr)
            return 0
        finally:
            if restore:
                self._restore()
            if pin >= 0:
                os.close(pin)
            os.close(sock)

    def _connect_addfd(self, n: sb.Notification, fd: int, addr: bytes) -> int:
        """Fallback without pidfd_getfd: make a socket of the target's type here, connect it
        through the pin, and install it over the target's fd number (NOTIF_ADDFD + SETFD,
        keeping O_NONBLOCK/O_CLOEXEC). Only for a fresh AF_UNIX socket (unbound,
        unconnected: state set on the original would be lost); anything else is refused.
        Whatever the target did to its fd table meanwhile, the fd number ends up holding a
        socket connected to the checked inode only."""
        ua = parse_unix(addr)
        if ua is None or ua.kind != "pathname":
            raise _Denied(ua.display() if ua else "(address)", "pidfd_getfd refused: only pathname AF_UNIX connects")
        link = os.readlink(f"/proc/{n.pid}/fd/{fd}")
        if not link.startswith("socket:["):
            raise _Answer(errno.ENOTSOCK)
        ino, stype = link[8:-1], None
        with open(f"/proc/{n.pid}/net/unix") as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 7 and cols[6] == ino:
                    if cols[5] != "01" or len(cols) > 7:  # connected or bound: state would be lost
                        raise _Denied(ua.display(), "pidfd_getfd refused: socket not fresh")
                    stype = int(cols[4], 16)
        if stype is None:
            raise _Denied(ua.display(), "pidfd_getfd refused: not an AF_UNIX socket")
        with open(f"/proc/{n.pid}/fdinfo/{fd}") as f:
            oflags = next(int(x.split()[1], 8) for x in f if x.startswith("flags:"))
        import socket as _socket

        restore = self._as_target(n)
        pin = -1
        try:
            dest, pin = self._unix_target(n, addr, "connect")
            s = _socket.socket(_socket.AF_UNIX, stype)
            try:
                if oflags & os.O_NONBLOCK:
                    s.setblocking(False)
                self._connect_unix(n, s.fileno(), dest)
                self._valid(n)
                sb.notif_addfd(self._fd, n.id, s.fileno(), newfd=fd, setfd=True,
                               newfd_flags=os.O_CLOEXEC if oflags & os.O_CLOEXEC else 0)
                return 0
            finally:
                s.close()
        finally:
            if restore:
                self._restore()
            if pin >= 0:
                os.close(pin)

    def _connect_unix(self, n: sb.Notification, sock: int, addr: bytes) -> None:
        """An AF_UNIX connect never half-completes: it succeeds, fails, or (backlog full)
        would block. So it is tried non-blocking (O_NONBLOCK set on the shared file for the
        duration), and while the server's backlog is full it is retried every few ms with
        leadership handed to a follower and ID_VALID checked: a target that dies or is
        signalled meanwhile frees the broker thread instead of pinning it forever."""
        flags = fcntl.fcntl(sock, fcntl.F_GETFL)
        if flags & os.O_NONBLOCK:
            sysc.connect(sock, addr)
            return
        fcntl.fcntl(sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            delay = 0.001
            while True:
                try:
                    sysc.connect(sock, addr)
                    return
                except OSError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                self._handoff()
                self._valid(n)
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        finally:
            fcntl.fcntl(sock, fcntl.F_SETFL, flags)

    def _op_bind(self, n: sb.Notification) -> int:
        addr = self._read_addr(n, n.args[1], n.args[2])
        sock = self._getfd(n, n.args[0])
        restore = False
        try:
            dom = self._domain(sock)
            if dom != AF_UNIX or family(addr) != AF_UNIX:
                if dom != AF_UNIX:
                    self._inet_allowed(n, dom, addr, bind=True)
                sysc.bind(sock, addr)
                return 0
            ua = parse_unix(addr)
            if ua is None:
                raise _Answer(errno.EINVAL)
            if ua.kind != "pathname":
                if ua.kind == "abstract" and not self._policy.network.dangerously_allow_all_unix_sockets:
                    raise _Denied(ua.display(), "abstract names are not brokered")
                sysc.bind(sock, addr)
                return 0
            restore = self._as_target(n)
            self._bind_path(n, sock, os.fsdecode(ua.name))
            return 0
        finally:
            if restore:
                self._restore()
            os.close(sock)

    def _bind_path(self, n: sb.Notification, sock: int, path: str) -> None:
        path = _proc_rewrite(path, n.pid)
        head, name = os.path.split(path)
        if name in ("", ".", ".."):
            raise _Answer(errno.EINVAL)
        if not getattr(self._local, "private_cwd", False):
            raise _Denied(path, "broker thread has no private cwd")
        if path.startswith("/"):
            dpath = f"/proc/{n.pid}/root" + (head or "/")
        else:
            dpath = f"/proc/{n.pid}/cwd/" + head
        try:
            dfd = os.open(dpath, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            self._decide(_lexical(path, n.pid), bind=True)
            raise _Answer(e.errno or errno.ENOENT) from e
        try:
            real = _real_path(dfd).rstrip("/") + "/" + name
            self._decide(real, bind=True)
            os.fchdir(dfd)
            try:
                since = time.time_ns()
                sysc.bind(sock, unix_sockaddr(os.fsencode(name)))
                if self._prov.exposed(real):
                    self._prov.note_bound(dfd, name, since)
            finally:
                os.chdir("/")
        finally:
            os.close(dfd)

    def _dest(self, n: sb.Notification, sock: int, addr: bytes | None) -> tuple[bytes | None, int, bool]:
        """Decide a send's destination: (address to use, pin fd, creds to restore)."""
        if addr is None:
            return None, -1, False
        dom = self._domain(sock)
        if dom == AF_UNIX and family(addr) == AF_UNIX:
            restore = self._as_target(n)
            try:
                out, pin = self._unix_target(n, addr, "sendto")
            except BaseException:
                if restore:
                    self._restore()
                raise
            return out, pin, restore
        if dom != AF_UNIX:
            self._inet_allowed(n, dom, addr, bind=False)
        return addr, -1, False

    def _op_sendto(self, n: sb.Notification) -> int:
        fd, buf, size, flags, aptr, alen = n.args
        addr = self._read_addr(n, aptr, alen) if aptr else None
        size = min(size, MAX_PAYLOAD)
        data = self._read(n, buf, size)
        sock = self._getfd(n, fd)
        dest, pin, restore = -1, -1, False
        try:
            dest, pin, restore = self._dest(n, sock, addr)
            if self._blocking(sock) and not flags & 0x40:  # MSG_DONTWAIT
                self._handoff()
            if dest is None:
                return sysc.sendmsg(sock, data, None, b"", flags & 0xFFFFFFFF)
            return sysc.sendto(sock, data, flags & 0xFFFFFFFF, dest)
        finally:
            if restore:
                self._restore()
            if pin >= 0:
                os.close(pin)
            os.close(sock)

    def _read_msg(self, n: sb.Notification, ptr: int) -> tuple[bytes | None, bytes, bytes, list[int]]:
        """(address, payload, control, fds to close) of the target's ``msghdr`` at ``ptr``."""
        name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(self._read(n, ptr, _MSGHDR.size))
        addr = self._read_addr(n, name, namelen) if name and namelen else None
        if iovlen > UIO_MAXIOV:
            raise _Answer(errno.EMSGSIZE)
        parts = []
        total = 0
        raw_iov = self._read(n, iov, iovlen * _IOVEC.size) if iovlen else b""
        for i in range(iovlen):
            base, ln = _IOVEC.unpack_from(raw_iov, i * _IOVEC.size)
            total += ln
            if total > MAX_PAYLOAD:
                raise _Answer(errno.EMSGSIZE)
            parts.append(self._read(n, base, ln) if ln else b"")
        cbytes, fds = b"", []
        if control and controllen:
            cbytes, fds = self._translate_control(n, self._read(n, control, min(controllen, 1 << 16)))
        return addr, b"".join(parts), cbytes, fds

    def _translate_control(self, n: sb.Notification, raw: bytes) -> tuple[bytes, list[int]]:
        out = bytearray(raw)
        fds: list[int] = []
        off = 0
        try:
            while off + _CMSG.size <= len(raw):
                clen, level, ctype = _CMSG.unpack_from(raw, off)
                if clen < _CMSG.size or off + clen > len(raw):
                    raise _Answer(errno.EINVAL)
                if level == SOL_SOCKET and ctype == SCM_CREDENTIALS:
                    raise _Answer(errno.EPERM)
                if level == SOL_SOCKET and ctype == SCM_RIGHTS:
                    count = (clen - _CMSG.size) // 4
                    theirs = struct.unpack_from(f"={count}i", raw, off + _CMSG.size)
                    ours = [self._getfd(n, t) for t in theirs]
                    fds += ours
                    struct.pack_into(f"={count}i", out, off + _CMSG.size, *ours)
                off += (clen + 7) & ~7
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return bytes(out), fds

    def _sendmsg_one(self, n: sb.Notification, sock: int, ptr: int, flags: int) -> int:
        addr, data, control, fds = self._read_msg(n, ptr)
        dest, pin, restore = None, -1, False
        try:
            dest, pin, restore = self._dest(n, sock, addr)
            if self._blocking(sock) and not flags & 0x40:
                self._handoff()
            return sysc.sendmsg(sock, data, dest, control, flags)
        finally:
            if restore:
                self._restore()
            if pin >= 0:
                os.close(pin)
            for fd in fds:
                os.close(fd)

    def _op_sendmsg(self, n: sb.Notification) -> int:
        sock = self._getfd(n, n.args[0])
        try:
            return self._sendmsg_one(n, sock, n.args[1], n.args[2] & 0xFFFFFFFF)
        finally:
            os.close(sock)

    def _op_sendmmsg(self, n: sb.Notification) -> int:
        fd, vec, vlen, flags = n.args[0], n.args[1], min(n.args[2] & 0xFFFFFFFF, UIO_MAXIOV), n.args[3]
        sock = self._getfd(n, fd)
        sent = 0
        try:
            for i in range(vlen):
                ptr = vec + i * _MMSG_SIZE
                try:
                    ln = self._sendmsg_one(n, sock, ptr, flags & 0xFFFFFFFF)
                except (_Answer, _Denied, OSError):
                    if sent == 0:
                        raise
                    break
                sysc.write_memory(n.pid, ptr + _MSGHDR.size, struct.pack("=I", ln))
                sent += 1
            return sent
        finally:
            os.close(sock)
