"""``lsandbox completion SHELL``: a completion script generated from the option table by
``shtab`` (optional: ``pip install 'lsandbox[shell]'``), never written by hand."""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "tcsh", "fish")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (needs shtab)")
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help=f"one of {', '.join(SHELLS)}")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import SandboxError
    from . import build_parser

    try:
        import shtab
    except ImportError:
        raise SandboxError("completion needs the shtab package: pip install 'lsandbox[shell]'") from None
    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
