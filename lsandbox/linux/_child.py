"""What runs in the sandboxed child between clone and exec, in DESIGN.md's order.

Only syscalls here: everything was computed in the supervisor (``_plan``). Errors go to the
supervisor over the CLOEXEC report pipe as one line and the child exits 125; the supervisor
prints it as ``lsandbox: error: ...``. With a PID namespace this process is PID 1 of the
sandbox: after applying the sandbox to itself it forks the command (PID 2) and stays as a
minimal init (reaps, forwards signals, reports the command's status), so that when it dies
(because the supervisor died) the kernel kills everything in the sandbox.
"""

from __future__ import annotations

import _socket
import os
import signal
import sys
from collections.abc import Callable, Sequence

import prctl

import landlock as ll
import seccomp_bpf as sb

from . import _caps, _sys
from ._mount_view import apply_view, fresh_proc
from ._netns import CLONE_NEWNET, hand_over_proxy_listener, loopback_up
from ._plan import LinuxPlan
from ._unix_filter import install_and_hand_over

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)


def report(fd: int, kind: str, text: str) -> None:
    os.write(fd, f"{kind}:{text}".replace("\n", " ").encode()[:4000] + b"\n")


def _write(path: str, data: str) -> None:
    with open(path, "w") as f:
        f.write(data)


def _unshare(flags: int, plan: LinuxPlan, report_fd: int) -> None:
    """All namespaces at once; where only the network namespace is refused (a runtime that
    allows the others), the rest without it: network off stays enforced by seccomp and
    Landlock, and the summary says what is missing."""
    try:
        _sys.unshare(flags)
    except OSError as e:
        if not flags & CLONE_NEWNET or plan.proxy_port:
            raise  # the proxied network has no other way to confine TCP to the proxy
        _sys.unshare(flags & ~CLONE_NEWNET)
        plan.netns = False
        report(report_fd, "note", f"network namespace unavailable ({e.strerror}); network off is "
                                  "enforced by seccomp and Landlock alone")


def _setup_namespaces(plan: LinuxPlan, uid: int, gid: int, userns: bool) -> None:
    if userns:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    if plan.netns:
        loopback_up()
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    if plan.view is not None:
        apply_view(plan.view, root=not userns, userns=userns)


def _drop_capabilities(report_fd: int) -> None:
    """After the namespace setup (it needs CAP_SYS_ADMIN), before Landlock and seccomp."""
    kept = _caps.drop_all()
    if kept:
        report(report_fd, "note", _caps.describe_kept(kept))


def _restrict(plan: LinuxPlan, sync: _socket.socket, landlock_log: bool = False) -> None:
    prctl.set_no_new_privs(1)
    rs = plan.ruleset  # built by the supervisor: only syscalls from here
    assert rs is not None
    if plan.abi:
        # LOG_NEW_EXEC_ON: audit records for the command too (the default logs only this
        # process); asked for only when someone reads them (lsandbox.linux._audit).
        flags = ll.RestrictFlags.LOG_NEW_EXEC_ON if landlock_log and plan.abi >= 7 else ll.RestrictFlags(0)
        rs.restrict_self(flags, no_new_privs=False)
    # the target keeps no copy of the listener
    install_and_hand_over(plan.filter_b, sync,
                          flags=sb.FLAG_WAIT_KILLABLE_RECV if plan.wait_killable else 0,
                          brokers_sendmsg=plan.datagrams)
    sb.install_filter(plan.filter_a if plan.filter_a is not None else _receive_filter_a(sync))


def _receive_filter_a(sync: _socket.socket) -> bytes:
    """Filter A as the supervisor compiled it after the fork (``_launcher.spawn``)."""
    msg = sync.recv(1 << 16)
    if not msg.startswith(b"A") or len(msg) < 9 or (len(msg) - 1) % 8:
        raise OSError(0, "seccomp filter A was not received from the supervisor")
    return msg[1:]


# Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across execve, so the
# command would get EPIPE instead of dying quietly (`yes | head -1`: "Broken pipe").
RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _exec(argv: Sequence[str], executable: str, env: dict[str, str], report_fd: int) -> None:
    try:
        for sig in RESTORED:
            signal.signal(sig, signal.SIG_DFL)
        os.execve(executable, list(argv), env)
    except OSError as e:
        report(report_fd, "exec", f"{e.errno}:{argv[0]}: {e.strerror}")
        os._exit(126 if e.errno in (13, 8, 21) else 127)
    except BaseException as e:  # noqa: BLE001 - never unwind into the caller's code (a fork)
        report(report_fd, "exec", f"0:{argv[0]}: {e}")
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


