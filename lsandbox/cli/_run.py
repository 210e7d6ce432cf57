"""``lsandbox run [policy options] [--log-denials] [--events FILE] -- CMD [ARG]...``

Exit status (DESIGN.md): the command's own; 128+N if it died of signal N; 125 when lsandbox
itself failed; 126 when the command cannot be executed; 127 when it is not found.
"""

from __future__ import annotations

import argparse
import json
import sys

from .._errors import SandboxError
from .._fds import check_pass_fds
from ._common import add_policy_options, policy_from_args

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    from typing import IO


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a command in the sandbox")
    add_policy_options(p)
    p.add_argument("--log-denials", action="store_true",
                   help="print a '=== Sandbox denials ===' summary on stderr after exit")
    p.add_argument("--events", metavar="FILE", help="write events as JSON lines to FILE")
    p.add_argument("--pass-fd", metavar="N", type=int, action="append", default=[],
                   help="let the command inherit descriptor N (repeatable; only 0-2 otherwise)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARG]...")
    p.set_defaults(handler=run)


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

        return int(macos_run(cmd, policy, log_denials=args.log_denials, events=args.events))
    from ..linux._launcher import forward_signals, spawn, wait

    events_file: IO[str] | None = open(args.events, "w") if args.events else None  # noqa: SIM115

    def on_event(e: dict) -> None:
        if events_file:
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
