"""What runs in the sandboxed child between clone and exec, in DESIGN.md's order.

Only syscalls here: every decision was made in the supervisor, which hands over one frozen
:class:`ChildSpec` (the plan, the command, the descriptors). Errors go to the supervisor
over the CLOEXEC report pipe as typed records (``_reports``) and the child exits 125; the
supervisor prints them as ``lsandbox: error: ...``. Namespaces refused at ``unshare`` are
reported as such and the child exits: the supervisor then runs the plan without namespaces
in a new child (``_launcher.spawn``). With a PID namespace this process is PID 1 of the
sandbox: after applying the sandbox to itself it forks the command (PID 2) and stays as a
minimal init (reaps, forwards signals, reports the command's status), so that when it dies
(because the supervisor died) the kernel kills everything in the sandbox.
"""

from __future__ import annotations

import _socket
import os
import select
import sys

import _prctl  # python-prctl's C extension, not its wrapper module

import landlock as ll
import seccomp_bpf as sb
from lsandbox_records import Record

from . import _caps, _sys
from ._mount_view import apply_view, fresh_proc
from ._netns import CLONE_NEWNET, hand_over_proxy_listener, loopback_up
from ._plan import LinuxPlan
from ._reports import Kind, Step, send
from ._unix_filter import install_and_hand_over, send_fd

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    import signal
    from typing import Any
else:  # the C module: the same calls, plain int signal numbers, no enum classes to create
    import _signal as signal

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
_RawRuleset = ll.RawRuleset  # loaded with this module (landlock loads names on first use)
#: Without a PID namespace, the signal the child gets when the supervisor dies (its parent
#: death signal): it kills the command's whole tree first, where SIGKILL would leave the
#: tree's daemons (``setsid``) running without anything to end them.
PARENT_GONE: signal.Signals = signal.SIGRTMIN + 1  # type: ignore[assignment]  # (an int at run time)


class ChildSpec(Record):
    """Everything the forked child needs, decided by the supervisor before the fork."""

    plan: LinuxPlan
    argv: tuple[str, ...]
    executable: str
    env: dict[str, str]
    cwd: str | None
    sync: _socket.socket  # SEQPACKET to the supervisor: filter A in, listeners out
    report_fd: int  # the report pipe's write end (CLOEXEC)
    ns_flags: int  # CLONE_NEW* to unshare (0: no namespaces)
    userns: bool
    uid: int
    gid: int
    tty: int | None
    std_fds: tuple[int, int, int]
    landlock_log: bool = False  # Landlock audit records for the command too (LOG_NEW_EXEC_ON)
    pass_fds: tuple[int, ...] = ()
    prepared: Any = None  # prepare()'s C data, made before the fork (the pre-forked launcher)


def _fail(report_fd: int, step: int, e: BaseException) -> None:
    """Report a failed setup step (the text is what the user reads)."""
    err = e.errno if isinstance(e, OSError) and e.errno else 0
    text = str(e) if isinstance(e, OSError) and e.strerror else repr(e)
    send(report_fd, Kind.SETUP, step=step, errno=err, text=text)


def _write(path: str, data: str) -> None:
    with open(path, "w") as f:
        f.write(data)


def _unshare(spec: ChildSpec) -> bool:
    """All namespaces at once; where only the network namespace is refused (a runtime that
    allows the others), the rest without it, as the plan allows: network off stays enforced
    by seccomp and Landlock, and the summary says what is missing. Returns whether the
    network namespace was made."""
    flags = spec.ns_flags
    try:
        _sys.unshare(flags)
        return bool(flags & CLONE_NEWNET)
    except OSError as e:
        if not flags & CLONE_NEWNET or spec.plan.proxy_port:
            raise  # the proxied network has no other way to confine TCP to the proxy
        _sys.unshare(flags & ~CLONE_NEWNET)
        send(spec.report_fd, Kind.NETNS_REFUSED, step=Step.UNSHARE, errno=e.errno or 0,
             text=f"network namespace unavailable ({e.strerror}); network off is "
                  "enforced by seccomp and Landlock alone")
        return False


