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
from ._unix_filter import install_and_hand_over

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    import signal
else:  # the C module: the same calls, plain int signal numbers, no enum classes to create
    import _signal as signal

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)


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


def _restrict(plan: LinuxPlan, sync: _socket.socket, landlock_log: bool = False) -> None:
    _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, 1)
    rs = plan.ruleset  # built by the supervisor: only syscalls from here
    assert rs is not None
    if plan.abi:
        # LOG_NEW_EXEC_ON: audit records for the command too (the default logs only this
        # process); asked for only when someone reads them (lsandbox.linux._audit).
        flags = ll.RESTRICT_LOG_NEW_EXEC_ON if landlock_log and plan.abi >= 7 else 0
        rs.restrict_self(flags, no_new_privs=False)
    # the target keeps no copy of the listener
    filter_b = plan.filter_b if plan.filter_b is not None else _receive_filter(sync, b"B")
    install_and_hand_over(filter_b, sync,
                          flags=sb.FLAG_WAIT_KILLABLE_RECV if plan.wait_killable else 0,
                          brokers_sendmsg=plan.datagrams)
    sb.install_filter(plan.filter_a if plan.filter_a is not None else _receive_filter(sync, b"A"))


def _receive_filter(sync: _socket.socket, kind: bytes) -> bytes:
    """Filter ``kind`` (``b"A"`` or ``b"B"``) as the supervisor sent it after the fork
    (``_launcher._start``: B first, when the plan leaves it out, then A)."""
    msg = sync.recv(1 << 16)
    if not msg.startswith(kind) or len(msg) < 9 or (len(msg) - 1) % 8:
        raise OSError(0, f"seccomp filter {kind.decode()} was not received from the supervisor")
    return msg[1:]


def _receive_filter_a(sync: _socket.socket) -> bytes:
    return _receive_filter(sync, b"A")


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


def child_main(spec: ChildSpec) -> None:
    """Never returns. With namespaces this process unshares them, becomes a relay (outside the
    new PID namespace, forwarding signals) and forks init (PID 1 inside), which applies the
    sandbox to itself and forks the command."""
    for sig in FORWARDED:  # the caller's Python handlers (lsandbox's SignalForwarder) are not
        if callable(signal.getsignal(sig)):  # ours: the default until the relay blocks them
            signal.signal(sig, signal.SIG_DFL)
    plan, report_fd, sync = spec.plan, spec.report_fd, spec.sync
    pidns = bool(spec.ns_flags)
    step = Step.START
    try:
        _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:
            os._exit(125)  # the supervisor already died
        for target, fd in enumerate(spec.std_fds):
            if fd != target:
                os.dup2(fd, target)
        _close_all_but({report_fd, sync.fileno(), *spec.pass_fds})
        for fd in spec.pass_fds:  # asked for: the command inherits these, at the same numbers
            os.set_inheritable(fd, True)
        if pidns:
            step = Step.UNSHARE
            try:
                netns = _unshare(spec)
            except OSError as e:  # a container refusing namespaces: the supervisor decides
                send(report_fd, Kind.NAMESPACES_REFUSED, step=step, errno=e.errno or 0, text=e.strerror or str(e))
                os._exit(125)
            step = Step.NAMESPACES
            _setup_namespaces(plan, spec.uid, spec.gid, spec.userns, netns)
            if plan.proxy_port:
                step = Step.PROXY
                hand_over_proxy_listener(plan.proxy_port, sync)
            mask = set(FORWARDED) | {signal.SIGCHLD}
            signal.pthread_sigmask(signal.SIG_BLOCK, mask)
            step = Step.INIT
            init = os.fork()
            if init != 0:
                send(report_fd, Kind.RESTRICTED, value=init)  # who restricts itself: audit matching
                sync.close()
                _relay(init, mask)
            # init keeps these blocked from here to its sigwait: a thread it starts meanwhile
            # (the listener hand-over) inherits the mask, so no SIGCHLD can be delivered to
            # a thread that leaves it unblocked (and be lost: init would wait forever).
            _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
            if plan.view is not None:  # PID 1 of the new namespace: its own procfs
                step = Step.PROCFS
                note = fresh_proc(plan.view)
                if note:
                    send(report_fd, Kind.NOTE, step=step, text=note)
        step = Step.CHDIR
        if spec.cwd:
            os.chdir(spec.cwd)
        elif pidns and plan.view is not None:
            # The inherited cwd is the directory *under* the view's mounts (a writable
            # workspace bound over the read-only root): enter it again through them.
            try:
                os.chdir(os.getcwd())
            except OSError:
                pass
        step = Step.CAPABILITIES
        _drop_capabilities(report_fd)
        step = Step.RESTRICT
        _restrict(plan, sync, spec.landlock_log)
        sync.close()
    except BaseException as e:  # noqa: BLE001
        _fail(report_fd, step, e)
        os._exit(125)
    try:  # neither returns; an exception must end this process, not unwind into the caller
        if not pidns:
            _foreground(spec.tty)
            _exec(spec)
        _init(spec)
    except BaseException as e:  # noqa: BLE001
        _fail(report_fd, Step.INIT, e)
        os._exit(125)