def child_main(
    plan: LinuxPlan,
    argv: Sequence[str],
    executable: str,
    env: dict[str, str],
    cwd: str | None,
    sync: _socket.socket,
    report_fd: int,
    *,
    ns_flags: int,
    userns: bool,
    uid: int,
    gid: int,
    tty: int | None,
    std_fds: tuple[int, int, int],
    fallback: Callable[[], LinuxPlan],
    landlock_log: bool = False,
    pass_fds: tuple[int, ...] = (),
) -> None:
    """Never returns. With namespaces this process unshares them, becomes a relay (outside the
    new PID namespace, forwarding signals) and forks init (PID 1 inside), which applies the
    sandbox to itself and forks the command."""
    for sig in FORWARDED:  # the caller's Python handlers (lsandbox's SignalForwarder) are not
        if callable(signal.getsignal(sig)):  # ours: the default until the relay blocks them
            signal.signal(sig, signal.SIG_DFL)
    pidns = False
    try:
        prctl.set_pdeathsig(signal.SIGKILL)
        if os.getppid() == 1:
            os._exit(125)  # the supervisor already died
        for target, fd in enumerate(std_fds):
            if fd != target:
                os.dup2(fd, target)
        _close_all_but({report_fd, sync.fileno(), *pass_fds})
        for fd in pass_fds:  # asked for: the command inherits these, at the same numbers
            os.set_inheritable(fd, True)
        if ns_flags:
            try:
                _unshare(ns_flags, plan, report_fd)
                pidns = True
            except OSError as e:  # a container refusing namespaces: same policy, no namespaces
                if plan.proxy_port:
                    raise OSError(e.errno, f"network.domains needs a network namespace "
                                           f"({e.strerror})") from None
                report(report_fd, "note", f"namespaces unavailable ({e.strerror}); running without")
                plan = fallback()
        if pidns:
            _setup_namespaces(plan, uid, gid, userns)
            if plan.proxy_port:
                hand_over_proxy_listener(plan.proxy_port, sync)
            mask = set(FORWARDED) | {signal.SIGCHLD}
            signal.pthread_sigmask(signal.SIG_BLOCK, mask)
            init = os.fork()
            if init != 0:
                report(report_fd, "landlock", str(init))  # who restricts itself: audit matching
                sync.close()
                _relay(init, mask)
            # init keeps these blocked from here to its sigwait: a thread it starts meanwhile
            # (the listener hand-over) inherits the mask, so no SIGCHLD can be delivered to
            # a thread that leaves it unblocked (and be lost: init would wait forever).
            prctl.set_pdeathsig(signal.SIGKILL)
            if plan.view is not None:  # PID 1 of the new namespace: its own procfs
                note = fresh_proc(plan.view)
                if note:
                    report(report_fd, "note", note)
        if cwd:
            os.chdir(cwd)
        elif pidns and plan.view is not None:
            # The inherited cwd is the directory *under* the view's mounts (a writable
            # workspace bound over the read-only root): enter it again through them.
            try:
                os.chdir(os.getcwd())
            except OSError:
                pass
        _drop_capabilities(report_fd)
        _restrict(plan, sync, landlock_log)
        sync.close()
    except BaseException as e:  # noqa: BLE001
        report(report_fd, "setup", str(e) if isinstance(e, OSError) and e.strerror else repr(e))
        os._exit(125)
    try:  # neither returns; an exception must end this process, not unwind into the caller
        if not pidns:
            _foreground(tty)
            _exec(argv, executable, env, report_fd)
        _init(argv, executable, env, report_fd, tty)
    except BaseException as e:  # noqa: BLE001
        report(report_fd, "setup", str(e) if isinstance(e, OSError) and e.strerror else repr(e))
        os._exit(125)


def _relay(init: int, mask: set[int]) -> None:
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


def _init(argv: Sequence[str], executable: str, env: dict[str, str], report_fd: int, tty: int | None) -> None:
    """PID 1: fork the command, forward signals to it, report its status, exit.

    Not dumpable: init is in the command's Landlock domain and has its uid, so the command
    could otherwise open ``/proc/1/fd/N`` (the report pipe to the supervisor: forge a setup
    error or a status, or fill the pipe so that init blocks and the run never ends) and
    ``/proc/1/mem``. A non-dumpable process's /proc entries need CAP_SYS_PTRACE, which the
    command lacks. The command inherits the flag until its ``execve``, which resets it."""
    prctl.set_dumpable(False)
    mask = set(FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    pid = _fork_command(argv, executable, env, report_fd, tty, mask)
    _serve_as_init(pid, mask, report_fd)


def _fork_command(argv: Sequence[str], executable: str, env: dict[str, str], report_fd: int,
                  tty: int | None, mask: set[int]) -> int:
    """The command. Forked, not posix_spawn'ed (~1 ms faster here): glibc's posix_spawn
    leaves its internal signals 32 and 33 ignored in the new program, and a command that
    has a terminal must take the foreground before it runs."""
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, mask)
        try:
            prctl.set_pdeathsig(signal.SIGKILL)
            _foreground(tty)
        except BaseException as e:  # noqa: BLE001
            report(report_fd, "setup", repr(e))
            os._exit(125)
        _exec(argv, executable, env, report_fd)
    return pid


def _serve_as_init(pid: int, mask: set[int], report_fd: int) -> None:
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
                        report(report_fd, "status", str(status))
                        os._exit(0)
            else:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
    except BaseException:  # noqa: BLE001
        os._exit(125)
    sys.exit(125)  # pragma: no cover