def _setup_namespaces(plan: LinuxPlan, uid: int, gid: int, userns: bool, netns: bool) -> None:
    if userns:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    if netns:
        loopback_up()
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    if plan.view is not None:
        apply_view(plan.view, root=not userns, userns=userns)


def _drop_capabilities(report_fd: int) -> None:
    """After the namespace setup (it needs CAP_SYS_ADMIN), before Landlock and seccomp."""
    kept = _caps.drop_all()
    if kept:
        send(report_fd, Kind.NOTE, step=Step.CAPABILITIES, text=_caps.describe_kept(kept))


def _restrict(plan: LinuxPlan, sync: _socket.socket, landlock_log: bool = False, at: int = 0,
              done: Any = None) -> None:
    """no_new_privs, Landlock, filter B (its listener handed over), filter A; from stage ``at``
    on, where C (``done``, :func:`_init_steps`) stopped: with the filter messages it received
    and the listener it could not send."""
    if at <= S_RESTRICT:
        _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, 1)
        rs = plan.ruleset  # built by the supervisor: only syscalls from here
        assert rs is not None
        if plan.abi:
            rs.restrict_self(_landlock_flags(plan, landlock_log), no_new_privs=False)
    if at <= S_FILTER_B:
        # the target keeps no copy of the listener
        filter_b = plan.filter_b if plan.filter_b is not None else _filter(sync, b"B", done)
        install_and_hand_over(filter_b, sync,
                              flags=sb.FLAG_WAIT_KILLABLE_RECV if plan.wait_killable else 0,
                              brokers_sendmsg=plan.datagrams)
    elif at == S_HANDOVER:  # installed by C, not sent
        try:
            send_fd(sync, done.listener)
        finally:
            os.close(done.listener)
    if at <= S_FILTER_A:
        sb.install_filter(plan.filter_a if plan.filter_a is not None else _filter(sync, b"A", done))


def _landlock_flags(plan: LinuxPlan, landlock_log: bool) -> int:
    # LOG_NEW_EXEC_ON: audit records for the command too (the default logs only this
    # process); asked for only when someone reads them (lsandbox.linux._audit).
    return ll.RESTRICT_LOG_NEW_EXEC_ON if landlock_log and plan.abi >= 7 else 0


def _filter(sync: _socket.socket, kind: bytes, done: Any) -> bytes:
    """Filter ``kind``: as C received it (``done``), else received now."""
    if done is not None:
        got, size = (done.b_msg, done.b_len) if kind == b"B" else (done.a_msg, done.a_len)
        if size >= 0:
            return _check_filter(bytes(got[0:size]), kind)
    return _receive_filter(sync, kind)


def _receive_filter(sync: _socket.socket, kind: bytes) -> bytes:
    """Filter ``kind`` (``b"A"`` or ``b"B"``) as the supervisor sent it after the fork
    (``_launcher._start``: B first, when the plan leaves it out, then A)."""
    return _check_filter(sync.recv(1 << 16), kind)


def _check_filter(msg: bytes, kind: bytes) -> bytes:
    if not msg.startswith(kind) or len(msg) < 9 or (len(msg) - 1) % 8:
        raise OSError(0, f"seccomp filter {kind.decode()} was not received from the supervisor")
    return msg[1:]


def _receive_filter_a(sync: _socket.socket) -> bytes:
    return _receive_filter(sync, b"A")


# Stages of init's setup (_fastpath_child.h): where C stopped, Python goes on.
S_PDEATHSIG, S_PROCFS, S_CHDIR, S_CAPS, S_RESTRICT, S_FILTER_B, S_HANDOVER, S_FILTER_A, S_DONE = range(9)


# Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across execve, so the
# command would get EPIPE instead of dying quietly (`yes | head -1`: "Broken pipe").
RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _exec(spec: ChildSpec) -> None:
    argv0 = spec.argv[0]
    try:
        for sig in RESTORED:
            signal.signal(sig, signal.SIG_DFL)
        os.execve(spec.executable, list(spec.argv), spec.env)
    except OSError as e:
        send(spec.report_fd, Kind.EXEC, step=Step.EXEC, errno=e.errno or 0, text=f"{argv0}: {e.strerror}")
        os._exit(126 if e.errno in (13, 8, 21) else 127)
    except BaseException as e:  # noqa: BLE001 - never unwind into the caller's code (a fork)
        send(spec.report_fd, Kind.EXEC, step=Step.EXEC, text=f"{argv0}: {e}")
        os._exit(126)


def _foreground(tty: int | None) -> None:
    os.setpgid(0, 0)
    if tty is not None:
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(tty, os.getpgrp())
        except OSError:
            pass
        signal.signal(signal.SIGTTOU, old)


def _close_all_but(keep: set[int]) -> None:
    """Only the std fds (and our two pipes, both CLOEXEC) survive into the command."""
    prev = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(prev, fd)
        prev = fd + 1
    os.closerange(prev, os.sysconf("SC_OPEN_MAX"))


def child_main(spec: ChildSpec, parent: int = -1) -> None:
    """Never returns. With namespaces this process unshares them, becomes a relay (outside the
    new PID namespace, forwarding signals) and forks init (PID 1 inside), which applies the
    sandbox to itself and forks the command.

    ``parent`` >= 0: this process was cloned straight into its namespaces but the mount
    namespace (:func:`clone_init`) and is init already; ``parent`` is a pidfd of the
    process that cloned it.

    Whatever happens here (a report that cannot be written, anything raised while handling
    a failure) ends this process: nothing may unwind into the caller's code, which this
    process is a copy of."""
    try:
        _reset_handlers()
        _child_main(spec, parent)
    finally:
        os._exit(125)


def _reset_handlers() -> None:
    """The caller's Python signal handlers (lsandbox's SignalForwarder, a timeout's SIGALRM
    handler...) are not ours: the default in this copy of it, before any can run here."""
    for sig in range(1, signal.NSIG):
        try:
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def _child_main(spec: ChildSpec, parent: int) -> None:
    plan, report_fd, sync = spec.plan, spec.report_fd, spec.sync
    pidns = bool(spec.ns_flags)
    cloned = parent >= 0
    step = Step.START
    try:
        _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
        if parent_gone(parent):
            os._exit(125)  # the supervisor (or the pre-forked launcher) already died
        for target, fd in enumerate(spec.std_fds):
            if fd != target:
                os.dup2(fd, target)
        _close_all_but({report_fd, sync.fileno(), *spec.pass_fds})
        for fd in spec.pass_fds:  # asked for: the command inherits these, at the same numbers
            os.set_inheritable(fd, True)
        if pidns:
            step = Step.UNSHARE
            try:
                if cloned:  # the rest made by clone (the network's included: else clone failed)
                    _sys.unshare(_sys.CLONE_NEWNS)
                    netns = bool(spec.ns_flags & CLONE_NEWNET)
                else:
                    netns = _unshare(spec)
            except OSError as e:  # a container refusing namespaces: the supervisor decides
                send(report_fd, Kind.NAMESPACES_REFUSED, step=step, errno=e.errno or 0,
                     text=e.strerror or str(e))
                os._exit(125)
            step = Step.NAMESPACES
            _setup_namespaces(plan, spec.uid, spec.gid, spec.userns, netns)
            if plan.proxy_port:
                step = Step.PROXY
                hand_over_proxy_listener(plan.proxy_port, sync)
            if not cloned:
                mask = set(FORWARDED) | {signal.SIGCHLD}
                signal.pthread_sigmask(signal.SIG_BLOCK, mask)  # a cloned init has them blocked from birth
                step = Step.INIT
                init = os.fork()
                if init != 0:
                    send(report_fd, Kind.RESTRICTED, value=init)  # who restricts itself: audit matching
                    sync.close()
                    _relay(init, mask)
            # init keeps these blocked from here to its sigwait: a thread it starts meanwhile
            # (the listener hand-over) inherits the mask, so no SIGCHLD can be delivered to
            # a thread that leaves it unblocked (and be lost: init would wait forever).
            # From C where the launcher loaded it, up to the first step that fails (or that
            # it does not do): that step and the rest in Python, which reports any failure.
            done = _init_steps(spec) if _executor is not None else None
            at = done.stage if done is not None else S_PDEATHSIG
            if at <= S_PDEATHSIG:
                _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
            if plan.view is not None and at <= S_PROCFS:  # PID 1 of the new namespace: its own procfs
                step = Step.PROCFS
                note = fresh_proc(plan.view)
                if note:
                    send(report_fd, Kind.NOTE, step=step, text=note)
        else:
            done, at = None, S_PDEATHSIG
            # No PID namespace to end with the command: this process stays as its parent and
            # every orphan of the tree comes back to it, to be killed when the command ends,
            # or when the supervisor dies (PARENT_GONE instead of SIGKILL: _serve_as_init).
            _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
            signal.pthread_sigmask(signal.SIG_BLOCK, {PARENT_GONE})
            _prctl.prctl(_prctl.PR_SET_PDEATHSIG, PARENT_GONE)
            if parent_gone(parent):
                os._exit(125)
        step = Step.CHDIR
        if at > S_CHDIR:
            pass
        elif spec.cwd:
            os.chdir(spec.cwd)
        elif pidns and plan.view is not None:
            # The inherited cwd is the directory *under* the view's mounts (a writable
            # workspace bound over the read-only root): enter it again through them.
            try:
                os.chdir(os.getcwd())
            except OSError:
                pass
        step = Step.CAPABILITIES
        if at <= S_CAPS:
            _drop_capabilities(report_fd)
        step = Step.RESTRICT
        _restrict(plan, sync, spec.landlock_log, at, done)
        sync.close()
    except BaseException as e:  # noqa: BLE001
        _fail(report_fd, step, e)
        os._exit(125)
    try:  # neither returns; an exception must end this process, not unwind into the caller
        _init(spec, pidns)
    except BaseException as e:  # noqa: BLE001
        _fail(report_fd, Step.INIT, e)
        os._exit(125)


