"""A small pre-forked launcher process for callers that launch sandboxes again and again.

Every launch forks the caller twice (init, command; three times where a relay is needed).
Each fork copies the caller's page tables and every page the child then writes, and each
exit frees them: an agent host or a test runner of a few hundred megabytes pays for its own
size on every sandbox. From its second launch on, a process starts this launcher: a fresh
interpreter (``python -c ...``, its own small address space) that imports the launch path
once and then clones init (``_child.clone_init``; a relay where the clone is refused) for
each launch it is asked for. The supervisor stays the caller: it plans (every decision is
made there, as before), serves the broker and receives the listener; the launcher only
forks and runs the frozen :class:`~lsandbox.linux._child.ChildSpec` it is sent (its init
forks the command from C where the compiled module is built: ``_fastpath_child.h``).

Protocol (one private SEQPACKET socket pair, each request and its answer under a lock):
``S`` + the namespace flags + the pickled spec fields, with the descriptors the child needs
by SCM_RIGHTS (sync socket, report pipe, the three std descriptors, the working directory),
answered with the pid of init (or of the relay); ``W`` + a pid, answered with its wait
status. That first process is made ahead of its request (:class:`_Spare`, as soon as the
previous one was handed its request), which receives the request from the launcher; without a spare (gone,
the first request, or a spare in other namespaces) the launcher clones or forks it then.
The launcher reaps a process only when asked, so until the caller has waited for it the pid
stays what it was (a zombie at worst, as a child of the caller's would): ``pidfd_open`` and
``kill`` on it stay safe. The caller asks after the process's pidfd said it ended, so the
launcher never blocks.

Failing closed: the launcher watches the caller through a pidfd; when the caller is gone
(or closes the socket) it kills every init (or relay) it started (SIGKILL; the kernel then
ends each PID namespace; a relay's init dies of its PDEATHSIG; a child without namespaces
gets ``_child.PARENT_GONE`` and kills the command's whole tree first) and exits. If the launcher
itself dies, they die of their PDEATHSIG. The caller falls back to forking itself whenever the launcher
is not ready, and always for launches that pass extra descriptors.
``LSANDBOX_NO_PREFORK=1`` disables it.

The launcher is a copy of the caller as it was when it started: a sandbox it forks inherits
*that* process state. So it is used only while the caller's state is the same
(:func:`_state`: credentials, capabilities, ``no_new_privs``, seccomp, namespaces, root,
cgroup, rlimits) and while the caller can still ptrace-access it (``/proc/<pid>/mem``): a
caller that has since confined itself further (a Landlock domain, which no file shows, or
another LSM) cannot, and then forks itself. Otherwise a caller that dropped root, lowered an
rlimit or restricted itself after its second launch would get sandboxes that escaped it.
"""

from __future__ import annotations

import _socket
import _thread  # not threading: the launcher then has no Python work to do after each fork
import os
import select
import signal
import struct
import sys

from ._child import PARENT_GONE, ChildSpec, clone_init, parent_gone, prepare

_INT = struct.Struct("=i")
_MAX_FDS = 8


