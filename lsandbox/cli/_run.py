"""``lsandbox run [policy options] [--log-denials] [--events FILE] -- CMD [ARG]...``

Exit status (DESIGN.md): the command's own; 128+N if it died of signal N; 125 when lsandbox
itself failed; 126 when the command cannot be executed; 127 when it is not found.
"""

from __future__ import annotations

import os
import sys

from .._errors import CommandNotExecutableError, CommandNotFoundError, SandboxError, one_line
from ._common import policy_from_args

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import IO

    from .._backend import Denial, Note, Outcome
    from ..policy import Policy


def register(sub: argparse._SubParsersAction) -> None:
    import argparse

    from ._common import add_policy_options

    p = sub.add_parser("run", help="run a command in the sandbox")
    add_policy_options(p)
    p.add_argument("--log-denials", action="store_true",
                   help="print a '=== Sandbox denials ===' summary on stderr after exit")
    p.add_argument("--events", metavar="FILE",
                   help="write events (denials, notes) as JSON lines to FILE; '-' is stderr")
    p.add_argument("--pass-fd", metavar="N", type=int, action="append", default=[],
                   help="let the command inherit descriptor N (repeatable; only 0-2 otherwise)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARG]...")
    p.set_defaults(handler=run)


class FastArgs:
    """What argparse would return for ``run``, from :func:`parse_fast`."""

    command = "run"

    def __init__(self) -> None:
        self.config: str | None = None
        self.profile: str | None = None
        self.chdir: str | None = None
        self.writable: list[str] = []
        self.read: list[str] = []
        self.deny: list[str] = []
        self.setenv: list[str] = []
        self.unsetenv: list[str] = []
        self.clearenv = False
        self.allow_unix_socket: list[str] = []
        self.allow_domain: list[str] = []
        self.network: bool | None = None
        self.requirements: str | None = None
        self.log_denials = False
        self.events: str | None = None
        self.pass_fd: list[int] = []
        self.cmd: list[str] = []
        self.handler = run


_VALUE_OPTS = {"-c": "config", "--config": "config", "-p": "profile", "--profile": "profile",
               "--requirements": "requirements", "--events": "events", "-C": "chdir",
               "--chdir": "chdir"}
_LIST_OPTS = {"-w": "writable", "--writable": "writable", "--allow-unix-socket": "allow_unix_socket",
              "--pass-fd": "pass_fd", "--read": "read", "--deny": "deny", "--setenv": "setenv",
              "--unsetenv": "unsetenv", "--allow-domain": "allow_domain"}
_FLAG_OPTS = {"--log-denials": "log_denials", "--clearenv": "clearenv"}


def parse_fast(argv: Sequence[str]) -> FastArgs | None:
    """The arguments of ``run`` (after the word ``run``) without argparse, for the common
    spellings only: each option spelled out (``--opt VALUE`` or ``--opt=VALUE``), then ``--``
    and the command. Anything else (``-h``, abbreviations, ``-cX``, a value starting with
    ``-``, a command without ``--``, both ``--network`` and ``--no-network``) returns None
    and argparse parses it, errors included. Why: argparse imports ``re``, ``gettext`` and
    ``locale`` and builds every action, a noticeable part of a sandboxed ``true``; tests
    check both parsers agree (tests/unit/test_cli_fastparse.py)."""
    args = FastArgs()
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        if arg == "--":
            args.cmd = list(argv[i:])  # argparse's REMAINDER keeps the "--"; run() drops it
            return args
        name, eq, value = arg.partition("=")
        if name in ("--network", "--no-network", *_FLAG_OPTS) and not eq:
            if name in _FLAG_OPTS:
                setattr(args, _FLAG_OPTS[name], True)
            elif args.network is not None:
                return None  # mutually exclusive (or repeated): argparse says which
            else:
                args.network = name == "--network"
            i += 1
            continue
        dest = _VALUE_OPTS.get(name) or _LIST_OPTS.get(name)
        if dest is None or (eq and not name.startswith("--")):
            return None
        if not eq:
            if i + 1 >= n:
                return None
            i += 1
            value = argv[i]
        if value.startswith("-") and value != "-":  # "-": argparse takes it as a value too
            return None
        if dest == "pass_fd":
            if not value.isdigit():
                return None  # argparse's error message
            getattr(args, dest).append(int(value))
        elif name in _LIST_OPTS:
            getattr(args, dest).append(value)
        else:
            setattr(args, dest, value)
        i += 1
    return None


def format_denial(d: Denial) -> str:
    return one_line(f"({d.process or '?'}) {d.op or d.kind} {d.path or d.address or ''}  [{d.rule}]")


def _note_writable_home(policy: Policy) -> None:
    """One line on stderr where a writable root holds the user's home directory (``lsandbox
    run`` started in ``~``) or lsandbox's own configuration (``-w ~/.config``): the command may
    then change what outlives the sandbox (shell startup files, ``~/.config/lsandbox``'s
    config and trust store, ``~/.codex/config.toml``), and with it later runs. Not for a
    policy that writes everywhere (the user asked for no confinement)."""
    roots = policy.filesystem.write_roots
    if not roots or "/" in roots:
        return
    from ..policy._paths import is_within

    home = os.path.realpath(os.path.expanduser("~"))
    own = os.path.join(home, ".config", "lsandbox")
    for root in roots:
        if home != "/" and is_within(home, root):
            what = "your home directory: the command may change your shell startup files and lsandbox's"
        elif is_within(own, root):
            what = f"{own}: the command may change lsandbox's"
        else:
            continue
        print(f"lsandbox: note: the writable root {one_line(root)} holds {what} configuration and trust "
              "store, which outlive the sandbox (start it in a project directory, or name one with -C)",
              file=sys.stderr)
        return


