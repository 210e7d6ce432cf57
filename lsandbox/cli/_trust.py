"""``lsandbox trust [CONFIG]``: trust the working directory's ``lsandbox.toml`` as it is now
(``lsandbox._trust``): ``lsandbox run`` loads a config found there only once trusted."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trust", help="trust ./lsandbox.toml as it is now (run loads it only then)")
    p.add_argument("config", metavar="CONFIG", nargs="?", default="lsandbox.toml",
                   help="the file to trust (default: ./lsandbox.toml)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._trust import store_path, trust
    from ..policy._loader import Config

    raw: list[bytes] = []
    Config.from_file(args.config, raw.append)  # only a valid config is trusted; these bytes
    entry = trust(args.config, raw[0], os.environ)
    digest, where = entry.split(" ", 1)
    print(f"trusted {where} (sha256 {digest[:16]}...) in {store_path(os.environ)}")
    return 0