class Prefork:
    """The caller's handle on its launcher process."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.lock = _thread.allocate_lock()
        # what the launcher is forked with (before the exec: the same); first, so that a
        # thread refused part of it starts no launcher
        self.state = _state()
        self.sock, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        code = _launcher_code()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - replaced by exec at once
            try:
                os.dup2(theirs.fileno(), 3, inheritable=True)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # holds none of the caller's pipes open
                    os.dup2(null, fd)
                os.closerange(4, os.sysconf("SC_OPEN_MAX"))
                # /proc/self/exe: the interpreter this process runs, even where its path is
                # not searchable by the caller's uid (an interpreter under another's home)
                os.execv("/proc/self/exe", [sys.executable, "-I", "-c", code, str(self.owner)])
            finally:
                os._exit(127)
        theirs.close()
        self.pid = pid
        self.ready = False
        self.dead = False

    def same_caller(self) -> bool:
        """Would a sandbox forked by the launcher inherit what one forked here would?"""
        try:
            if _state() != self.state:
                return False
        except OSError:  # some of it refused to this thread (a seccomp filter of its own): fork here
            return False
        try:
            os.close(os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            return False  # confined since (Landlock, an LSM, ptrace rules): fork here
        return True

    def usable(self) -> bool:
        """Ready to serve (its first message, "R", received), without waiting for it."""
        with self.lock:
            if not self.ready and not self.dead:
                try:
                    self.ready = self.sock.recv(16, _socket.MSG_DONTWAIT) == b"R"
                    self.dead = not self.ready
                except BlockingIOError:
                    pass
                except OSError:
                    self.dead = True
            return self.ready and not self.dead

    def _ask(self, msg: bytes, fds: list[int] | None = None) -> int:
        try:
            with self.lock:
                if fds:
                    self.sock.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                               struct.pack(f"={len(fds)}i", *fds))])
                else:
                    self.sock.send(msg)
                reply = self.sock.recv(16)
        except OSError:
            reply = b""
        if len(reply) != _INT.size:
            self.dead = True
            raise OSError(0, "the pre-forked launcher is gone")
        return int(_INT.unpack(reply)[0])

    def start(self, spec: ChildSpec, cwd_fd: int) -> int:
        """Have the launcher fork the relay of ``spec``; its pid (0: it could not, the caller
        forks)."""
        import pickle

        fields = {"plan": spec.plan, "argv": spec.argv, "executable": spec.executable, "env": spec.env,
                  "cwd": spec.cwd, "ns_flags": spec.ns_flags, "userns": spec.userns, "uid": spec.uid,
                  "gid": spec.gid, "tty": spec.tty is not None, "landlock_log": spec.landlock_log,
                  "umask": _umask(), "ignored": _ignored()}
        return self._ask(b"S" + _INT.pack(spec.ns_flags) + pickle.dumps(fields, pickle.HIGHEST_PROTOCOL),
                         [spec.sync.fileno(), spec.report_fd, *spec.std_fds, cwd_fd])

    def reap(self, pid: int) -> int:
        """Wait for the relay ``pid`` to end, then have the launcher reap it: its wait status
        (death by SIGKILL if the launcher is gone: it took its relays with it)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = -1
        if pidfd >= 0:
            try:
                select.select([pidfd], [], [])
            finally:
                os.close(pidfd)
        try:
            return self._ask(b"W" + _INT.pack(pid))
        except OSError:
            return signal.SIGKILL


#: Signals the launcher ignores; each relay takes the caller's disposition of them back.
_TERMINAL = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _ignored() -> tuple[int, ...]:
    """Which of them the calling process ignores now (``nohup``, a background job): the
    sandbox inherits the ignore, as a relay forked by the caller itself would."""
    return tuple(int(sig) for sig in _TERMINAL if signal.getsignal(sig) == signal.SIG_IGN)