def _relay(init: int, mask: set[signal.Signals]) -> None:
    """Outside the PID namespace: forward signals to init, exit when it does."""
    try:
        while True:
            sig = signal.sigwait(mask)
            if sig == signal.SIGCHLD:
                got, status = os.waitpid(init, os.WNOHANG)
                if got == init:
                    code = os.waitstatus_to_exitcode(status)
                    os._exit(128 - code if code < 0 else code)
            else:
                try:
                    os.kill(init, sig)
                except ProcessLookupError:
                    pass
    except BaseException:  # noqa: BLE001
        os._exit(125)


def _init(spec: ChildSpec) -> None:
    """PID 1: fork the command, forward signals to it, report its status, exit.

    Not dumpable: init is in the command's Landlock domain and has its uid, so the command
    could otherwise open ``/proc/1/fd/N`` (the report pipe to the supervisor: forge a setup
    error or a status, or fill the pipe so that init blocks and the run never ends) and
    ``/proc/1/mem``. A non-dumpable process's /proc entries need CAP_SYS_PTRACE, which the
    command lacks. The command inherits the flag until its ``execve``, which resets it."""
    _prctl.prctl(_prctl.PR_SET_DUMPABLE, 0)
    mask = set(FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    pid = _fork_command(spec, mask)
    _serve_as_init(pid, mask, spec.report_fd)


def _fork_command(spec: ChildSpec, mask: set[signal.Signals]) -> int:
    """The command. Forked, not posix_spawn'ed: glibc's posix_spawn leaves its internal
    signals 32 and 33 ignored in the new program, and a command that has a terminal must
    take the foreground before it runs."""
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, mask)
        try:
            _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)
            _foreground(spec.tty)
        except BaseException as e:  # noqa: BLE001
            _fail(spec.report_fd, Step.INIT, e)
            os._exit(125)
        _exec(spec)
    return pid


def _serve_as_init(pid: int, mask: set[signal.Signals], report_fd: int) -> None:
    """PID 1's loop: reap everything, forward signals to the command, report its status."""
    try:
        while True:
            # A timeout, so that even a lost SIGCHLD only delays the reaping by a second.
            info = signal.sigtimedwait(mask, 1.0)
            sig = info.si_signo if info is not None else signal.SIGCHLD
            if sig == signal.SIGCHLD:
                while True:
                    try:
                        got, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        os._exit(125)
                    if got == 0:
                        break
                    if got == pid:
                        send(report_fd, Kind.STATUS, value=status)
                        os._exit(0)
            else:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
    except BaseException:  # noqa: BLE001
        os._exit(125)
    sys.exit(125)  # pragma: no cover
