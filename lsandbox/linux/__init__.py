"""Linux backend: policy -> Landlock + seccomp plan, launcher, AF_UNIX broker.

:class:`LinuxBackend` is what :func:`lsandbox._backend.backend` hands the CLI and the API;
its methods import the launcher, the filters and the probes when first called.
"""

from __future__ import annotations

from .._backend import Denial, DoctorReport, Explanation, Note, Outcome, event
from ..policy import Policy

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._launcher import Launch, SignalForwarder

__all__ = ["LinuxBackend", "LinuxProcess", "render_bpf"]


class LinuxProcess:
    """A running sandbox, as :meth:`LinuxBackend.spawn` started it."""

    def __init__(self, launch: Launch, forwarder: SignalForwarder | None) -> None:
        self.launch = launch
        self.pid = launch.pid
        self.socket_dir = launch.socket_dir
        self.forwarder = forwarder
        self.pidfd = -1  # opened by the first ended(): before wait() reaps, so never reused


class LinuxBackend:
    """Landlock + seccomp-BPF + the broker (see :class:`lsandbox._backend.Backend`)."""

    name = "linux"

    def spawn(self, policy: Policy, args: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | None = None, stdio: tuple[int, int, int] = (0, 1, 2),
              pass_fds: Sequence[int] = (), log_denials: bool = False,
              on_event: Callable[[Denial | Note], None] | None = None,
              forward_signals: bool = False) -> LinuxProcess:
        from ._launcher import SignalForwarder, spawn

        sink = None
        if on_event is not None:
            def sink(e: dict) -> None:
                typed = event(e)
                if typed is not None:
                    on_event(typed)

        # before the fork: a signal during the launch reaches the sandbox once it exists
        fwd = SignalForwarder() if forward_signals else None
        try:
            launch = spawn(policy, args, env=env, cwd=cwd, stdio=stdio, on_event=sink,
                           log_denials=log_denials, pass_fds=pass_fds)
        except BaseException:
            if fwd is not None:
                fwd.restore()
            raise
        if fwd is not None:
            fwd.attach(launch)
        return LinuxProcess(launch, fwd)

    def ended(self, process: LinuxProcess, timeout: float | None) -> bool:
        import os
        import select

        if process.pidfd < 0:
            process.pidfd = os.pidfd_open(process.pid)
        return bool(select.select([process.pidfd], [], [], timeout)[0])

    def wait(self, process: LinuxProcess) -> Outcome:
        from ._launcher import wait

        try:
            launch = wait(process.launch)
        finally:
            if process.forwarder is not None:
                process.forwarder.restore()
                process.forwarder = None
            if process.pidfd >= 0:
                import os

                os.close(process.pidfd)
                process.pidfd = -1
        denials: list[Denial] = []
        notes: list[str] = []
        for e in launch.events:
            typed = event(e)
            if isinstance(typed, Denial):
                denials.append(typed)
            elif isinstance(typed, Note):
                notes.append(typed.text)
        assert launch.returncode is not None and launch.exit_status is not None
        error = launch.error
        return Outcome(launch.returncode, launch.exit_status, denials, notes, error,
                       bool(error and error.startswith("sandbox setup failed")),
                       launch.fs_denials_unobservable, tuple(launch.plan.ro_binds))

    def explain(self, policy: Policy) -> Explanation:
        from ._explain import explanation

        return explanation(policy)

    def compiled(self, policy: Policy) -> str:
        return render_bpf(policy)

    def doctor(self, policy: Policy) -> DoctorReport:
        from ._doctor import doctor

        return doctor(policy)


def render_bpf(policy: Policy) -> str:
    """Filter A (and filter B) disassembled, for ``explain --format bpf``."""
    import landlock
    import seccomp_bpf as sb

    from ._features import features
    from ._filter_a import build_filter_a
    from ._plan import truncate_guard
    from ._unix_filter import build_notify_filter

    arch = sb.native_arch()
    net = policy.network
    a = build_filter_a(arch, network=net.enabled, unix_dgram=net.dangerously_allow_all_unix_sockets,
                       truncate_guard=truncate_guard(landlock.abi_version()), netlink=not net.proxied,
                       pidns=features().namespaces)
    datagrams = net.dangerously_allow_all_unix_sockets or any(r.access.value == "allow" for r in net.unix_sockets)
    b = build_notify_filter(arch, datagrams=datagrams)
    return (f"; filter A: deny list, argument checks, socket() domains ({len(a)} instructions)\n"
            + sb.disassemble(a)
            + f"\n; filter B: connect/bind -> broker via user notification ({len(b)} instructions)\n"
            + sb.disassemble(b))
