"""The supervisor side: spawn the sandboxed child, serve its broker, relay its fate.

Process shape with namespaces (root, or unprivileged user namespaces allowed)::

    supervisor (lsandbox, unconfined; runs the broker threads)
      `-- init  (cloned into the new user/PID/IPC/network namespaces, PID 1 there; makes
            |     its mount namespace and view, then sandboxes itself; forwards signals)
            `-- command (PID 2; sandboxed; foreground process group of the terminal)

as bubblewrap's. A supervisor with other threads cannot clone (glibc must run its fork
handlers), and a clone can be refused where ``unshare`` is partly allowed: then it forks a
*relay* (outside the new PID namespace, not sandboxed, running no untrusted code), which
unshares the namespaces, reports what is refused, forks init and forwards signals to it.

If the supervisor dies, init (or the relay, then init) gets SIGKILL (PDEATHSIG) and the
kernel kills every process of the namespace: the sandbox fails closed. From a process's
third launch on, init is cloned by a small pre-forked launcher process instead
(``_prefork``: the caller's address space is not copied per launch), which kills its
sandboxes when the supervisor dies. Without namespaces (some containers) the supervisor's
child stays as the command's parent and the tree's subreaper, and kills the whole tree when
the command ends or the supervisor dies (``_child.PARENT_GONE``).
"""

from __future__ import annotations

import _socket  # not ``socket``: its Python wrapper is a noticeable part of every launch
import _thread  # not ``threading``: see LazyBroker
import errno
import gc
import os
import select
import sys
import time

from lsandbox_records import Record, field

from .._errors import (
    CommandNotExecutableError,
    CommandNotFoundError,
    PolicyError,
    SandboxError,
    SetupError,
)
from ..policy import Policy
from . import _caps, _socket_dir, _sys
from ._child import FORWARDED, ChildSpec, child_main, clone_init
from ._features import Features, features, filesystem_unenforced
from ._netns import CLONE_NEWNET
from ._plan import LinuxPlan, build_plan, filter_a_bytes, filter_b_bytes
from ._reports import Kind, Report, read_all
from ._socket_dir import SocketDir
from ._unix_filter import recv_fds

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Mapping, Sequence

    from ._provenance import Provenance
    from ._unix_pins import PinnedRules
else:  # the C module: the same calls, plain int signal numbers, no enum classes to create
    import _signal as signal


class Launch(Record, frozen=False):
    """A running sandbox, as the supervisor sees it."""

    pid: int
    plan: LinuxPlan
    report_r: int
    broker: LazyBroker | None
    socket_dir: str  # its path when made (the sandbox may rename it: never trusted by path)
    tty: int | None
    pidns: bool
    events: list[dict] = field(default_factory=list)
    on_event: Callable[[dict], None] | None = None
    audit: object | None = None  # an _audit.Collector when denials were asked for
    socket_pin: SocketDir | None = None  # the socket directory, pinned (_socket_dir)
    proxy: object | None = None  # the filtering proxy (lsandbox.proxy.Proxy) of network.domains
    fs_denials_unobservable: str = ""  # why Landlock denials are not reported (else "")
    returncode: int | None = None  # like subprocess: -N for death by signal N
    error: str | None = None
    exit_status: int | None = None  # what `lsandbox run` exits with
    prefork: object | None = None  # the _prefork.Prefork that forked the relay (None: this process)


def make_socket_dir() -> SocketDir:
    """A fresh private directory (0700, unpredictable name, created atomically: what
    ``tempfile.mkdtemp`` does, without importing ``tempfile`` and ``random`` per launch),
    pinned by descriptor (``_socket_dir``): the sandbox may rename it, nothing trusts its path."""
    return _socket_dir.make()