#: What init keeps blocked until its ``sigwait`` (the command gets them unblocked).
INIT_MASK = (*FORWARDED, signal.SIGCHLD)
_INIT_BITS = sum(1 << (int(sig) - 1) for sig in INIT_MASK)
_ALL_BITS = (1 << 64) - 1


def clone_init(ns_flags: int) -> tuple[int, int]:
    """Clone init straight into new namespaces, with no relay: ``(pid, -1)`` in the parent;
    ``(0, pidfd of the parent)`` in the child, which goes on with ``child_main(spec, pidfd)``;
    ``(-1, -1)`` where this process has other threads (glibc's fork must run then), has no
    pidfds (Linux < 5.3) or clone refuses the namespaces: then the caller forks a relay, which
    unshares them itself and reports what is refused.

    All of ``ns_flags`` but the mount namespace: the child unshares that one when it runs
    the launch (:func:`child_main`), so a child cloned ahead of its launch (the pre-forked
    launcher's spare) copies the mount table of the moment it runs, not one that may have
    changed since (mounts gone from the host, or not yet remounted read-only by the view).

    Signals: every signal is blocked across the clone (with ``rt_sigprocmask``, which runs
    no Python handler), and the handlers of signals that arrived before run first, here in
    the caller: a raw clone, unlike ``os.fork``, does not clear the interpreter's pending
    handler calls, and one run in the child would be the caller's code running in init. In
    the child the caller's handlers are reset and the caller's mask comes back with
    :data:`INIT_MASK` blocked (the kernel drops a signal that PID 1 of a namespace neither
    handles nor blocks: blocked, it waits for init's ``sigwait``). In the parent the mask
    comes back whatever is raised meanwhile; a handler that raises once it is back (a
    KeyboardInterrupt) ends the launch, so the cloned child is killed and reaped first."""
    if not ns_flags or not one_thread():
        return -1, -1
    prev = _sys.sigprocmask(_sys.SIG_BLOCK, 0)  # a handler raising here has changed nothing
    pid, parent = -1, -1
    try:
        _sys.sigprocmask(_sys.SIG_BLOCK, _ALL_BITS)
        signal.pthread_sigmask(signal.SIG_BLOCK, ())  # runs the pending handlers, here
        parent = os.pidfd_open(os.getpid())
        pid = _sys.clone_into_namespaces(ns_flags & ~_sys.CLONE_NEWNS)
    except OSError:
        pid = -1
    finally:
        if pid != 0:
            if parent >= 0:
                os.close(parent)
            _unblock(prev, pid)
    if pid == 0:
        _reset_handlers()  # none pending: the parent ran them before the clone
        _sys.sigprocmask(_sys.SIG_SETMASK, prev | _INIT_BITS)
        return 0, parent
    return pid, -1