def _close_quietly(f: IO[str] | None) -> None:
    """Close the events file (not stderr); a reader that went away (EPIPE) costs the events,
    not the run's exit status or its summary."""
    if f is None or f is sys.stderr:
        return
    try:
        f.close()
    except OSError:
        pass


#: names of the supervisor's own descriptors and devices, which a sandbox cannot replace
_EVENTS_LINKS = ("/dev/stdout", "/dev/stderr", "/dev/null", "/dev/tty")


def _open_events(name: str | None) -> IO[str] | None:
    """``--events FILE``; ``-`` is standard error, beside the ``--log-denials`` summary:
    standard output belongs to the command (``lsandbox run -- cmd | jq`` must not see events).

    FILE is often in the workspace, where an earlier sandbox may have left a symlink
    (``events.jsonl -> ~/.bashrc``: the events, with paths the command chose, would replace
    the user's shell startup file) or a FIFO without a reader (the run would hang before it
    starts). So the file is opened without following a final symlink and without waiting,
    and must be a regular file with no other hard link, a FIFO with a reader or a terminal;
    only the supervisor's own descriptors (``/dev/fd/N``, ``/dev/stderr``...) are followed."""
    if not name:
        return None
    if name == "-":
        return sys.stderr
    import stat

    own = name in _EVENTS_LINKS or name.startswith(("/dev/fd/", "/proc/self/fd/"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # truncated once checked
    try:
        fd = os.open(name, flags if own else flags | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        import errno

        why = {errno.ELOOP: "is a symbolic link (one a sandbox may have left there): remove it, or name "
                            "the file it points to",
               errno.ENXIO: "is a FIFO with no reader, or a socket"}.get(e.errno or 0, f"cannot open: {e.strerror or e}")
        raise SandboxError(f"--events {name}: {why}") from None
    st = os.fstat(fd)
    kind = stat.S_IFMT(st.st_mode)
    problem = ("has other hard links (one a sandbox may have made)" if kind == stat.S_IFREG and st.st_nlink > 1
               else "" if kind in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFCHR)
               else "is not a regular file, a FIFO or a terminal")
    if problem:
        os.close(fd)
        raise SandboxError(f"--events {name}: {problem}")
    if kind == stat.S_IFREG:
        os.ftruncate(fd, 0)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w")  # closed by run()


def run(args: argparse.Namespace) -> int:
    from .._backend import backend

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise SandboxError("run: no command given (usage: lsandbox run [options] -- CMD [ARG]...)")
    policy = policy_from_args(args)
    events_file = _open_events(args.events)

    def on_event(e: Denial | Note) -> None:
        nonlocal events_file
        if events_file:
            import json

            try:
                events_file.write(json.dumps(e.to_dict()) + "\n")
                events_file.flush()
            except (OSError, ValueError):  # a reader gone (EPIPE), a full disk: the run goes on
                _close_quietly(events_file)
                events_file = None

    sandbox = backend()
    try:
        try:
            env = None if policy.environment.is_default else policy.environment.apply(os.environ)
            pass_fds: tuple[int, ...] = ()
            if args.pass_fd:
                from .._fds import check_pass_fds

                pass_fds = check_pass_fds(args.pass_fd)
            process = sandbox.spawn(policy, cmd, env=env, cwd=args.chdir,
                                    log_denials=bool(args.log_denials or args.events),
                                    pass_fds=pass_fds, on_event=on_event, forward_signals=True)
            from . import resume_gc

            resume_gc()  # the sandbox runs: the supervisor may now live as long as the command
            _note_writable_home(policy)  # once it runs: an error stays the only line
        except CommandNotFoundError as e:
            print(f"lsandbox: error: {one_line(e.strerror or str(e))}", file=sys.stderr)
            return 127
        except CommandNotExecutableError as e:
            print(f"lsandbox: error: {one_line(e.strerror or str(e))}", file=sys.stderr)
            return 126
        outcome = sandbox.wait(process)
    finally:
        _close_quietly(events_file)
    if outcome.error:
        print(f"lsandbox: error: {one_line(outcome.error)}", file=sys.stderr)
    if args.log_denials:
        _print_summary(outcome, policy, cmd[0])
    return outcome.exit_status


def _print_summary(outcome: Outcome, policy: Policy, command: str) -> None:
    """The ``=== Sandbox denials ===`` block on stderr, after the command ended."""
    print("\n=== Sandbox denials ===", file=sys.stderr)
    for d in outcome.denials:
        print(format_denial(d), file=sys.stderr)
    if not outcome.denials:
        print("(none observed)", file=sys.stderr)
    for text in outcome.notes:
        print(f"({one_line(text)})", file=sys.stderr)
    if outcome.fs_denials_unobservable:
        print("(filesystem denials are enforced by Landlock but not reported here: "
              f"{outcome.fs_denials_unobservable})", file=sys.stderr)
    from .._hints import hints

    for h in hints([d.to_dict() for d in outcome.denials], returncode=outcome.exit_status,
                   network=policy.network.enabled, read_only=outcome.read_only,
                   fs_unobservable=bool(outcome.fs_denials_unobservable), command=command,
                   writable=lambda path: policy.filesystem.access(path).value == "write"):
        print(f"lsandbox: hint: {one_line(h)}", file=sys.stderr)
