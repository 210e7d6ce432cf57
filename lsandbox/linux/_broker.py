"""The AF_UNIX broker: the supervisor performs every notified address-bearing socket call.

Filter B (``_unix_filter``) sends ``connect``, ``bind``, ``sendto`` with an address,
``sendmsg`` and ``sendmmsg`` here. For each notification the broker reads the address once
from the target's memory (honouring ``addrlen``), checks the notification is still valid,
takes the target's socket *object* with ``pidfd_getfd``, and performs the call itself on that
object with the bytes it read. It never answers CONTINUE: the kernel would re-read the
target's memory and fd table, which a racing thread can change after the check (a flipped
``sun_path``, a ``dup2`` of another socket onto the fd number). Pathnames are resolved and
pinned as the target sees them (``_broker_target``) and decided on the pin
(``_broker_decide``); the operations are ``_broker_ops`` and ``_broker_send``, the threads
``_broker_pool``, and the common connect runs in C (``_fastpath.h``).

Identity: every call the broker performs runs in a thread that holds the command's uids,
gids and groups and no effective capability (``_identity``): DAC, ``SO_PEERCRED``,
``SCM_CREDENTIALS`` and capability checks of any family see the command, not the supervisor
(a peer still sees the supervisor's pid). Path resolution runs as the command too, with no
capability, or ``CAP_SYS_PTRACE`` alone in a thread where a ptrace-access check refused (a
non-dumpable target: the call is retried once, see ``_escalate``).

Abstract names: the supervisor is outside Landlock's abstract-socket scope, so connecting on
the target's behalf would reach abstract sockets outside the sandbox; abstract connect/send
are refused with ECONNREFUSED, as a name that does not exist (X11's libxcb then falls back
to the path), and abstract binds with EACCES, each with an event, unless
``dangerously_allow_all_unix_sockets``. Sandboxed processes talk to each other through the
socket directory. Autobind (an unnamed ``bind``) is performed.

A waiting call honours the command's signals and ``SO_SNDTIMEO`` (``_waits``), and ID_VALID
(a target that died frees the thread).
"""

from __future__ import annotations

import errno
import os
import select
import struct
import threading
import time

import seccomp_bpf as sb

from ..policy._model import Policy
from . import _broker_sys as sysc
from . import _fastpath as _fp
from . import _waits
from ._broker_decide import Allowed, Denied, Quiet, UnixRules
from ._broker_fail import Fail, NoGetfd
from ._broker_ops import (
    INTERRUPTED,
    POLL_S,
    TIMED_OUT,
    connect_unix,
    op_bind,
    op_connect,
    op_socket,
    op_socketpair,
)
from ._broker_pool import Pool
from ._broker_send import op_sendmmsg, op_sendmsg, op_sendto
from ._broker_target import Targets, pinned_sockaddr, tgid
from ._features import pidfd_thread_available
from ._identity import ThreadCreds, read_identity
from ._metaops import ALL_NRS as _PATH_NRS
from ._metaops import attached as _path_ops
from ._provenance import Provenance
from ._proxy_rules import proxy_only_inet
from ._sockaddr import AF_INET, AF_INET6
from ._socket_dir import SocketDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from ._broker_decide import Verdict
    from ._broker_ops import Reply
    from ._connector import Connector

_OPS: dict[str, Callable[[Broker, sb.Notification], Reply]] = {
    "connect": op_connect, "bind": op_bind, "sendto": op_sendto, "sendmsg": op_sendmsg,
    "sendmmsg": op_sendmmsg, "socket": op_socket, "socketpair": op_socketpair,
}
_NR = {name: sb.syscall_number(name, sb.native_arch()) for name in _OPS}
_OP = {v: k for k, v in _NR.items()}
SOCKADDR_STORAGE = 128


def _notification(r: Any) -> sb.Notification:
    """A :class:`seccomp_bpf.Notification` from the fast path's ``struct lsb_fast``."""
    return sb.Notification(r.id, r.pid, 0, r.nr, 0, 0, tuple(r.args))