def _unblock(prev: int, pid: int) -> None:
    """The caller's mask back after a clone; if one of its handlers raises now, the launch
    is over: the child (waiting for the supervisor) is killed and reaped before it goes on."""
    try:
        _sys.sigprocmask(_sys.SIG_SETMASK, prev)
    except BaseException:
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise


def one_thread() -> bool:
    """Whether this process has a single thread (then a raw clone is as safe as a fork)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def parent_gone(parent: int) -> bool:
    """Whether the process that forked this one has died (before PDEATHSIG was set, which
    would otherwise never fire). A child cloned into a new PID namespace sees a parent pid
    of 0 whatever happens: it asks its parent's pidfd instead."""
    if parent < 0:
        return os.getppid() == 1
    return bool(select.select([parent], [], [], 0)[0])


def _relay(init: int, mask: set[signal.Signals]) -> None:
    """Outside the PID namespace: forward signals to init, exit when it does."""
    try:
        while True:
            sig = signal.sigwait(mask)
            if sig == signal.SIGCHLD:
                got, status = os.waitpid(init, os.WNOHANG)
                if got == init:
                    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
                        os.kill(os.getpid(), signal.SIGKILL)  # as init's own parent would see it
                    code = os.waitstatus_to_exitcode(status)
                    os._exit(128 - code if code < 0 else code)
            else:
                try:
                    os.kill(init, sig)
                except ProcessLookupError:
                    pass
    except BaseException:  # noqa: BLE001
        os._exit(125)


def _init(spec: ChildSpec, pidns: bool = True) -> None:
    """PID 1: fork the command, forward signals to it, report its status, exit.

    Without a PID namespace (``pidns`` False) the same, as the tree's subreaper: when the
    command ends, whatever it left running (a ``setsid`` daemon still reading the user's
    terminal) is killed before the status goes out, as the end of a PID namespace would.

    Not dumpable: init is in the command's Landlock domain and has its uid, so the command
    could otherwise open ``/proc/1/fd/N`` (the report pipe to the supervisor: forge a setup
    error or a status, or fill the pipe so that init blocks and the run never ends) and
    ``/proc/1/mem``. A non-dumpable process's /proc entries need CAP_SYS_PTRACE, which the
    command lacks. The command inherits the flag until its ``execve``, which resets it.

    Without a PID namespace nothing shields this process from the command's signals (PID 1
    of a namespace ignores those it does not handle): the command gets a Landlock layer of
    its own that scopes signals (ABI >= 6), so that it cannot kill the process that ends its
    tree (and leave its daemons running)."""
    _prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
    mask = set(FORWARDED) | {signal.SIGCHLD} | (set() if pidns else {PARENT_GONE})
    signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    args = _command_args(spec) if pidns else None
    if args is not None:  # the same in C (lsb_serve_init), which never returns
        _executor.lib.lsb_serve_init(args[0], args[1], args[2], _mask_bits(mask),
                                     -1 if spec.tty is None else spec.tty, spec.report_fd, *_exec_prefix(spec))
    scope = 0 if pidns else ll.SCOPE_SIGNAL & ll.scope_all(spec.plan.abi)
    kept = () if pidns else _ignore_job_control()
    pid = _fork_command(spec, mask, scope, kept)
    _serve_as_init(pid, mask, spec.report_fd, reap_tree=not pidns)


