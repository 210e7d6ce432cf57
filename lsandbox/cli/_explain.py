"""`lsandbox explain` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain (not implemented yet)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("lsandbox explain: not implemented yet", file=sys.stderr)
    return 125
