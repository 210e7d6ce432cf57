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

Identity: every call the broker performs runs in a thread that holds the command's
uids, gids and groups and no effective capability (``_identity``): DAC, ``SO_PEERCRED``,
``SCM_CREDENTIALS`` and capability checks of any family see the command, not the
supervisor (a peer still sees the supervisor's pid). Path resolution runs as the command
too, with no capability, or ``CAP_SYS_PTRACE`` alone in a thread where a ptrace-access
check refused (a non-dumpable target: the call is retried once, see ``_escalate``).

Binds are performed from a thread with a private cwd and umask (``unshare(CLONE_FS)``) that
takes the target's umask (``Umask:`` of ``/proc/<tid>/status``), ``fchdir``s into the pinned
parent directory and binds the base name: the directory decided on is the directory bound
in, the mode is what the command would have got, and the kernel's errors come back as they
are. Cost: ``getsockname`` then shows the base name only.

The sandbox-local socket directory (``_socket_dir``) is always allowed, and recognised by
inode only: the command may rename it and put a symlink at its path. A path the policy
refuses is allowed when the pinned socket's parent directory (proven by inode: it holds the
pinned inode under the socket's name) or the bind's pinned parent directory is that
directory or below it (walked up by ``..`` from descriptors).

Abstract names: the supervisor is outside Landlock's abstract-socket scope, so connecting
on the target's behalf would reach abstract sockets outside the sandbox; abstract
connect/send are refused with ECONNREFUSED, as a name that does not exist (X11's libxcb
then falls back to the path), and abstract binds with EACCES (a bind would squat a name
programs outside use), each with an event, unless ``dangerously_allow_all_unix_sockets``.
Sandboxed processes talk to each other through the socket directory. Autobind (an unnamed
``bind``) is performed.

Datagrams: ``sendto`` with an address, ``sendmsg`` and ``sendmmsg`` are performed by the
broker with the payload copied out of the target (``sendmsg`` control data: SCM_RIGHTS fds
are fetched with ``pidfd_getfd``; SCM_CREDENTIALS is refused, since the supervisor's
credentials would vouch for it). Cost: every ``sendmsg``/``sendmmsg`` of the workload
(also on TCP/UDP sockets) pays a notification round trip plus the copy; plain
``send``/``write`` on connected sockets and ``sendto`` without an address pay nothing.

Concurrency: a leader/follower pool. One thread polls the listener and receives; it keeps
handling inline while nothing can block (the common case pays no thread switch). A call
that would block (a full backlog, a full send buffer, a TCP connect in progress) is tried
non-blocking first; when it would block, its thread hands leadership to a follower and
waits for it alone, and if no other thread is free a new one is started: the pool has no
fixed size, so blocked calls (at most one per blocked thread of the command) never hold
the threads that serve other calls. Idle threads beyond ``threads`` exit. While it waits,
the call honours the command's signals and ``SO_SNDTIMEO`` (``_waits``), and ID_VALID
(a target that died frees the thread).

Memory per in-flight send is bounded: a datagram (any non-stream socket) larger than
``max(SO_SNDBUF, 64 KiB)`` is refused with EMSGSIZE before anything is copied (the kernel
refuses an AF_UNIX datagram larger than its send buffer anyway, and a UDP one above 64 KiB);
a stream send is copied and sent ``STREAM_CHUNK`` bytes at a time, so a 64 MiB ``sendmsg``
holds 256 KiB. A message's iovecs are read with one ``process_vm_readv`` (up to 1,024
ranges per call), and ``sendmmsg``'s headers with one.
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
from collections.abc import Callable, Sequence

import seccomp_bpf as sb

from ..policy._model import Policy, SocketAccess
from . import _broker_sys as sysc
from . import _fastpath as _fp
from . import _waits
from ._features import addfd_available, pidfd_thread_available
from ._identity import ThreadCreds, read_identity
from ._metaops import ALL_NRS as _PATH_NRS
from ._metaops import attached as _path_ops
from ._probes import QUIET_PROBES
from ._provenance import Provenance
from ._proxy_rules import proxy_only_inet
from ._sockaddr import AF_INET, AF_INET6, AF_UNIX, family, parse_unix, unix_sockaddr
from ._socket_dir import SocketDir, contains

TYPE_CHECKING = False
if TYPE_CHECKING:
    import landlock as ll

    from ._connector import Connector

_NR = {name: sb.syscall_number(name, sb.native_arch())
       for name in ("connect", "bind", "sendto", "sendmsg", "sendmmsg", "socket", "socketpair")}