#: Signals the terminal driver sends to a whole process group (a background read or write, ^Z).
JOB_CONTROL = (signal.SIGTTIN, signal.SIGTTOU, signal.SIGTSTP)


def _ignore_job_control() -> tuple[tuple[int, object], ...]:
    """Without a PID namespace this process shares the supervisor's process group, in the
    user's terminal session: a command that moves one of its processes into that group and
    reads the terminal in the background has the kernel stop the whole group (SIGTTIN, which
    Landlock's signal scope does not see), this process included, which would then neither
    reap nor end the tree when the supervisor dies. It ignores the job-control stops; the
    command gets the dispositions back (returned: signal, previous disposition)."""
    kept = tuple((sig, signal.getsignal(sig)) for sig in JOB_CONTROL)
    for sig in JOB_CONTROL:
        signal.signal(sig, signal.SIG_IGN)
    return kept


def _children() -> list[int]:
    """This process's children: /proc/self/task/*/children, else a scan of every PPid."""
    me = os.getpid()
    out: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children", "rb") as f:
                out.extend(int(p) for p in f.read().split())
        return out
    except OSError:
        pass
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == me:
                        out.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _kill_descendants() -> None:
    """SIGKILL every child until none is left: as a subreaper this process gets each orphan
    of the tree back (a grandchild whose parent was killed, a daemon that double-forked), so
    the loop ends only when the whole tree is gone. Never ``kill(-1)``: without a PID
    namespace (and below Landlock ABI 6) that reaches every process of the uid."""
    while True:
        for child in _children():
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue


def _command_args(spec: ChildSpec) -> tuple | None:
    """The command's path, argv and envp as C data for the compiled module, or None (not
    loaded, or what os.execve would refuse: the Python path reports it)."""
    if spec.prepared is not None:
        return spec.prepared[1]
    if _executor is not None:
        return _exec_args(spec.executable, spec.argv, spec.env)
    return None


def _mask_bits(mask: set[signal.Signals]) -> int:
    return sum(1 << (s - 1) for s in mask)


def _exec_prefix(spec: ChildSpec) -> tuple[bytes, int]:
    """The EXEC report's text before the error, encoded as _reports.encode does it."""
    prefix = f"{spec.argv[0]}: ".replace("\n", " ").encode(errors="replace")
    return prefix, len(prefix)


def _fork_command(spec: ChildSpec, mask: set[signal.Signals], scope: int = 0,
                  restore: tuple[tuple[int, object], ...] = ()) -> int:
    """The command. Forked, not posix_spawn'ed: glibc's posix_spawn leaves its internal
    signals 32 and 33 ignored in the new program, and a command that has a terminal must
    take the foreground before it runs. Forked by C where the launcher loaded it
    (:func:`use_executor`): the same steps, reports and exit codes, without a Python fork.
    ``scope``: Landlock scopes of a layer of the command's own; ``restore``: signal
    dispositions the command gets back (:func:`_init`; both forked here)."""
    args = _command_args(spec) if not (scope or restore) else None
    if args is not None:
        pid = _executor.lib.lsb_fork_exec(args[0], args[1], args[2], _mask_bits(mask),
                                          -1 if spec.tty is None else spec.tty, spec.report_fd,
                                          *_exec_prefix(spec))
        if pid < 0:
            raise OSError(-pid, os.strerror(-pid))
        return pid
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, mask)
        try:
            for sig, disposition in restore:
                signal.signal(sig, disposition)  # type: ignore[arg-type]
            _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
            _foreground(spec.tty)
            if scope:  # no_new_privs is set (init's _restrict)
                _RawRuleset(spec.plan.abi, scoped=scope).restrict_self(no_new_privs=False)
        except BaseException as e:  # noqa: BLE001
            _fail(spec.report_fd, Step.INIT, e)
            os._exit(125)
        _exec(spec)
    return pid


