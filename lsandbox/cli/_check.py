"""``lsandbox check CONFIG``: validate a config file, every profile in it (not only the default)."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a config file; errors name file:line:key")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--requirements", metavar="FILE")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._load import load_policy
    from ..policy._loader import Config

    cfg = Config.from_file(args.config)  # parses every profile, raising on the first error
    names = list(cfg.profiles)
    for name in names:  # resolve extends chains and expand paths too
        load_policy(args.config, name, requirements=args.requirements, cwd=os.getcwd())
    load_policy(args.config, requirements=args.requirements)
    print(f"{args.config}: OK ({len(names)} profile{'s' if len(names) != 1 else ''})")
    return 0