_OP = {v: k for k, v in _NR.items()}
SOCKADDR_STORAGE = 128
STREAM_CHUNK = 256 << 10  # bytes of a stream send held at once
MIN_DGRAM_LIMIT = 64 << 10  # datagrams up to max(SO_SNDBUF, this) are copied, larger: EMSGSIZE
UIO_MAXIOV = 1024
MSG_DONTWAIT = 0x40
SOCK_STREAM = 1
POLL_S = 0.02  # how often a waiting call looks at the target's signals and ID_VALID
MAX_SYMLINKS = 40
SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
_MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
_IOVEC = struct.Struct("=QQ")
_CMSG = struct.Struct("=Qii")  # len, level, type
_MMSG_SIZE = _MSGHDR.size + 8  # mmsghdr: msghdr + unsigned msg_len (+ padding)
_O_PIN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_O_UPDIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _Answer(Exception):
    """Raised inside a handler to answer the notification with an errno. ``final``: a
    decision already reported (an event was emitted): never retried (``_escalate``)."""

    def __init__(self, err: int, *, final: bool = False) -> None:
        super().__init__(err)
        self.err, self.final = err, final


class _Denied(Exception):
    """A policy denial: an event, and ``err`` (EACCES; ECONNREFUSED for an abstract name,
    answered as a name that does not exist) as the call's result."""

    def __init__(self, path: str, rule: str, err: int = errno.EACCES) -> None:
        super().__init__(path)
        self.path, self.rule, self.err = path, rule, err


class _NoGetfd(Exception):
    """pidfd_getfd is refused here (a container profile without CAP_SYS_PTRACE)."""


class _Interrupted(Exception):
    """A waiting call's target has a signal to take (``_waits``): EINTR or a partial count."""


class _TimedOut(Exception):
    """A waiting call's ``SO_SNDTIMEO`` expired: EAGAIN (EINPROGRESS) or a partial count."""


class _Wait:
    """The waiting state of one brokered send (its deadline spans all its chunks)."""

    __slots__ = ("waiting", "deadline", "stream")

    def __init__(self) -> None:
        self.waiting, self.deadline, self.stream = False, 0.0, -1