_executor: Any = None  # the compiled module (_fastpath_c), where use_executor() loaded it


def use_executor() -> None:
    """Fork the command from C in the processes forked from here (the pre-forked launcher
    calls this once; ``lsandbox run`` does not load the module for its one launch)."""
    global _executor
    from ._fastpath import child_module

    _executor = child_module()


class _Done:
    """Where init's C setup stopped (``stage``), what it received and holds; ``keep`` holds
    the C data it read until the call returned."""

    def __init__(self, stage: int, struct: Any, keep: list) -> None:
        self.stage, self.listener = stage, struct.listener
        self.b_msg, self.b_len, self.a_msg, self.a_len = struct.b_msg, struct.b_len, struct.a_msg, struct.a_len
        self.keep = keep


def prepare(plan: LinuxPlan, argv: tuple[str, ...], executable: str, env: dict[str, str], cwd: str | None,
            landlock_log: bool, sync_fd: int) -> Any:
    """The C data of init's setup and of the command's execve, made here (in the pre-forked
    launcher, before it forks the relay: a warm process) rather than in init (a fresh copy
    of it, where every page the allocations touch is copied first). None without the module."""
    if _executor is None:
        return None
    try:
        return _init_data(plan, cwd, landlock_log, sync_fd), _exec_args(executable, argv, env)
    except Exception:  # noqa: BLE001 - made again in init, which reports what fails
        return None


def _init_steps(spec: ChildSpec) -> _Done:
    """Init's steps from PDEATHSIG to filter A in C (``lsb_init_steps``), as far as they go
    there: a step C is not given (masks inside /proc, filter B's hand-over thread, Landlock
    flags the ruleset refuses) is where it stops, like a step that fails."""
    data = spec.prepared[0] if spec.prepared is not None else None
    if data is None:
        data = _init_data(spec.plan, spec.cwd, spec.landlock_log, spec.sync.fileno())
    s, keep = data
    return _Done(_executor.lib.lsb_init_steps(s), s, keep)


def _init_data(plan: LinuxPlan, cwd_path: str | None, landlock_log: bool, sync_fd: int) -> tuple[Any, list]:
    """``struct lsb_init`` for ``plan`` and what it points to."""
    ffi = _executor.ffi
    s = ffi.new("struct lsb_init *")
    keep: list = [s]
    s.stop = S_DONE
    s.sync_fd = sync_fd
    view = plan.view
    s.proc_attrs = 0xFFFFFFFFFFFFFFFF
    if view is not None and view.proc:
        if view.proc_masks:
            s.stop = S_PROCFS
        s.proc_attrs = _PROC_ATTRS | (0 if view.proc_writable else _sys.MOUNT_ATTR_RDONLY)
    if cwd_path:
        keep.append(cwd := ffi.new("char[]", os.fsencode(cwd_path)))
        s.cwd = cwd
    s.reenter_cwd = view is not None
    rs = plan.ruleset
    if rs is None:
        s.stop = min(s.stop, S_RESTRICT)
    elif plan.abi and rs.abi and (rs.handled_fs or rs.handled_net or rs.scoped):
        s.landlock = 1
        s.handled_fs, s.handled_net, s.scoped, s.attr_size = rs.attr()
        s.restrict_flags = _landlock_flags(plan, landlock_log) & ll.restrict_flags_all(rs.abi)
        rules, ports = rs.rules, rs.ports
        paths = [ffi.new("char[]", os.fsencode(p)) for p, _d, _f in rules]
        keep += paths
        keep.append(c_paths := ffi.new("char *[]", paths))
        keep.append(c_dir := ffi.new("uint64_t[]", [d for _p, d, _f in rules]))
        keep.append(c_file := ffi.new("uint64_t[]", [f for _p, _d, f in rules]))
        keep.append(c_ports := ffi.new("uint64_t[]", [p for p, _a in ports]))
        keep.append(c_access := ffi.new("uint64_t[]", [int(a & rs.handled_net) for _p, a in ports]))
        s.n_rules, s.rule_paths, s.rule_dir, s.rule_file = len(rules), c_paths, c_dir, c_file
        s.n_ports, s.ports, s.port_access = len(ports), c_ports, c_access
    if plan.datagrams:
        s.stop = min(s.stop, S_FILTER_B)  # the hand-over needs a thread of its own (Python)
    s.b_flags = sb.FLAG_NEW_LISTENER | (sb.FLAG_WAIT_KILLABLE_RECV if plan.wait_killable else 0)
    for kind, code in (("b", plan.filter_b), ("a", plan.filter_a)):
        if code is not None:
            keep.append(buf := ffi.new("unsigned char[]", code))
            setattr(s, f"filter_{kind}", buf)
            setattr(s, f"filter_{kind}_len", len(code))
        else:
            keep.append(buf := _new_uncleared("unsigned char[]", 1 << 16))  # recv writes what it reads
            setattr(s, f"{kind}_msg", buf)
    return s, keep