def resolve_executable(cmd: str, env: Mapping[str, str], cwd: str | None) -> str:
    """PATH lookup as execvp would; raises CommandNotFoundError / CommandNotExecutableError
    (a FileNotFoundError / PermissionError, as subprocess raises)."""
    if "/" in cmd:
        path = cmd if os.path.isabs(cmd) or not cwd else os.path.join(cwd, cmd)
        if not os.path.exists(path):
            raise CommandNotFoundError(2, f"{cmd}: No such file or directory")
        return path
    denied = None
    for d in (env.get("PATH") or os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", cmd)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = path
    if denied:
        raise CommandNotExecutableError(13, f"{cmd}: Permission denied")
    raise CommandNotFoundError(2, f"{cmd}: command not found")


def _view_alone_short(plan: LinuxPlan) -> str | None:
    """Without Landlock the mount view carries writes, deny masks and devices, but it cannot
    refuse reads: a policy that reads less than everything (beyond its masked deny paths)
    is refused rather than run weaker."""
    if plan.abi or plan.view is None:
        return None
    from ..policy import FsAccess

    unmasked = [n for n in plan.view.notes if n.startswith("deny ")]
    if plan.policy.filesystem.access("/") is FsAccess.DENY or unmasked:
        what = unmasked[0] if unmasked else "the policy does not read everything"
        return ("Landlock is not available in this kernel and the read-only mount view cannot "
                f"refuse reads ({what}): the filesystem policy cannot be enforced")
    return None


def _fallback_plan(policy: Policy, socket_dir: str, feats: Features, report_refusals: bool) -> LinuxPlan:
    """The plan without namespaces, when the child finds them refused (a container): refused
    in turn where nothing would carry the filesystem policy (no Landlock)."""
    plan = build_plan(policy, socket_dir, Features(feats.landlock_abi, True, False, feats.root),
                      filter_a=False, filter_b=False, report_refusals=report_refusals)
    why = filesystem_unenforced(plan.abi, False, None)
    if why:
        raise SetupError(f"sandbox setup failed: {OSError(errno.EPERM, why)}")
    return plan


class _Refused(Exception):
    """The child's ``unshare`` was refused (a container's seccomp profile): its report."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.text)
        self.report = report


def spawn(
    policy: Policy,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdio: tuple[int, int, int] = (0, 1, 2),
    on_event: Callable[[dict], None] | None = None,
    feats: Features | None = None,
    log_denials: bool = False,
    pass_fds: Sequence[int] = (),
) -> Launch:
    """Start ``argv`` in the sandbox. ``log_denials``: also collect Landlock's audit records
    of the sandbox's filesystem/network denials (``_audit``); broker denials are always
    reported through ``on_event``. Besides ``stdio``, only ``pass_fds`` (at the same
    numbers) reach the command: an inherited descriptor is a capability the sandbox's
    policy does not see (a socket connected anywhere, a file opened outside its roots),
    so nothing is inherited unless asked for."""
    from ._provenance import Provenance

    feats = feats or features()
    if not feats.user_notif:
        raise SetupError("seccomp user notification is not available: AF_UNIX connects cannot be brokered")
    env = dict(os.environ if env is None else env)
    try:
        pin = make_socket_dir()
    except OSError as e:
        if isinstance(e, SetupError):
            raise
        where = os.environ.get("TMPDIR") or "/tmp"
        raise SetupError(f"cannot create the sandbox's socket directory in {where} "
                         f"(TMPDIR): {e.strerror or e}") from None
    socket_dir = pin.path
    env["LSANDBOX_SOCKET_DIR"] = socket_dir
    try:
        executable = resolve_executable(argv[0], env, cwd)
        plan = build_plan(policy, socket_dir, feats, filter_a=False, filter_b=False,  # sent after the fork
                          report_refusals=log_denials)
        why = filesystem_unenforced(plan.abi, plan.namespaces, plan.view) or _view_alone_short(plan)
        if why:  # never silently weaker: no Landlock and nothing else to carry the policy
            raise SetupError(why)
        if plan.namespaces and not feats.root and not _caps.dumpable():
            raise SetupError("this process is not dumpable (PR_SET_DUMPABLE is 0, as after a setuid): "
                             "its sandbox's user-namespace maps are root's to write; make it dumpable "
                             "(prctl PR_SET_DUMPABLE 1) or run as root")
        if policy.network.proxied:
            if not plan.netns:
                raise SetupError("network.domains needs a network namespace of the sandbox's own "
                                 "(unprivileged user namespaces or root); none is available here")
            from ..proxy._env import proxy_env

            env.update(proxy_env(plan.proxy_port))
    except BaseException as e:
        _cleanup_socket_dir(pin)
        if isinstance(e, ValueError) and not isinstance(e, SandboxError):  # landlock.PlanError
            raise PolicyError(str(e)) from None
        raise
    tty = stdio[0] if os.isatty(stdio[0]) else None
    events: list[dict] = []

    def record(e: dict) -> None:
        events.append(e)
        if on_event:
            on_event(e)

    uid, gid = os.geteuid(), os.getegid()
    provenance = Provenance(policy, socket_dir, time.time_ns())  # before the workload exists
    audit = None
    if log_denials:
        from ._audit import Collector

        audit = Collector(plan.abi)  # positioned at "now": only this sandbox's records follow
    if not plan.namespaces:
        _note_without_namespaces(record)
    launch = Launch(0, plan, -1, None, socket_dir, tty, plan.namespaces, events, on_event=on_event,
                    audit=audit, socket_pin=pin)
    userns = plan.namespaces and not feats.root
    landlock_log = bool(audit and not audit.why_not)  # records only if read back

    def spec(plan: LinuxPlan, sync: _socket.socket, report_fd: int) -> ChildSpec:
        return ChildSpec(plan, tuple(argv), executable, env, cwd, sync, report_fd, _ns_flags(plan, feats),
                         userns and plan.namespaces, uid, gid, tty, stdio, landlock_log=landlock_log,
                         pass_fds=tuple(pass_fds))

    pins = _pin_unix_rules(plan)
    try:
        fds = _start(launch, spec, policy, record)
    except _Refused as refused:
        # Namespaces refused at unshare (a container): the same policy without namespaces, in
        # a new child, or refused where nothing would carry it.
        r = refused.report
        try:
            if plan.proxy_port:
                raise SetupError("sandbox setup failed: " + str(OSError(
                    r.errno, f"network.domains needs a network namespace ({r.text})")))
            launch.plan = _fallback_plan(policy, socket_dir, feats, log_denials)
        except BaseException:
            _release(launch)
            if pins is not None:
                pins.close()
            raise
        launch.pidns = False
        record({"kind": "note", "text": f"namespaces unavailable ({r.text}); running without"})
        _note_without_namespaces(record)
        if pins is not None:
            pins.close()
        pins = _pin_unix_rules(launch.plan)
        try:
            fds = _start(launch, spec, policy, record)
        except BaseException:
            if pins is not None:
                pins.close()
            raise
    except BaseException:
        if pins is not None:
            pins.close()
        raise
    launch.broker = LazyBroker(fds[0], policy, pin, record, provenance, preload=_brokers_likely(launch.plan),
                               unix_pins=pins)
    return launch


def _pin_unix_rules(plan: LinuxPlan) -> PinnedRules | None:
    """Where the plan handles ``MAKE_SOCK`` or ``RESOLVE_UNIX`` (any Landlock), the
    connector's rule paths opened now, before the command can rename anything
    (``_unix_pins``)."""
    from ._unix_pins import PinnedRules, connector_rules

    rules = connector_rules(plan.handled_fs, plan.landlock_rules, plan.split)
    return PinnedRules(*rules) if rules is not None else None


def _brokers_likely(plan: LinuxPlan) -> bool:
    """Whether the command will probably make brokered calls: some socket path is allowed
    (or the proxied network, or reported refusals). Then the broker is imported in the
    background at once; otherwise on the first notification, so that a command which never
    connects does not pay for the import (CPU, and the GIL the supervisor needs to reap it)."""
    return plan.datagrams or bool(plan.proxy_port) or plan.report_refusals or bool(plan.split)


def _ns_flags(plan: LinuxPlan, feats: Features) -> int:
    if not plan.namespaces:
        return 0
    # IPC: System V objects and POSIX message queues are found by key or name, with no path
    # for Landlock to check; a fresh IPC namespace leaves the host's out of reach.
    return (_sys.CLONE_NEWPID | _sys.CLONE_NEWNS | _sys.CLONE_NEWIPC | (0 if feats.root else _sys.CLONE_NEWUSER)
            | (CLONE_NEWNET if plan.netns else 0))


def _start(launch: Launch, spec: Callable[[LinuxPlan, _socket.socket, int], ChildSpec], policy: Policy,
           record: Callable[[dict], None]) -> list[int]:
    """Fork the child running ``launch.plan``, send it filter A, receive its listener (and the proxy's).
    Raises ``_Refused`` (the child reaped) when it reports its namespaces refused, and
    ``SetupError`` (everything released) when it fails otherwise."""
    parent_sock, child_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        child = spec(launch.plan, child_sock, report_w)
        launch.pid = _start_preforked(launch, child)
        if launch.pid == 0:
            # init cloned into its namespaces where this process has one thread; else a plain
            # glibc fork (glibc must reset its locks, as other threads may hold them), a relay
            # that unshares the namespaces itself.
            pid, parent = clone_init(child.ns_flags)
            if pid < 0:
                pid = os.fork()
            if pid == 0:
                _become_child(child, parent, parent_sock, report_r)
            launch.pid = pid
    except BaseException:  # a KeyboardInterrupt, a failed fork: nothing left behind
        if launch.pid > 0:
            os.kill(launch.pid, signal.SIGKILL)
            _reap(launch)
        launch.pid = 0
        parent_sock.close()
        child_sock.close()
        os.close(report_r)
        os.close(report_w)
        _release(launch)
        raise
    pid = launch.pid
    child_sock.close()
    os.close(report_w)
    launch.report_r = report_r
    try:  # while the child unshares, mounts and applies Landlock (2 cores: in parallel)
        filters = [b"A" + filter_a_bytes(launch.plan)]
        if launch.plan.filter_b is None:  # B first: the child installs it before A
            filters.insert(0, b"B" + filter_b_bytes(launch.plan))
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        _reap(launch)
        parent_sock.close()
        _release(launch)
        raise
    try:
        for msg in filters:
            parent_sock.send(msg, _socket.MSG_NOSIGNAL)
    except OSError:
        pass  # the child is gone: its reports say why
    parent_sock.settimeout(60)  # never hang the caller on a child stuck before hand-over
    try:
        msg, fds = recv_fds(parent_sock, 1)
        if msg == b"P":  # the proxied network's listener (_netns), before seccomp's
            launch.proxy = _serve_proxy(fds, policy, record)
            msg, fds = recv_fds(parent_sock, 1)
    except TimeoutError:
        _abandon(launch)
        _release(launch)
        raise SetupError("the sandboxed child did not hand over its seccomp listener within 60 s") from None
    except OSError:
        fds = []  # the child failed before the hand-over and closed its end (a reset when
        # filter A was left unread): its reports say why
    finally:
        parent_sock.close()
    if not fds:  # end of stream: the child failed before the hand-over
        raise _abandon(launch)
    return fds


_launches = 0  # in this process: the first never asks for the pre-forked launcher


def _become_child(child: ChildSpec, parent: int, parent_sock: _socket.socket, report_r: int) -> None:
    """In the forked or cloned child: never returns (nothing may unwind into the caller's
    code). No garbage collection in the short-lived setup processes: a collection walks
    every object the caller owns and copies the pages it touches (copy-on-write)."""
    try:
        gc.disable()
        parent_sock.close()
        os.close(report_r)
        child_main(child, parent)
    finally:
        os._exit(125)


def _start_preforked(launch: Launch, child: ChildSpec) -> int:
    """The relay forked by this process's pre-forked launcher (``_prefork``), or 0 (none ready,
    or descriptors to pass: then the caller forks)."""
    global _launches
    launch.prefork = None
    _launches += 1
    if child.pass_fds or _launches < 2:
        return 0
    from ._prefork import launcher

    pre = launcher()
    if pre is None:
        return 0
    try:
        cwd_fd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        pid = pre.start(child, cwd_fd)
    except OSError:
        return 0
    finally:
        os.close(cwd_fd)
    if pid <= 0:  # the launcher could not fork (the process limit): this process tries
        return 0
    launch.prefork = pre
    return pid


def _reap(launch: Launch) -> int:
    """The relay's wait status: from ``waitpid`` (our child) or from the pre-forked launcher."""
    if launch.prefork is not None:
        return launch.prefork.reap(launch.pid)  # type: ignore[attr-defined]
    while True:
        try:
            return os.waitpid(launch.pid, 0)[1]
        except ChildProcessError:
            return 0


def _abandon(launch: Launch) -> BaseException:
    """Kill and reap a child that failed before the hand-over and return what to raise:
    ``_Refused`` when its namespaces were refused (the socket directory and audit stay, for
    the fallback), else a ``SetupError`` with its report (everything released)."""
    try:
        os.kill(launch.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    status = _reap(launch)
    fd, launch.report_r = launch.report_r, -1  # read_all closes it, whatever it raises
    reports = read_all(fd)
    if launch.proxy is not None:
        launch.proxy.close()  # type: ignore[attr-defined]
        launch.proxy = None
    for r in reports:
        if r.kind == Kind.NAMESPACES_REFUSED:
            return _Refused(r)
    _release(launch)
    for r in reports:
        if r.kind == Kind.SETUP:
            return SetupError(f"sandbox setup failed: {r.text}")
    how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
           else f"exit status {os.WEXITSTATUS(status)}")
    return SetupError("sandbox setup failed: the sandboxed child ended before handing over its seccomp "
                      f"listener ({how})")


def _release(launch: Launch) -> None:
    """Remove the socket directory and close the audit reader of a launch that failed."""
    if launch.report_r >= 0:
        os.close(launch.report_r)
        launch.report_r = -1
    if launch.socket_pin is not None:
        _cleanup_socket_dir(launch.socket_pin)
        launch.socket_pin = None
    if launch.audit is not None:
        launch.audit.close()  # type: ignore[attr-defined]
        launch.audit = None


def _serve_proxy(fds: list[int], policy: Policy, record: Callable[[dict], None]) -> object:
    """Serve the listener the relay made in the sandbox's network namespace."""
    import socket

    from ..proxy import Proxy

    for extra in fds[1:]:
        os.close(extra)
    if not fds:
        raise SetupError("the sandbox's proxy listener was not received")
    proxy = Proxy(policy.network, record)
    proxy.serve(socket.socket(fileno=fds[0]))
    return proxy


class LazyBroker:
    """The broker, built and started when the first notification arrives.

    Most commands never ``connect``/``bind``/``sendto`` an address, and importing the broker
    (``ctypes``, its C fast path...) is a large part of a launch, so it is not on the launch
    path: with ``preload`` (a policy that allows some socket path) this object's thread
    imports it in the background (a command that connects at once finds it loaded, or waits
    for the rest of the import); then it polls the listener and starts the broker on the
    first notification; notified calls wait in the kernel meanwhile (nothing is answered,
    nothing is allowed). If the broker cannot be started, the listener is closed: the notified calls
    fail (ENOSYS), the sandbox fails closed, and a note says why. The same thread removes the
    socket directories of killed supervisors (``_socket_dir.remove_stale_now_and_then``), off
    the launch path."""

    def __init__(self, fd: int, policy: Policy, socket_dir: SocketDir, record: Callable[[dict], None],
                 provenance: Provenance, *, preload: bool = True, unix_pins: PinnedRules | None = None) -> None:
        self._fd = fd
        self._preload = preload
        self._pins = unix_pins
        self._args = (policy, socket_dir, record, provenance)
        self._broker: object | None = None
        self._closing = False
        # ``_thread``, not ``threading``: a command that never connects (most) then imports no
        # threading module at all. The thread ends by itself (close() wakes it) and releases
        # ``_done``, which close() waits for, as a join would.
        self._lock = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._tid = 0
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        self._tid = _thread.get_native_id()
        try:
            self._watch()
        finally:
            self._done.release()

    def _watch(self) -> None:
        if self._preload:
            try:  # the first notification then finds it loaded
                from . import _broker  # noqa: F401
            except BaseException:  # noqa: BLE001 - _start imports it again and fails closed, saying why
                pass
        try:  # also in the background: socket directories of killed supervisors (a scan of $TMPDIR)
            _socket_dir.remove_stale_now_and_then(os.path.dirname(self._args[1].path))
        except OSError:
            pass
        p = select.poll()
        p.register(self._fd, select.POLLIN)
        p.register(self._wake_r, select.POLLIN)
        while True:
            try:
                ready = dict(p.poll())
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
                continue
            if self._wake_r in ready or not ready.get(self._fd, 0) & select.POLLIN:
                return  # closing, or every target gone (POLLHUP): nothing to serve
            with self._lock:
                if not self._closing:
                    self._start()
            return

    def _start(self) -> None:
        policy, socket_dir, record, provenance = self._args
        try:
            from ._broker import Broker

            # MAKE_SOCK / RESOLVE_UNIX handled: the broker's final binds, connects and sends
            # under the plan's rules
            pins = self._pins
            broker = Broker(self._fd, policy, socket_dir, record, provenance=provenance,
                            connector=(pins.handled, pins.rules) if pins is not None else None)
            broker.start()
        except BaseException as e:  # noqa: BLE001 - fail closed, and say why
            fd, self._fd = self._fd, -1
            os.close(fd)
            record({"kind": "note", "text": f"the AF_UNIX broker could not start ({e!r}): "
                                            "brokered calls fail"})
            return
        self._broker = broker

    def close(self) -> None:
        """Stop serving and close the listener (pending notified calls then fail)."""
        with self._lock:
            self._closing = True
        os.write(self._wake_w, b"x")
        with self._done:  # the thread has ended its work
            pass
        _gone(self._tid)
        if self._broker is not None:
            self._broker.close()  # type: ignore[attr-defined]  # closes the listener
        elif self._fd >= 0:
            os.close(self._fd)
        if self._pins is not None:
            self._pins.close()  # after the broker: its connector is gone
        os.close(self._wake_r)
        os.close(self._wake_w)


def _gone(tid: int) -> None:
    """Wait (a few milliseconds at most) until the thread ``tid`` has exited, not only
    released its lock: the next launch clones init only in a process with one thread (a
    thread still exiting may hold a lock of the C library that the clone would copy held)."""
    for _ in range(200):
        if not tid or not os.path.exists(f"/proc/self/task/{tid}"):
            return
        time.sleep(0.00002)


def wait(launch: Launch) -> Launch:
    """Wait for the sandbox to end; fill in ``returncode``/``exit_status``/``error``."""
    status = _reap(launch)
    fd, launch.report_r = launch.report_r, -1  # read_all closes it, whatever it raises
    reports = read_all(fd)
    if launch.broker is not None:
        launch.broker.close()
    if launch.proxy is not None:
        launch.proxy.close()  # type: ignore[attr-defined]
        launch.proxy = None
    if launch.socket_pin is not None:
        _cleanup_socket_dir(launch.socket_pin)
        launch.socket_pin = None
    if launch.tty is not None:
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(launch.tty, os.getpgrp())
        except OSError:
            pass
        signal.signal(signal.SIGTTOU, old)
    cmd_status = status
    restricted = {launch.pid}
    failed = False
    for r in reports:
        if r.kind == Kind.RESTRICTED:
            restricted.add(r.value)
        elif r.kind == Kind.STATUS:
            cmd_status = r.value
        elif r.kind == Kind.SETUP:
            launch.error, failed = f"sandbox setup failed: {r.text}", True
        elif r.kind in (Kind.NOTE, Kind.NETNS_REFUSED):
            launch.events.append({"kind": "note", "text": r.text})
        elif r.kind == Kind.EXEC:
            launch.error = f"cannot execute {r.text}"
    _collect_audit(launch, restricted)
    if failed:
        launch.exit_status, launch.returncode = 125, 125
        return launch
    if os.WIFSIGNALED(cmd_status):
        launch.returncode = -os.WTERMSIG(cmd_status)
        launch.exit_status = 128 + os.WTERMSIG(cmd_status)
    else:
        launch.returncode = launch.exit_status = os.WEXITSTATUS(cmd_status)
    return launch


def _note_without_namespaces(record: Callable[[dict], None]) -> None:
    from ._without_namespaces import note

    record({"kind": "note", "text": note()})


def _collect_audit(launch: Launch, restricted: set[int]) -> None:
    audit = launch.audit
    if audit is None:
        return
    launch.audit = None
    found = audit.collect(restricted)  # type: ignore[attr-defined]
    launch.fs_denials_unobservable = audit.why_not  # type: ignore[attr-defined]
    found += [{"kind": "note", "text": t} for t in audit.notes]  # type: ignore[attr-defined]
    if launch.plan.view is not None:
        found.append({"kind": "note", "text": "writes and metadata changes outside the writable roots "
                      "are refused by the read-only mount view (EROFS) before Landlock sees them: "
                      "they are not listed"})
    from ._refusals import unobservable

    found += [{"kind": "note", "text": t} for t in unobservable(launch.plan.ro_binds)]
    for e in found:
        launch.events.append(e)
        if launch.on_event:
            try:
                launch.on_event(e)
            except Exception:  # noqa: BLE001 - a failing sink must not lose the exit status
                pass


class SignalForwarder:
    """Handlers forwarding INT/TERM/HUP/QUIT/WINCH/USR1/USR2/CONT to the sandbox, installed
    *before* ``spawn`` (main thread only): a signal that arrives while the sandbox is being
    made is kept and delivered once it exists (``attach``), instead of killing lsandbox by
    its default action in the window between the fork and the handlers (the sandbox would
    then die of PDEATHSIG, not of the signal sent, and leave its socket directory behind).
    The forked child restores the default dispositions at once (``child_main``).

    A signal the caller's environment ignores (``nohup``: SIGHUP; a background job of a
    shell without job control: SIGINT and SIGQUIT) stays ignored: not forwarded, and the
    command inherits the ignore, as it would run directly (``nohup lsandbox run -- job``
    must leave the job immune to hangups)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self._old = {s: signal.signal(s, self._handler) for s in FORWARDED if signal.getsignal(s) != signal.SIG_IGN}

    def _handler(self, sig: int, _frame: object) -> None:
        if self.pid is None:
            self.pending.append(sig)
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def attach(self, launch: Launch) -> None:
        self.pid = launch.pid
        pending, self.pending = self.pending, []
        for sig in pending:
            self._handler(sig, None)

    def restore(self) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def forward_signals(launch: Launch) -> Callable[[], None]:
    """Forward the signals to an existing sandbox; return a function restoring the previous
    handlers. (Main thread only; ``SignalForwarder`` also covers the launch itself.)"""
    fwd = SignalForwarder()
    fwd.attach(launch)
    return fwd.restore


def _cleanup_socket_dir(pin: SocketDir) -> None:
    """Remove the socket directory through its descriptor (never by a path walk: the sandbox
    may have replaced the path with a symlink to files it may not delete)."""
    if not _socket_dir.remove(pin):
        print(f"lsandbox: warning: could not remove {pin.path}", file=sys.stderr)