def _umask(tid: int) -> int:
    """The target's umask (``Umask:`` in /proc/<tid>/status, Linux >= 4.7)."""
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    raise _Answer(errno.EACCES)  # no way to know what it would create: fail closed


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

    ``socket_dir`` (the sandbox-local socket directory, pinned when it was made: a
    :class:`SocketDir`; a path is pinned here, for callers that made it themselves) is always
    allowed for connect and bind, recognised by inode, never by path. ``on_event`` receives
    one dict per denial; it is called from broker threads and must not block for long.
    ``resolve_unix``: where the sandbox's Landlock ruleset handles ``RESOLVE_UNIX``, its
    ``RESOLVE_UNIX`` rules (``_connector.connector_rules``): the final connect/send of a
    pathname destination is then performed by a thread restricted by them (``_connector``).
    """

    def __init__(self, listener_fd: int, policy: Policy, socket_dir: SocketDir | str,
                 on_event: Callable[[dict], None], *, threads: int = 4,
                 provenance: Provenance | None = None,
                 resolve_unix: Sequence[tuple[str, ll.AccessFs]] | None = None) -> None:
        self._fd = listener_fd
        self._policy = policy
        self._sd_ident: tuple[int, int] | None = None
        if isinstance(socket_dir, SocketDir):
            self._socket_dir, self._sd_ident = socket_dir.path, socket_dir.ident
        elif socket_dir:
            self._socket_dir = os.path.realpath(socket_dir)
            try:
                st = os.stat(self._socket_dir)
                self._sd_ident = (st.st_dev, st.st_ino)
            except OSError:
                pass  # gone: nothing is allowed as inside it
        else:
            self._socket_dir = ""
        # Built before the sandbox starts by the launcher (its snapshot must predate the
        # workload); the default, built here, is for callers that start the broker first.
        self._prov = provenance or Provenance(policy, self._socket_dir, time.time_ns())
        self._on_event = on_event
        self._rules = {r.path: r for r in policy.network.unix_sockets}
        self._nthreads = max(2, threads)  # threads kept when idle; more start while calls wait
        self._lead = threading.Lock()
        self._stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._threads: list[threading.Thread] = []
        self._pool = threading.Lock()  # guards _threads, _live, _waiting
        self._live = 0  # threads running
        self._waiting = 0  # of which waiting in a call that would block (not serving)
        self.peak_threads = 0
        self._local = threading.local()
        self._ids = (os.geteuid(), os.getegid())
        self.sync_wake_up = False
        self.finished = threading.Event()  # set once every target is gone (listener hung up)
        self.stats = {"fast": 0, "slow": 0}  # notifications served by the C fast path / Python
        self._pidfd_thread = pidfd_thread_available()  # else the fast path would only ever defer
        # connector: the final connect/sendmsg (self._connect, self._sendmsg) of a pathname
        # destination is performed under the sandbox's RESOLVE_UNIX rules (_connector)
        self._connector: Connector | None = None
        self._connect, self._sendmsg = sysc.connect, sysc.sendmsg
        if resolve_unix is not None:
            from ._connector import Connector

            self._connector = Connector(resolve_unix, self._local, on_event)
            self._connect, self._sendmsg = self._connector.connect, self._connector.sendmsg

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
        with self._pool:
            self._threads.append(t)
            self._live += 1
            self.peak_threads = max(self.peak_threads, self._live)
        try:
            t.start()
        except RuntimeError:  # no more threads: the others keep serving
            with self._pool:
                self._live -= 1

    def close(self) -> None:
        """Stop serving and close the listener: pending and future notified calls then fail
        (ENOSYS), so the sandbox fails closed."""
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        joined = 0  # in start order: a thread that ends has listed every thread it started
        while joined < len(self._threads):
            with self._pool:
                t = self._threads[joined]
            if t.ident is not None:
                t.join(timeout=5)
            joined += 1
        if self._connector is not None:
            self._connector.close()
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
        try:
            self._local.creds = ThreadCreds()
        except OSError:
            self._local.creds = None  # every call then fails closed (_adopt)
        try:
            self._serve()
        finally:
            if not getattr(self._local, "counted_out", False):
                with self._pool:
                    self._live -= 1

    def _serve(self) -> None:
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
        while not self._stop and not self._surplus():
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
        connect_nr = _NR["connect"]
        ids = ffi.new("unsigned int[8]")
        caps_buf = ffi.new("unsigned int[12]")  # bare then prep (``_identity.Caps.words``)
        caps = [ffi.NULL]
        creds = self._local.creds
        seen = [None]

        def sync_ids() -> None:
            if creds is not None and creds.toggles and caps[0] == ffi.NULL:
                caps_buf[0:12] = [*creds.bare.words(), *creds.prep.words()]
                caps[0] = caps_buf
            ident = creds.ident if creds is not None else None
            if ident is not seen[0]:
                seen[0] = ident
                # an identity that cannot match (the thread has none) sends everything to Python
                ids[0:8] = list(ident.uids) + list(ident.gids) if ident else [0xFFFFFFFF] * 8

        sync_ids()

        def step() -> None:
            st = lib.lsb_fast_next(self._fd, self._wake_r, 500, connect_nr, ids, r)
            if st == _fp.DECIDE:
                self.stats["fast"] += 1
                self._fast_connect(r, caps[0])
            elif st == _fp.SLOW:
                self.stats["slow"] += 1
                self._handle(_notification(r))
                sync_ids()
            elif st == _fp.WAKE:
                self._stop = True
            elif st == _fp.HUP:
                self.finished.set()
                self._stop = True
            elif st < 0:
                raise OSError(-st, "seccomp notification receive failed")

        self._lead_loop(step)

    def _fast_connect(self, r: object, caps: object) -> None:
        """Decide the pinned path C prepared; connect through the pin (C) or deny."""
        ffi, lib = _fp.ffi, _fp.lib
        try:
            path = os.fsdecode(ffi.string(r.path, r.path_len))  # type: ignore[attr-defined]
            pin = r.pin  # type: ignore[attr-defined]
            self._decide(path, inside=lambda: self._sock_inside(pin, path))
            self._planted(path, pin)
        except Exception as e:  # noqa: BLE001 - a denial, or anything unexpected: fail closed
            os.close(r.pin)  # type: ignore[attr-defined]
            os.close(r.sock)  # type: ignore[attr-defined]
            err = e.err if isinstance(e, (_Denied, _Answer)) else errno.EACCES
            if isinstance(e, _Denied):
                self._emit(_notification(r), "connect", e.path, e.rule)
            lib.lsb_fast_answer(self._fd, r.id, 0, err)  # type: ignore[attr-defined]
            return
        # connector: with RESOLVE_UNIX handled the connect is made by the restricted thread
        # (_connector), so C prepares and Python connects; else C connects.
        if self._connector is None and lib.lsb_fast_connect(self._fd, r, caps) != -errno.EAGAIN:
            return
        # The server's backlog is full (or the connector connects): in Python (leadership
        # handed over while it waits, ID_VALID).
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

    def _surplus(self) -> bool:
        """An idle thread beyond the pool's size (started while calls waited) ends."""
        with self._pool:
            if self._live - self._waiting > self._nthreads:
                self._live -= 1
                self._local.counted_out = True
                return True
        return False

    def _wait_begin(self) -> None:
        """This thread is about to wait for a blocked call: hand the listener over, and start
        a thread if no other is free to take it (the pool never runs dry)."""
        self._handoff()
        with self._pool:
            self._waiting += 1
            starve = self._live - self._waiting < 1
        if starve and not self._stop:
            self._spawn(len(self._threads))

    def _wait_end(self) -> None:
        with self._pool:
            self._waiting -= 1

    def _pause(self, n: sb.Notification, deadline: float, delay: float,
               sock: int = -1) -> None:
        """Wait a little for a blocked call (``POLLOUT`` on ``sock`` when given, else sleep
        ``delay``), then look at what would end the wait in the kernel: the target gone
        (ID_VALID), a signal for it (``_Interrupted``), ``SO_SNDTIMEO`` (``_TimedOut``)."""
        step = min(delay, POLL_S)
        if deadline:
            step = max(0.0, min(step, deadline - time.monotonic()))
        if sock >= 0:
            p = select.poll()
            p.register(sock, select.POLLOUT)
            p.poll(int(step * 1000) + 1)
        else:
            time.sleep(step)
        if self._stop:
            raise _Answer(errno.EINTR)
        self._valid(n)
        if _waits.interrupting_signal(n.pid):
            raise _Interrupted()
        if deadline and time.monotonic() >= deadline:
            raise _TimedOut()

    def _bare(self, fn: Callable[..., int | None], *args: object) -> int | None:
        """Perform a socket call with no effective capability (``_identity``)."""
        c = self._local.creds
        if c is None or not c.toggles:
            return fn(*args)
        c.drop()
        try:
            return fn(*args)
        finally:
            c.undrop()

    # -- one notification --------------------------------------------------------------
    def _handle(self, n: sb.Notification) -> None:
        if n.nr in _PATH_NRS:  # without namespaces: creation in split directories, metadata (_pathops, _metaops)
            try:
                self._adopt(n)  # this thread holds the command's identity (_identity), no capability
            except (_Answer, _Denied) as e:
                self._send(n.id, error=e.err if isinstance(e, _Answer) else errno.EACCES)
                return
            _path_ops(self).handle(n, getattr(self._local, "private_cwd", False), self._local.creds)
            return
        op = _OP.get(n.nr)
        try:
            if op is None:
                raise _Answer(errno.ENOSYS)
            self._adopt(n)
            try:
                val = getattr(self, "_op_" + op)(n)
            except (_Answer, _NoGetfd, OSError) as e:
                # Refused by a ptrace-access check (a target holding capabilities, or not
                # dumpable)? Once, with CAP_SYS_PTRACE for preparing (``_identity``); a
                # failure that has nothing to do with it just fails again.
                if not self._escalate(e):
                    raise
                val = getattr(self, "_op_" + op)(n)
            self._send(n.id, val=val)
        except _Answer as a:
            self._send(n.id, error=a.err)
        except _Denied as d:
            self._emit(n, op or "?", d.path, d.rule)
            self._send(n.id, error=d.err)
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
        raise _Answer(ANSWER, final=True)

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
    def _escalate(self, e: BaseException) -> bool:
        if isinstance(e, _Answer) and e.final:  # decided and reported: a retry would report twice
            return False
        err = e.err if isinstance(e, _Answer) else getattr(e, "errno", errno.EPERM)
        creds = self._local.creds
        if err not in (errno.EACCES, errno.EPERM, errno.ESRCH) or creds is None or not creds.can_escalate():
            return False
        creds.escalate()
        return True

    def _adopt(self, n: sb.Notification) -> None:
        """Make this thread hold the target's identity (``_identity``). Checked per call by
        the ``/proc/<tid>`` owner (its euid/egid, a stat); read in full when that differs."""
        creds = self._local.creds
        if creds is None:
            raise _Denied("(credentials)", "broker thread without credentials")
        try:
            st = os.stat(f"/proc/{n.pid}")
        except OSError as e:
            raise _Answer(errno.ESRCH) from e
        cur = creds.ident
        if (st.st_uid, st.st_gid) == (cur.uids[1], cur.gids[1]):
            return
        try:
            ident = read_identity(n.pid)
        except OSError as e:
            raise _Answer(errno.ESRCH) from e
        try:
            creds.adopt(ident)
        except OSError as e:
            raise _Denied("(credentials)", "cannot act with the target's credentials") from e

    # -- decisions ---------------------------------------------------------------------
    def _decide(self, path: str, *, bind: bool = False, inside: Callable[[], bool] | None = None) -> None:
        """Decide canonical ``path`` by the policy; what the policy refuses is still allowed
        when ``inside()`` says the object is in the socket directory (by inode: see
        :meth:`_sock_inside`, :func:`_socket_dir.contains`)."""
        try:
            self._decide_policy(path, bind=bind)
        except _Denied:
            if inside is not None and self._sd_ident is not None and inside():
                return
            raise

    def _sock_inside(self, pin: int, real: str) -> bool:
        """Is the socket pinned at ``pin`` in the socket directory (or below it)? Its parent
        is found by its real path and then proven by inode: that directory holds, under the
        socket's name, the pinned inode (a socket whose link count is not 1 is refused
        anyway); then ``contains`` walks up from that directory's descriptor."""
        head, _, name = real.rpartition("/")
        try:
            dfd = os.open(head or "/", _O_UPDIR)
        except OSError:
            return False
        try:
            st, pst = os.stat(name, dir_fd=dfd, follow_symlinks=False), os.fstat(pin)
            if (st.st_dev, st.st_ino) != (pst.st_dev, pst.st_ino):
                return False
            return contains(self._sd_ident, dfd)  # type: ignore[arg-type]
        except OSError:
            return False
        finally:
            os.close(dfd)

    def _decide_missing(self, n: sb.Notification, path: str, *, bind: bool = False) -> None:
        """Decide a path that does not resolve (its errno is then the answer): by its lexical
        form, or as inside the socket directory when its nearest existing ancestor, opened
        as the target sees it, is (a connect there answers ENOENT, as without the sandbox)."""
        try:
            self._decide(_lexical(path, n.pid), bind=bind)
            return
        except _Denied as e:
            denied = e
        head = path
        while self._sd_ident is not None and head not in ("", "/"):
            head = os.path.dirname(head)
            base = f"/proc/{n.pid}/root" if head.startswith("/") else f"/proc/{n.pid}/cwd/"
            try:
                dfd = os.open(base + (head or "."), _O_UPDIR)
            except OSError:
                continue
            try:
                if contains(self._sd_ident, dfd):
                    return
            finally:
                os.close(dfd)
            break
        raise denied

    def _decide_policy(self, path: str, *, bind: bool = False) -> None:
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
                self._decide_missing(n, first)  # a denied path stays EACCES whether or not it exists
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
                self._decide(real, inside=lambda: self._sock_inside(fd, real))  # noqa: B023 - called at once
                if not stat.S_ISSOCK(st.st_mode):
                    raise _Answer(errno.ECONNREFUSED)
                if st.st_nlink != 1:
                    raise _Denied(real, f"planted socket: {st.st_nlink} hard links")
                self._planted(real, fd)
                return fd, real
            except BaseException:
                os.close(fd)
                raise
        self._decide_missing(n, first)
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
            # As a name that does not exist: X11's libxcb (and others) try the abstract name
            # first and fall back to the path only on ECONNREFUSED or ENOENT.
            raise _Denied(ua.display(), "abstract names are not brokered", errno.ECONNREFUSED)
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
        if fam in (AF_INET, AF_INET6) and self._policy.network.proxied:
            where, why = proxy_only_inet(self._policy.network, fam, addr, bind=bind)
            if why:
                try:
                    self._on_event({"kind": "network", "op": "bind" if bind else "connect",
                                    "address": where, "pid": n.pid, "process": "?",
                                    "verdict": "deny", "rule": why})
                except Exception:  # noqa: BLE001 - a failing sink must not take the broker down
                    pass
                raise _Answer(errno.EACCES, final=True)
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
        pin = -1
        try:
            dom = self._domain(sock)
            if dom == AF_UNIX and family(addr) == AF_UNIX:
                addr, pin = self._unix_target(n, addr, "connect")
            elif dom != AF_UNIX:
                self._inet_allowed(n, dom, addr, bind=False)
            if dom == AF_UNIX:
                self._connect_unix(n, sock, addr)
            else:
                self._connect_other(n, sock, addr)
            return 0
        finally:
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
        if ua is not None and ua.kind == "abstract":  # refused as by _unix_target
            raise _Denied(ua.display(), "abstract names are not brokered", errno.ECONNREFUSED)
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

        pin = -1
        try:
            dest, pin = self._unix_target(n, addr, "connect")
            c = self._local.creds
            if c is not None:
                c.drop()  # the socket is made by the command's identity, without capabilities
            try:
                s = _socket.socket(_socket.AF_UNIX, stype)
            finally:
                if c is not None:
                    c.undrop()
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
            if pin >= 0:
                os.close(pin)

    def _connect_unix(self, n: sb.Notification, sock: int, addr: bytes) -> None:
        """An AF_UNIX connect never half-completes: it succeeds, fails, or (backlog full)
        would block. So it is tried non-blocking (O_NONBLOCK set on the shared file for the
        duration), and while the server's backlog is full it is retried every few ms by a
        thread that has handed the listener over (``_wait_begin``), until it connects, the
        target is gone or has a signal to take (EINTR), or ``SO_SNDTIMEO`` passes (EAGAIN,
        as the kernel answers)."""
        flags = fcntl.fcntl(sock, fcntl.F_GETFL)
        if flags & os.O_NONBLOCK:
            self._bare(self._connect, sock, addr)  # RESOLVE_UNIX handled: the connector's
            return
        fcntl.fcntl(sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        waiting = False
        try:
            delay, deadline = 0.001, 0.0
            while True:
                try:
                    self._bare(self._connect, sock, addr)  # RESOLVE_UNIX handled: the connector's
                    return
                except OSError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                if not waiting:
                    waiting = True
                    self._wait_begin()
                    timeout = _waits.send_timeout(sock)
                    deadline = time.monotonic() + timeout if timeout else 0.0
                try:
                    self._pause(n, deadline, delay)
                except _Interrupted:
                    raise _Answer(errno.EINTR) from None
                except _TimedOut:
                    raise _Answer(errno.EAGAIN) from None
                delay = min(delay * 2, POLL_S)
        finally:
            fcntl.fcntl(sock, fcntl.F_SETFL, flags)
            if waiting:
                self._wait_end()

    def _connect_other(self, n: sb.Notification, sock: int, addr: bytes) -> None:
        """Any other family: started non-blocking; a connect in progress (TCP) is waited for
        by a thread that handed the listener over, with the target's signals (EINTR, the
        connect going on, as in the kernel) and ``SO_SNDTIMEO`` (EINPROGRESS) honoured."""
        flags = fcntl.fcntl(sock, fcntl.F_GETFL)
        if flags & os.O_NONBLOCK:
            self._bare(sysc.connect, sock, addr)
            return
        fcntl.fcntl(sock, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            self._bare(sysc.connect, sock, addr)
            return
        except OSError as e:
            if e.errno != errno.EINPROGRESS:
                raise
        finally:
            fcntl.fcntl(sock, fcntl.F_SETFL, flags)
        self._wait_begin()
        try:
            timeout = _waits.send_timeout(sock)
            deadline = time.monotonic() + timeout if timeout else 0.0
            while True:
                p = select.poll()
                p.register(sock, select.POLLOUT)
                if p.poll(0):
                    err = _waits.so_error(sock)
                    if err:
                        raise _Answer(err)
                    return
                try:
                    self._pause(n, deadline, POLL_S, sock)
                except _Interrupted:
                    raise _Answer(errno.EINTR) from None
                except _TimedOut:
                    raise _Answer(errno.EINPROGRESS) from None
        finally:
            self._wait_end()

    def _op_bind(self, n: sb.Notification) -> int:
        addr = self._read_addr(n, n.args[1], n.args[2])
        sock = self._getfd(n, n.args[0])
        try:
            dom = self._domain(sock)
            if dom != AF_UNIX or family(addr) != AF_UNIX:
                if dom != AF_UNIX:
                    self._inet_allowed(n, dom, addr, bind=True)
                self._bare(sysc.bind, sock, addr)
                return 0
            ua = parse_unix(addr)
            if ua is None:
                raise _Answer(errno.EINVAL)
            if ua.kind != "pathname":
                if ua.kind == "abstract" and not self._policy.network.dangerously_allow_all_unix_sockets:
                    raise _Denied(ua.display(), "abstract names are not brokered")
                self._bare(sysc.bind, sock, addr)
                return 0
            self._bind_path(n, sock, os.fsdecode(ua.name))
            return 0
        finally:
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
            self._decide_missing(n, path, bind=True)
            raise _Answer(e.errno or errno.ENOENT) from e
        try:
            real = _real_path(dfd).rstrip("/") + "/" + name
            self._decide(real, bind=True, inside=lambda: contains(self._sd_ident, dfd))  # type: ignore[arg-type]
            os.umask(_umask(n.pid))  # this thread's own fs_struct (unshare(CLONE_FS)), like its cwd
            os.fchdir(dfd)
            try:
                since = time.time_ns()
                self._bare(sysc.bind, sock, unix_sockaddr(os.fsencode(name)))
                if self._prov.exposed(real):
                    self._prov.note_bound(dfd, name, since)
            finally:
                os.chdir("/")
        finally:
            os.close(dfd)

    def _dest(self, n: sb.Notification, sock: int, addr: bytes | None) -> tuple[bytes | None, int]:
        """Decide a send's destination: (address to use, pin fd or -1)."""
        if addr is None:
            return None, -1
        dom = self._domain(sock)
        if dom == AF_UNIX and family(addr) == AF_UNIX:
            return self._unix_target(n, addr, "sendto")
        if dom != AF_UNIX:
            self._inet_allowed(n, dom, addr, bind=False)
        return addr, -1

    def _op_sendto(self, n: sb.Notification) -> int:
        fd, buf, size, flags, aptr, alen = n.args
        addr = self._read_addr(n, aptr, alen) if aptr else None
        sock = self._getfd(n, fd)
        pin = -1
        try:
            dest, pin = self._dest(n, sock, addr)
            return self._transmit(n, sock, _IOVEC.pack(buf, size), dest, b"", flags & 0xFFFFFFFF)
        finally:
            if pin >= 0:
                os.close(pin)
            os.close(sock)

    def _transmit(self, n: sb.Notification, sock: int, segs: bytes,
                  dest: bytes | None, control: bytes, flags: int) -> int:
        """Send the target's bytes at ``segs`` (its ``struct iovec`` array) as the kernel
        would, with bounded memory (see the module docstring). Up to 64 KiB is read and
        sent in one go (the common case: no socket type needed); above that a non-stream
        socket gets one datagram if it fits ``SO_SNDBUF`` (else EMSGSIZE) and a stream
        socket ``STREAM_CHUNK`` bytes at a time. A stream send goes on until all is sent,
        or, once some bytes are, until it would block on a non-blocking call or a signal or
        ``SO_SNDTIMEO`` stops it: then the partial count, as the kernel returns it (only a
        stream send can be partial)."""
        total = _total(segs)
        chunk = total
        if total > MIN_DGRAM_LIMIT:
            if _waits.sock_type(sock) == SOCK_STREAM:
                chunk = STREAM_CHUNK
            elif total > _waits.send_buffer(sock):
                raise _Answer(errno.EMSGSIZE)
        wait = _Wait()
        sent = 0
        try:
            while True:
                part = segs if sent == 0 and chunk >= total else _slice(segs, sent, chunk)
                data = self._read_segments(n, part, min(chunk, total - sent))
                try:
                    k = self._send_one(n, sock, data, dest, control if sent == 0 else b"", flags, wait)
                except (_Interrupted, _TimedOut, OSError) as e:
                    if sent:
                        return sent  # what the kernel returns once some bytes went out
                    if isinstance(e, _Interrupted):
                        raise _Answer(errno.EINTR) from None
                    if isinstance(e, _TimedOut):
                        raise _Answer(errno.EAGAIN) from None
                    raise
                sent += k
                if sent >= total or (k < len(data) and self._nonblocking(sock, flags)):
                    return sent
        finally:
            if wait.waiting:
                self._wait_end()

    def _nonblocking(self, sock: int, flags: int) -> bool:
        return bool(flags & MSG_DONTWAIT) or not self._blocking(sock)

    def _send_one(self, n: sb.Notification, sock: int, data: bytes, dest: bytes | None,
                  control: bytes, flags: int, wait: _Wait) -> int:
        """One ``sendmsg`` (MSG_DONTWAIT); when it would block and the target's call blocks,
        wait for room as in ``_connect_unix`` (POLLOUT on a stream socket; a datagram's
        room is the receiver's, which poll does not show, so that is retried every few ms).
        ``wait`` carries the call's deadline across the sends of one stream call."""
        delay = 0.001
        while True:
            try:
                return int(self._bare(self._sendmsg, sock, data, dest, control,  # type: ignore[arg-type]
                                      flags | MSG_DONTWAIT))
            except OSError as e:
                if e.errno != errno.EAGAIN or self._nonblocking(sock, flags):
                    raise
            if not wait.waiting:
                wait.waiting = True
                self._wait_begin()
                timeout = _waits.send_timeout(sock)
                wait.deadline = time.monotonic() + timeout if timeout else 0.0
                wait.stream = sock if _waits.sock_type(sock) == SOCK_STREAM else -1
            self._pause(n, wait.deadline, delay, wait.stream)
            delay = min(delay * 2, POLL_S)

    def _read_segments(self, n: sb.Notification, segs: bytes, total: int) -> bytes:
        try:
            data = sysc.read_vectored(n.pid, segs, total)
        except OSError as e:
            raise _Answer(errno.EFAULT if e.errno in (errno.EFAULT, 14) else errno.ESRCH) from e
        self._valid(n)
        return data

    def _read_msg(self, n: sb.Notification, hdr: bytes) -> tuple[bytes | None, bytes, bytes, list[int]]:
        """(address, payload ranges as its ``struct iovec`` array, control, fds to close) of
        the target's ``msghdr`` (its bytes ``hdr``, already read)."""
        name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(hdr)
        addr = self._read_addr(n, name, namelen) if name and namelen else None
        if iovlen > UIO_MAXIOV:
            raise _Answer(errno.EMSGSIZE)
        segs = self._read(n, iov, iovlen * _IOVEC.size) if iovlen else b""
        if _total(segs) >= 1 << 63:
            raise _Answer(errno.EINVAL)
        cbytes, fds = b"", []
        if control and controllen:
            cbytes, fds = self._translate_control(n, self._read(n, control, min(controllen, 1 << 16)))
        return addr, segs, cbytes, fds

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

    def _sendmsg_one(self, n: sb.Notification, sock: int, hdr: bytes, flags: int) -> int:
        addr, segs, control, fds = self._read_msg(n, hdr)
        pin = -1
        try:
            dest, pin = self._dest(n, sock, addr)
            return self._transmit(n, sock, segs, dest, control, flags)
        finally:
            if pin >= 0:
                os.close(pin)
            for fd in fds:
                os.close(fd)

    def _op_sendmsg(self, n: sb.Notification) -> int:
        hdr = self._read(n, n.args[1], _MSGHDR.size)
        sock = self._getfd(n, n.args[0])
        try:
            return self._sendmsg_one(n, sock, hdr, n.args[2] & 0xFFFFFFFF)
        finally:
            os.close(sock)

    def _op_sendmmsg(self, n: sb.Notification) -> int:
        fd, vec, vlen, flags = n.args[0], n.args[1], min(n.args[2] & 0xFFFFFFFF, UIO_MAXIOV), n.args[3]
        if vlen == 0:
            return 0
        headers = self._read(n, vec, vlen * _MMSG_SIZE)  # every mmsghdr in one read
        sock = self._getfd(n, fd)
        sent = 0
        try:
            for i in range(vlen):
                ptr = vec + i * _MMSG_SIZE
                try:
                    ln = self._sendmsg_one(n, sock, headers[i * _MMSG_SIZE:i * _MMSG_SIZE + _MSGHDR.size],
                                           flags & 0xFFFFFFFF)
                except (_Answer, _Denied, OSError):
                    if sent == 0:
                        raise
                    break
                sysc.write_memory(n.pid, ptr + _MSGHDR.size, struct.pack("=I", ln))
                sent += 1
            return sent
        finally:
            os.close(sock)


def _total(iovecs: bytes) -> int:
    """The byte count of a ``struct iovec`` array."""
    return sum(struct.unpack(f"={len(iovecs) // 8}Q", iovecs)[1::2])


def _slice(iovecs: bytes, start: int, size: int) -> bytes:
    """The ``struct iovec`` array covering bytes ``[start, start + size)`` of ``iovecs``."""
    words = struct.unpack(f"={len(iovecs) // 8}Q", iovecs)
    out, pos = [], 0
    for base, ln in zip(words[::2], words[1::2], strict=True):
        if pos + ln > start and size > 0:
            skip = max(0, start - pos)
            take = min(ln - skip, size)
            if take > 0:
                out += (base + skip, take)
                size -= take
        pos += ln
        if size <= 0:
            break
    return struct.pack(f"={len(out)}Q", *out)
