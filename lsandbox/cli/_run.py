"""``lsandbox run [policy options] [--log-denials] [--events FILE] -- CMD [ARG]...``

Exit status (DESIGN.md): the command's own; 128+N if it died of signal N; 125 when lsandbox
itself failed; 126 when the command cannot be executed; 127 when it is not found.
"""

from __future__ import annotations

import sys

from .._errors import SandboxError
from .._fds import check_pass_fds
from ._common import policy_from_args

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import IO


def register(sub: argparse._SubParsersAction) -> None:
    import argparse

    from ._common import add_policy_options

    p = sub.add_parser("run", help="run a command in the sandbox")
    add_policy_options(p)
    p.add_argument("--log-denials", action="store_true",
                   help="print a '=== Sandbox denials ===' summary on stderr after exit")
    p.add_argument("--events", metavar="FILE", help="write events as JSON lines to FILE")
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
        self.writable: list[str] = []
        self.allow_unix_socket: list[str] = []
        self.network: bool | None = None
        self.requirements: str | None = None
        self.log_denials = False
        self.events: str | None = None
        self.pass_fd: list[int] = []
        self.cmd: list[str] = []
        self.handler = run


_VALUE_OPTS = {"-c": "config", "--config": "config", "-p": "profile", "--profile": "profile",
               "--requirements": "requirements", "--events": "events"}
_LIST_OPTS = {"-w": "writable", "--writable": "writable", "--allow-unix-socket": "allow_unix_socket",
              "--pass-fd": "pass_fd"}


def parse_fast(argv: Sequence[str]) -> FastArgs | None:
    """The arguments of ``run`` (after the word ``run``) without argparse, for the common
    spellings only: each option spelled out (``--opt VALUE`` or ``--opt=VALUE``), then ``--``
    and the command. Anything else (``-h``, abbreviations, ``-cX``, a value starting with
    ``-``, a command without ``--``, both ``--network`` and ``--no-network``) returns None
    and argparse parses it, errors included. Why: argparse imports ``re``, ``gettext`` and
    ``locale`` and builds every action, ~5 ms of the ~50 ms that ``lsandbox run -- true``
    costs; tests check both parsers agree (tests/unit/test_cli_fastparse.py)."""
    args = FastArgs()
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        if arg == "--":
            args.cmd = list(argv[i:])  # argparse's REMAINDER keeps the "--"; run() drops it
            return args
        name, eq, value = arg.partition("=")
        if name in ("--network", "--no-network", "--log-denials") and not eq:
            if name == "--log-denials":
                args.log_denials = True
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
        if value.startswith("-"):
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


def format_denial(e: dict) -> str:
    what = e.get("path") or e.get("address") or ""
    return f"({e.get('process', '?')}) {e.get('op', e.get('kind'))} {what}  [{e.get('rule', '')}]"


def run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise SandboxError("run: no command given (usage: lsandbox run [options] -- CMD [ARG]...)")
    policy = policy_from_args(args)
    if sys.platform == "darwin":  # pragma: no cover - macOS backend
        from macos import run as macos_run

        mac = macos_run(cmd, policy, log_denials=args.log_denials, events=args.events,
                        pass_fds=check_pass_fds(args.pass_fd))
        if mac.error:
            print(f"lsandbox: error: {mac.error}", file=sys.stderr)
        if args.log_denials:
            print("\n=== Sandbox denials ===", file=sys.stderr)
            for e in mac.denials:
                print(format_denial(e), file=sys.stderr)
            for text in mac.notes if mac.denials else ["none observed", *mac.notes]:
                print(f"({text})", file=sys.stderr)
        return mac.returncode
    from ..linux._launcher import forward_signals, spawn, wait

    events_file: IO[str] | None = open(args.events, "w") if args.events else None  # noqa: SIM115

    def on_event(e: dict) -> None:
        if events_file:
            import json

            events_file.write(json.dumps(e) + "\n")
            events_file.flush()

    try:
        try:
            launch = spawn(policy, cmd, on_event=on_event,
                           log_denials=bool(args.log_denials or args.events),
                           pass_fds=check_pass_fds(args.pass_fd))
        except FileNotFoundError as e:
            print(f"lsandbox: error: {e.strerror}", file=sys.stderr)
            return 127
        except PermissionError as e:
            print(f"lsandbox: error: {e.strerror}", file=sys.stderr)
            return 126
        restore = forward_signals(launch)
        try:
            wait(launch)
        finally:
            restore()
    finally:
        if events_file:
            events_file.close()
    if launch.error:
        print(f"lsandbox: error: {launch.error}", file=sys.stderr)
    if args.log_denials:
        denials = [e for e in launch.events if e.get("verdict") == "deny"]
        print("\n=== Sandbox denials ===", file=sys.stderr)
        for e in denials:
            print(format_denial(e), file=sys.stderr)
        if not denials:
            print("(none observed)", file=sys.stderr)
        for e in launch.events:
            if e.get("kind") == "note":
                print(f"({e.get('text')})", file=sys.stderr)
        if launch.fs_denials_unobservable:
            print("(filesystem denials are enforced by Landlock but not reported here: "
                  f"{launch.fs_denials_unobservable})", file=sys.stderr)
    assert launch.exit_status is not None
    return launch.exit_status