def _new_uncleared(ctype: str, size: int) -> Any:
    global _uncleared
    if _uncleared is None:
        _uncleared = _executor.ffi.new_allocator(should_clear_after_alloc=False)
    return _uncleared(ctype, size)


_uncleared: Any = None


_PROC_ATTRS = _sys.MOUNT_ATTR_NOSUID | _sys.MOUNT_ATTR_NODEV | _sys.MOUNT_ATTR_NOEXEC


def _exec_args(executable: str, argv_s: tuple[str, ...], env_s: dict[str, str]) -> tuple | None:
    """The executable, argv and envp as C data (then the strings they point to), or None
    where ``os.execve`` itself would refuse them (an embedded NUL, an empty argv[0], an
    environment name that is empty or holds "="): the Python path then reports exactly that."""
    try:
        path = os.fsencode(executable)
        argv = [os.fsencode(a) for a in argv_s]
        env = []
        for k, v in env_s.items():
            kb, vb = os.fsencode(k), os.fsencode(v)
            if not kb or b"=" in kb[1:] or b"\0" in kb or b"\0" in vb:
                return None
            env.append(kb + b"=" + vb)
    except Exception:  # noqa: BLE001 - not encodable: os.execve raises it, in Python
        return None
    if not argv or not argv[0] or b"\0" in path or any(b"\0" in a for a in argv):
        return None
    ffi = _executor.ffi
    strings = [ffi.new("char[]", b) for b in (path, *argv, *env)]
    c_argv = ffi.new("char *[]", [*strings[1:1 + len(argv)], ffi.NULL])
    c_env = ffi.new("char *[]", [*strings[1 + len(argv):], ffi.NULL])
    return strings[0], c_argv, c_env, strings


def _serve_as_init(pid: int, mask: set[signal.Signals], report_fd: int, reap_tree: bool = False) -> None:
    """PID 1's loop: reap everything, forward signals to the command, report its status
    (``reap_tree``, without a PID namespace: after killing every process left below this
    one; and the same at once, with no status, when :data:`PARENT_GONE` says the supervisor
    died)."""
    try:
        while True:
            # A timeout, so that even a lost SIGCHLD only delays the reaping by a second.
            info = signal.sigtimedwait(mask, 1.0)
            sig = info.si_signo if info is not None else signal.SIGCHLD
            if sig not in mask:  # CPython returns an unfilled siginfo when the wait is resumed
                sig = signal.SIGCHLD  # past its deadline (a stop, then SIGCONT): a timeout
            if sig == PARENT_GONE and reap_tree:  # the supervisor died: nothing may outlive it
                _kill_descendants()
                os._exit(125)
            if sig == signal.SIGCHLD:
                while True:
                    try:
                        got, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        os._exit(125)
                    if got == 0:
                        break
                    if got == pid:
                        if reap_tree:
                            _kill_descendants()
                        send(report_fd, Kind.STATUS, value=status)
                        os._exit(0)
            else:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
    except BaseException:  # noqa: BLE001
        if reap_tree:  # whatever failed, nothing of the tree outlives this process
            try:
                _kill_descendants()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(125)
    sys.exit(125)  # pragma: no cover
