"""`lsandbox check` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check (not implemented yet)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("lsandbox check: not implemented yet", file=sys.stderr)
    return 125