class Broker:
    """Serve filter B's notifications on ``listener_fd`` (owned from now on) by ``policy``.

    ``socket_dir`` (the sandbox-local socket directory, pinned when it was made: a
    :class:`SocketDir`; a path is pinned here, for callers that made it themselves) is always
    allowed for connect and bind, recognised by inode, never by path. ``on_event`` receives
    one dict per denial; it is called from broker threads and must not block for long.
    """

    def __init__(self, listener_fd: int, policy: Policy, socket_dir: SocketDir | str,
                 on_event: Callable[[dict], None], *, threads: int = 4,
                 provenance: Provenance | None = None,
                 connector: tuple[int, Sequence[tuple[str | int, int]]] | None = None) -> None:
        self._fd = listener_fd
        self._policy = policy
        sd_ident: tuple[int, int] | None = None
        if isinstance(socket_dir, SocketDir):
            self._socket_dir, sd_ident = socket_dir.path, socket_dir.ident
        elif socket_dir:
            self._socket_dir = os.path.realpath(socket_dir)
            try:
                st = os.stat(self._socket_dir)
                sd_ident = (st.st_dev, st.st_ino)
            except OSError:
                pass  # gone: nothing is allowed as inside it
        else:
            self._socket_dir = ""
        # Built before the sandbox starts by the launcher (its snapshot must predate the
        # workload); the default, built here, is for callers that start the broker first.
        self.prov = provenance or Provenance(policy, self._socket_dir, time.time_ns())
        self._on_event = on_event
        self.targets = Targets(UnixRules.from_policy(policy), sd_ident, self.prov)
        self.pool = Pool(threads, self._thread_main)
        self._ids = (os.geteuid(), os.getegid())
        self.sync_wake_up = False
        self.finished = threading.Event()  # set once every target is gone (listener hung up)
        self.stats = {"fast": 0, "slow": 0}  # notifications served by the C fast path / Python
        self._pidfd_thread = pidfd_thread_available()  # else the fast path would only ever defer
        self._ctable: Any = None
        # The final connect/sendmsg of a pathname destination and a pathname bind: where the
        # sandbox's ruleset handles RESOLVE_UNIX (connects, sends) and MAKE_SOCK (binds),
        # performed by a thread restricted by its rules (_connector; ``connector``: the
        # handled rights and the grants, _unix_pins).
        self._connector: Connector | None = None
        self.sys_connect: Callable[[int, bytes], None] = sysc.connect
        self.sys_sendmsg: Callable[[int, bytes, bytes | None, bytes, int], int] = sysc.sendmsg
        self.sys_bind_at: Callable[[int, int, bytes, int], bool] | None = None
        if connector is not None:
            from ._connector import Connector

            self._connector = c = Connector(connector[0], connector[1], self.pool.local, on_event)
            if c.connects:
                self.sys_connect, self.sys_sendmsg = c.connect, c.sendmsg
            if c.binds:
                self.sys_bind_at = c.bind_at

    @property
    def _connects_via_connector(self) -> bool:
        return self._connector is not None and self._connector.connects

    @property
    def listener(self) -> int:
        return self._fd

    @property
    def peak_threads(self) -> int:
        return self.pool.peak_threads

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        try:
            sb.set_listener_flags(self._fd, sb.USER_NOTIF_FD_SYNC_WAKE_UP)
            self.sync_wake_up = True
        except OSError:
            self.sync_wake_up = False  # kernel < 6.6: slower wake-ups, same semantics
        if _fp.lib is not None and self._pidfd_thread and not self._connects_via_connector:
            # (with a connector for connects, C pins and Python connects: no connect from C's own table)
            self._ctable = _fp.export_rules(self.targets.rules, self.prov.rename_roots())
        self.pool.start()

    def close(self) -> None:
        """Stop serving and close the listener: pending and future notified calls then fail
        (ENOSYS), so the sandbox fails closed."""
        self.pool.close()
        if self._connector is not None:
            self._connector.close()
        try:
            os.close(self._fd)
        except OSError:
            pass

    # -- serving ---------------------------------------------------------------------
    def _thread_main(self) -> None:
        local = self.pool.local
        try:
            sysc.unshare_fs()
            local.private_cwd = True  # this thread's own cwd and umask (binds, path operations)
        except OSError:  # a runtime refusing unshare (Docker's profile): shared with the supervisor
            local.private_cwd = False
        try:
            local.creds = ThreadCreds()
        except OSError:
            local.creds = None  # every call then fails closed (_adopt)
        if _fp.lib is not None and self._pidfd_thread:
            self._fast_main()
            return
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self.pool.wake_r, select.POLLIN)

        def step() -> None:
            notif = self._receive(poller)
            if notif is not None:
                self.stats["slow"] += 1
                self._handle(notif)

        self.pool.lead_loop(step)

    def _receive(self, poller: select.poll) -> sb.Notification | None:
        for fd, ev in poller.poll(500):
            if fd == self.pool.wake_r:
                self.pool.stop = True
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
                self.pool.stop = True
        return None

    def _fast_main(self) -> None:
        """The leader/follower loop over the compiled fast path (``_fastpath.h``): C waits,
        receives, pins, and connects what the exported rule table allows on its own; a
        pinned path it cannot decide comes back for :meth:`_fast_decide`, anything unusual
        goes to :meth:`_handle` exactly as in the pure-Python loop."""
        ffi, lib = _fp.ffi, _fp.lib
        r = ffi.new("struct lsb_fast *")
        connect_nr = _NR["connect"]
        ids = ffi.new("unsigned int[8]")
        caps_buf = ffi.new("unsigned int[12]")  # bare then prep (``_identity.Caps.words``)
        caps = [ffi.NULL]
        creds = self.pool.local.creds
        seen: list[object] = [None]
        table = self._ctable if self._ctable is not None else ffi.NULL

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
            r.served = 0
            st = lib.lsb_fast_serve(self._fd, self.pool.wake_r, 500, connect_nr, ids, table, caps[0], r)
            if r.served:
                self.stats["fast"] += r.served
            if st == _fp.DECIDE:
                self.stats["fast"] += 1
                self._fast_decide(r, caps[0])
            elif st == _fp.BLOCKED:
                self.stats["fast"] += 1
                self._fast_blocked(r)
            elif st == _fp.SLOW:
                self.stats["slow"] += 1
                self._handle(_notification(r))
                sync_ids()
            elif st == _fp.WAKE:
                self.pool.stop = True
            elif st == _fp.HUP:
                self.finished.set()
                self.pool.stop = True
            elif st < 0:
                raise OSError(-st, "seccomp notification receive failed")

        self.pool.lead_loop(step)

    def _fast_decide(self, r: Any, caps: Any) -> None:
        """Decide the pinned path C prepared; connect through the pin (C) or refuse."""
        v: Verdict | Fail
        try:
            path = os.fsdecode(_fp.ffi.string(r.path, r.path_len))
            v = self.targets.decide_pinned(path, r.pin)
        except Exception:  # noqa: BLE001 - anything unexpected: fail closed
            v = Fail(errno.EACCES)
        if not isinstance(v, Allowed):
            os.close(r.pin)
            os.close(r.sock)
            if isinstance(v, Denied):
                self._emit(_notification(r), "connect", v.path, v.rule)
            _fp.lib.lsb_fast_answer(self._fd, r.id, 0, v.err)
            return
        if self._connects_via_connector or _fp.lib.lsb_fast_connect(self._fd, r, caps) == -errno.EAGAIN:
            self._fast_blocked(r)

    def _fast_blocked(self, r: Any) -> None:
        """Connect in Python: the server's backlog is full (retried with the lead handed over,
        ID_VALID), or the connector performs connects (RESOLVE_UNIX handled)."""
        n, sock, pin = _notification(r), r.sock, r.pin
        try:
            connect_unix(self, n, sock, pinned_sockaddr(pin))
            self._send(n.id)
        except Fail as a:
            self._send(n.id, error=a.err)
        except OSError as e:
            self._send(n.id, error=e.errno or errno.EACCES)
        finally:
            os.close(pin)
            os.close(sock)

    # -- one notification --------------------------------------------------------------
    def _handle(self, n: sb.Notification) -> None:
        local = self.pool.local
        if n.nr in _PATH_NRS:  # without namespaces: creation in split directories, metadata (_pathops, _metaops)
            try:
                refused = self._adopt(n)  # this thread holds the command's identity, no capability
            except Fail as a:
                self._send(n.id, error=a.err)
                return
            if refused is not None:
                self._send(n.id, error=errno.EACCES)
                return
            _path_ops(self).handle(n, getattr(local, "private_cwd", False), local.creds)
            return
        op = _OP.get(n.nr)
        try:
            if op is None:
                raise Fail(errno.ENOSYS)
            reply: Reply | None = self._adopt(n)
            if reply is None:
                fn = _OPS[op]
                try:
                    reply = fn(self, n)
                except (Fail, NoGetfd, OSError) as e:
                    # Refused by a ptrace-access check (a target holding capabilities, or not
                    # dumpable)? Once, with CAP_SYS_PTRACE for preparing (``_identity``); a
                    # failure that has nothing to do with it just fails again.
                    if not self._escalate(e):
                        raise
                    reply = fn(self, n)
            if isinstance(reply, Denied):
                self._emit(n, op, reply.path, reply.rule)
                self._send(n.id, error=reply.err)
            elif isinstance(reply, Quiet):
                self._send(n.id, error=reply.err)
            else:
                self._send(n.id, val=reply)
        except Fail as a:
            self._send(n.id, error=a.err)
        except NoGetfd:
            self._emit(n, op or "?", "(socket)", "pidfd_getfd refused: only connect is brokered here")
            self._send(n.id, error=errno.EACCES)
        except OSError as e:
            self._send(n.id, error=e.errno or errno.EACCES)
        except Exception:  # noqa: BLE001 - fail closed, keep serving
            self._send(n.id, error=errno.EACCES)

    def _send(self, nid: int, *, val: int = 0, error: int = 0) -> None:
        try:
            sb.notif_send(self._fd, nid, val=val, error=error)
        except OSError as e:
            if e.errno != errno.ENOENT:  # ENOENT: the target died or was signalled
                raise

    # -- events ------------------------------------------------------------------------
    @staticmethod
    def comm(pid: int) -> str:
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                return f.read().strip().decode("utf-8", "replace")
        except OSError:
            return "?"

    def event(self, event: dict) -> None:
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 - a failing sink must not take the broker down
            pass

    def _emit(self, n: sb.Notification, op: str, path: str, rule: str) -> None:
        self.event({"kind": "unix_socket", "op": op, "path": path, "pid": n.pid,
                    "process": self.comm(n.pid), "verdict": "deny", "rule": rule})

    # -- the target ----------------------------------------------------------------------
    def valid(self, n: sb.Notification) -> None:
        if not sb.notif_id_valid(self._fd, n.id):
            raise Fail(errno.ENOENT)  # SEND will fail with ENOENT anyway; nothing to do

    def read(self, n: sb.Notification, addr: int, size: int) -> bytes:
        try:
            data = sysc.read_memory(n.pid, addr, size)
        except OSError as e:
            raise Fail(errno.EFAULT if e.errno in (errno.EFAULT, 14) else errno.ESRCH) from e
        self.valid(n)  # the read came from the thread that is still blocked in this call
        return data

    def read_addr(self, n: sb.Notification, ptr: int, addrlen: int) -> bytes:
        addrlen &= 0xFFFFFFFF
        if addrlen > SOCKADDR_STORAGE or addrlen >= 1 << 31:
            raise Fail(errno.EINVAL)
        return self.read(n, ptr, addrlen)

    def _pidfd(self, tid: int) -> int:
        """A pidfd that reaches thread ``tid``'s descriptor table. Linux >= 6.9: a thread pidfd.
        Before: the thread-group leader's, after checking with kcmp that the thread shares
        the leader's table (a thread made by a raw clone without CLONE_FILES does not;
        ``unshare`` is refused in the sandbox, so that cannot change afterwards). Where kcmp
        is refused (a container profile without CAP_SYS_PTRACE, which refuses pidfd_getfd
        too) this is ``NoGetfd``: connect goes on through NOTIF_ADDFD, which installs into
        the calling thread's own table; everything else fails closed."""
        if self._pidfd_thread:
            return os.pidfd_open(tid, sysc.PIDFD_THREAD)
        g = tgid(tid)
        pidfd = os.pidfd_open(g)
        try:
            shared = g == tid or sysc.same_fd_table(g, tid)
        except OSError as e:
            os.close(pidfd)
            if e.errno == errno.EPERM:  # kcmp refused as pidfd_getfd is (Docker's profile)
                raise NoGetfd() from e
            raise
        if not shared:
            os.close(pidfd)
            raise Fail(errno.EACCES)
        return pidfd

    def getfd(self, n: sb.Notification, fd: int) -> int:
        try:
            pidfd = self._pidfd(n.pid)
        except OSError as e:
            raise Fail(errno.ESRCH if e.errno == errno.ESRCH else errno.EACCES) from e
        try:
            return sysc.pidfd_getfd(pidfd, fd & 0xFFFFFFFF)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EACCES):
                raise Fail(e.errno or errno.EACCES) from e  # EBADF, or the supervisor's EMFILE
            # Refused (Docker's default profile without CAP_SYS_PTRACE): connect has a
            # NOTIF_ADDFD fallback (connect_addfd); everything else fails closed.
            raise NoGetfd() from e
        finally:
            os.close(pidfd)

    def pause(self, n: sb.Notification, deadline: float, delay: float, sock: int = -1) -> int:
        """Wait a little for a blocked call (``POLLOUT`` on ``sock`` when given, else sleep
        ``delay``), then look at what would end the wait in the kernel: the target gone
        (ID_VALID: ``Fail``), a signal for it (INTERRUPTED), ``SO_SNDTIMEO`` (TIMED_OUT);
        0 when the wait goes on."""
        step = min(delay, POLL_S)
        if deadline:
            step = max(0.0, min(step, deadline - time.monotonic()))
        if sock >= 0:
            p = select.poll()
            p.register(sock, select.POLLOUT)
            p.poll(int(step * 1000) + 1)
        else:
            time.sleep(step)
        if self.pool.stop:
            raise Fail(errno.EINTR)
        self.valid(n)
        if _waits.interrupting_signal(n.pid):
            return INTERRUPTED
        if deadline and time.monotonic() >= deadline:
            return TIMED_OUT
        return 0

    # -- credentials -------------------------------------------------------------------
    def bare(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Perform a socket call with no effective capability (``_identity``)."""
        c = self.pool.local.creds
        if c is None or not c.toggles:
            return fn(*args)
        c.drop()
        try:
            return fn(*args)
        finally:
            c.undrop()

    def _escalate(self, e: BaseException) -> bool:
        err = e.err if isinstance(e, Fail) else getattr(e, "errno", errno.EPERM)
        creds = self.pool.local.creds
        if err not in (errno.EACCES, errno.EPERM, errno.ESRCH) or creds is None or not creds.can_escalate():
            return False
        creds.escalate()
        return True

    def _adopt(self, n: sb.Notification) -> Denied | None:
        """Make this thread hold the target's identity (``_identity``). Checked per call by
        the ``/proc/<tid>`` owner (its euid/egid, a stat); read in full when that differs.
        Returns the denial when the thread cannot act as the target."""
        creds = self.pool.local.creds
        if creds is None:
            return Denied("(credentials)", "broker thread without credentials")
        try:
            st = os.stat(f"/proc/{n.pid}")
        except OSError as e:
            raise Fail(errno.ESRCH) from e
        cur = creds.ident
        if (st.st_uid, st.st_gid) == (cur.uids[1], cur.gids[1]):
            return None
        try:
            ident = read_identity(n.pid)
        except OSError as e:
            raise Fail(errno.ESRCH) from e
        try:
            creds.adopt(ident)
        except OSError:
            return Denied("(credentials)", "cannot act with the target's credentials")
        return None

    # -- network families ----------------------------------------------------------------
    def inet_allowed(self, n: sb.Notification, fam: int, addr: bytes, *, bind: bool) -> Quiet | None:
        """None when an IPv4/IPv6 (or other non-AF_UNIX) call may go on; else the refusal
        (reported here when the proxied network refuses it)."""
        net = self._policy.network
        if fam in (AF_INET, AF_INET6) and not net.enabled:
            return Quiet(errno.EACCES)
        if fam in (AF_INET, AF_INET6) and net.proxied:
            where, why = proxy_only_inet(net, fam, addr, bind=bind)
            if why:
                self.event({"kind": "network", "op": "bind" if bind else "connect", "address": where,
                            "pid": n.pid, "process": "?", "verdict": "deny", "rule": why})
                return Quiet(errno.EACCES)
        if bind and fam in (AF_INET, AF_INET6) and len(addr) >= 4 and self._ids[0] == 0:
            port = struct.unpack_from("!H", addr, 2)[0]
            if 0 < port < 1024 and os.stat(f"/proc/{n.pid}").st_uid != 0:
                return Quiet(errno.EACCES)  # the root supervisor must not lend its capability
        return None