def _umask() -> int:
    """This thread's umask, read without setting it (``os.umask`` would change it for the
    caller's other threads meanwhile)."""
    with open("/proc/thread-self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    raise OSError(0, "no Umask in /proc/thread-self/status")


_STATE_FIELDS = (b"Cap", b"NoNewPrivs:", b"Seccomp", b"Groups:", b"Uid:", b"Gid:", b"Cpus_allowed", b"Mems_allowed")
_NAMESPACES = ("mnt", "net", "pid", "pid_for_children", "user", "ipc", "uts", "cgroup", "time")


def _state() -> tuple:
    """The process state a sandbox forked by this thread inherits and the launch does not
    send. Of the calling *thread* (/proc/thread-self): credentials, seccomp filters,
    namespaces, the root, the CPU affinity and the niceness are per thread, and a fork copies
    the forking thread's; then what bounds its claim on the machine (rlimits, cgroup, the
    scheduling policy, oom_score_adj)."""
    with open("/proc/thread-self/status", "rb") as f:
        status = [ln for ln in f if ln.startswith(_STATE_FIELDS)]
    with open("/proc/thread-self/limits", "rb") as f:
        limits = f.read()
    with open("/proc/thread-self/cgroup", "rb") as f:
        cgroup = f.read()
    with open("/proc/thread-self/oom_score_adj", "rb") as f:
        oom = f.read()
    links = []
    for name in (*(f"ns/{n}" for n in _NAMESPACES), "root"):
        try:
            links.append(os.readlink(f"/proc/thread-self/{name}"))
        except OSError:
            links.append("")
    sched = (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    return (tuple(status), limits, cgroup, oom, tuple(links), sched, _dumpable())


def _dumpable() -> int:
    """PR_GET_DUMPABLE of this process. A caller that made itself non-dumpable (to keep its
    memory and environment from other processes of its uid) gets no launcher: the launcher
    is a fresh, dumpable process that would hold every launch's environment."""
    from ._caps import dumpable

    return int(dumpable())


def _launcher_code() -> str:
    """The launcher's program (``python -I -c``)."""
    return f"import sys; sys.path[:0] = {_paths()!r}; from lsandbox.linux._prefork import serve; serve()"


def _paths() -> list[str]:
    """Where this package and its dependencies are imported from (the launcher runs ``-I``)."""
    return [p for p in sys.path if p]


_instance: Prefork | None = None
_instance_lock = _thread.allocate_lock()


def launcher() -> Prefork | None:
    """This process's launcher if it is ready; started (in the background) when missing.
    ``_launcher`` asks from a process's second launch on (``lsandbox run`` launches once)."""
    global _instance
    if os.environ.get("LSANDBOX_NO_PREFORK", "") in ("1", "true", "yes") or not _dumpable():
        return None
    with _instance_lock:
        inst = _instance
        if inst is None or inst.owner != os.getpid():  # none yet, or the caller's forked child
            try:
                _instance = Prefork()
            except OSError:
                pass
            return None
    return inst if inst.usable() and inst.same_caller() else None


def serve() -> None:
    """The launcher's loop (``python -c``; fd 3 is the caller's socket, argv[1] its pid)."""
    import gc
    import pickle

    from ._child import child_main, use_executor
    from ._launcher import filter_a_bytes  # noqa: F401 - the launch path, imported once

    use_executor()  # init forks the command from C where the module is built

    sock = _socket.socket(fileno=3)
    owner = os.pidfd_open(int(sys.argv[1]))
    relays: set[int] = set()
    flat: set[int] = set()  # of those, the children without namespaces (PARENT_GONE)
    for sig in _TERMINAL:
        signal.signal(sig, signal.SIG_IGN)  # the caller's terminal's signals are the caller's
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    poll.register(owner, select.POLLIN)
    spare = _Spare.make(sock, owner, child_main, gc, pickle, None)
    sock.send(b"R")
    last = None  # the last request: the next spare warms up with it
    try:
        while True:
            for fd, _ev in poll.poll():
                if fd == owner:
                    return
                # CLOEXEC: the report pipe must not reach the command (as made by the caller)
                msg, anc, _fl, _ad = sock.recvmsg(1 << 20, _socket.CMSG_SPACE(_MAX_FDS * 4), _socket.MSG_CMSG_CLOEXEC)
                fds: list[int] = []
                for level, kind, data in anc:
                    if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                        fds.extend(struct.unpack(f"={len(data) // 4}i", data[:len(data) // 4 * 4]))
                if not msg:
                    return
                if msg[:1] == b"S" and len(fds) == 6:
                    try:
                        if spare is not None and not spare.fits(msg):
                            spare.discard()
                            spare = None
                        pid = spare.hand(msg, fds) if spare is not None else 0
                        spare = None
                        if not pid:
                            pid = _fork_relay(_fields(msg, pickle), fds, sock, child_main, gc)
                    except OSError:  # a failed fork (the process limit): the caller forks, or says why
                        pid = 0
                    finally:
                        for n in fds:
                            os.close(n)
                    if pid:
                        relays.add(pid)
                        if not _flags(msg):
                            flat.add(pid)
                    sock.send(_INT.pack(pid))
                    last = msg
                    if spare is None:  # the next launch's init, cloned while this one runs
                        spare = _Spare.make(sock, owner, child_main, gc, pickle, last)
                elif msg[:1] == b"W" and len(msg) == 1 + _INT.size:
                    (pid,) = _INT.unpack(msg[1:])
                    status = 0
                    if pid in relays:
                        relays.discard(pid)
                        flat.discard(pid)
                        status = os.waitpid(pid, 0)[1]
                    sock.send(_INT.pack(status))
                    if spare is None:  # the next launch's relay, forked while the caller goes on
                        spare = _Spare.make(sock, owner, child_main, gc, pickle, last)
                else:
                    for n in fds:
                        os.close(n)
                    return
    finally:
        # Fail closed: the caller is gone. A child without a PID namespace gets PARENT_GONE,
        # its parent death signal, and kills the command's whole tree first
        # (_child._serve_as_init); the others SIGKILL (init of a PID namespace ignores any
        # other signal from outside it).
        for pid in (*relays, *((spare.pid,) if spare is not None else ())):
            try:
                os.kill(pid, PARENT_GONE if pid in flat else signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(0)


class _Spare:
    """The next launch's first process, forked ahead of its request: the fork and the
    interpreter's work after it are off the launch path. After a first request it is init
    itself, cloned into new namespaces like the last request's (``_child.clone_init``: all but
    the mount namespace, which it makes when its request comes), and serves only a request for
    the same namespaces (else the launcher kills it and clones init then); before that, a
    relay that unshares them itself. It is a copy of the launcher like any relay (whose state
    does not change), dies with it (PDEATHSIG; killed too when the caller goes), and waits for
    one request on a socket of its own; the launcher forwards the request with its
    descriptors and answers with the spare's pid. If the spare is gone, the launcher forks
    the relay itself."""

    def __init__(self, pid: int, sock: _socket.socket, flags: int = 0) -> None:
        self.pid, self.sock, self.flags = pid, sock, flags

    @classmethod
    def make(cls, launcher_sock: _socket.socket, owner: int, child_main: object, gc: object, pickle: object,
             last: bytes | None) -> _Spare | None:
        try:
            mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        except OSError:
            return None
        flags = _flags(last) if last is not None else 0
        pid, parent = clone_init(flags)
        if pid < 0:
            flags = 0
            try:
                pid = os.fork()
            except OSError:
                mine.close()
                theirs.close()
                return None
        if pid == 0:
            try:
                mine.close()
                launcher_sock.close()
                os.close(owner)
                gc.disable()  # type: ignore[attr-defined]
                _prctl_pdeathsig()
                if parent_gone(parent):
                    os._exit(0)  # the launcher is gone already
                if last is not None:  # the pages a request's decoding and C data touch: copied now
                    fields = _fields(last, pickle)
                    prepare(fields["plan"], fields["argv"], fields["executable"], fields["env"], fields["cwd"],
                            fields["landlock_log"], 0)
                    del fields
                msg, anc, _fl, _ad = theirs.recvmsg(1 << 20, _socket.CMSG_SPACE(_MAX_FDS * 4),
                                                    _socket.MSG_CMSG_CLOEXEC)
                fds: list[int] = []
                for level, kind, data in anc:
                    if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                        fds.extend(struct.unpack(f"={len(data) // 4}i", data[:len(data) // 4 * 4]))
                if msg[:1] != b"S" or len(fds) != 6:
                    os._exit(0)
                if parent >= 0:
                    _discard_pending()
                theirs.send(b"k")  # from here on a signal is for this launch: the launcher answers
                theirs.close()
                fields = _fields(msg, pickle)
                prepared = prepare(fields["plan"], fields["argv"], fields["executable"], fields["env"],
                                   fields["cwd"], fields["landlock_log"], fds[0])
                _relay_child(fields, fds, prepared, child_main, parent)
            finally:  # never back into the launcher's loop
                os._exit(125)
        theirs.close()
        return cls(pid, mine, flags)

    def fits(self, msg: bytes) -> bool:
        """Whether this spare can serve the request ``msg``: a relay serves any, a cloned
        init only a request for the namespaces it is in."""
        return not self.flags or _flags(msg) == self.flags

    def discard(self) -> None:
        """Kill and reap it (it waits for a request it will not get)."""
        self.sock.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)

    def hand(self, msg: bytes, fds: list[int]) -> int:
        """Forward a start request: the spare's pid once it has taken the request (see
        :func:`_discard_pending`), or 0 (gone: reaped here)."""
        try:
            self.sock.sendmsg([msg], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"={len(fds)}i", *fds))])
            self.sock.settimeout(30)
            if self.sock.recv(1) != b"k":
                raise OSError(0, "the spare ended before it took the request")
            return self.pid
        except OSError:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            return 0
        finally:
            self.sock.close()


def _discard_pending() -> None:
    """In a spare cloned as init: drop the forwarded signals that became pending while it
    waited. It blocks them from birth (as init must) and is in the caller's process group,
    so a Ctrl-C or a ``killpg`` meant for the caller between two launches would otherwise
    wait in it and reach the next launch's command at once. Setting a signal to SIG_IGN
    discards it even while blocked; its disposition is put back at once. The spare answers
    the launcher only after this, and the caller learns its pid only then: no signal meant
    for this launch can be dropped."""
    from ._child import FORWARDED

    for sig in FORWARDED:
        signal.signal(sig, signal.signal(sig, signal.SIG_IGN))


def _fields(msg: bytes, pickle: object) -> dict:
    """The spec fields of a start request (``S``, the namespace flags, the pickle)."""
    return pickle.loads(msg[1 + _INT.size:])  # type: ignore[attr-defined]


def _flags(msg: bytes) -> int:
    return int(_INT.unpack_from(msg, 1)[0])


def _prctl_pdeathsig() -> None:
    import _prctl

    _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)


def _fork_relay(fields: dict, fds: list[int], sock: _socket.socket, child_main: object, gc: object) -> int:
    sync = fds[0]
    prepared = prepare(fields["plan"], fields["argv"], fields["executable"], fields["env"], fields["cwd"],
                       fields["landlock_log"], sync)
    pid, parent = clone_init(fields["ns_flags"])  # init itself (the launcher has one thread)
    if pid < 0:
        pid = os.fork()  # a relay: clone refused the namespaces (it reports which)
    if pid != 0:
        return pid
    try:
        gc.disable()  # type: ignore[attr-defined]
        sock.close()
    except BaseException:  # noqa: BLE001 - never back into the launcher's loop
        os._exit(125)
    _relay_child(fields, fds, prepared, child_main, parent)
    return 0  # pragma: no cover - _relay_child never returns


def _relay_child(fields: dict, fds: list[int], prepared: object, child_main: object, parent: int = -1) -> None:
    """In the relay (a fork of the launcher, or its spare): the request's spec, then the child.
    ``parent`` >= 0 (the launcher's pidfd): cloned into its namespaces, it is init."""
    sync, report, std0, std1, std2, cwd_fd = fds
    try:
        for sig in _TERMINAL:  # ignored by the launcher; the caller's own dispositions again
            signal.signal(sig, signal.SIG_IGN if sig in fields["ignored"] else signal.SIG_DFL)
        os.umask(fields["umask"])
        if fields["cwd"] is None:  # before the mount namespace is made: it takes it along
            os.fchdir(cwd_fd)
        os.close(cwd_fd)
        spec = ChildSpec(fields["plan"], fields["argv"], fields["executable"], fields["env"], fields["cwd"],
                         _socket.socket(fileno=sync), report, fields["ns_flags"], fields["userns"],
                         fields["uid"], fields["gid"], 0 if fields["tty"] else None, (std0, std1, std2),
                         landlock_log=fields["landlock_log"], prepared=prepared)
    except BaseException:  # noqa: BLE001 - never back into the launcher's loop
        os._exit(125)
    child_main(spec, parent)  # type: ignore[operator]
    os._exit(125)  # pragma: no cover - child_main never returns
