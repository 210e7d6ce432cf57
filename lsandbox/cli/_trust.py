"""``lsandbox trust [CONFIG]``: trust the working directory's ``lsandbox.toml`` as it is now
(``lsandbox._trust``): ``lsandbox run`` loads a config found there only once trusted."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trust", help="trust ./lsandbox.toml as it is now (run loads it only then)")
    p.add_argument("config", metavar="CONFIG", nargs="?", default="lsandbox.toml",
                   help="the file to trust (default: ./lsandbox.toml)")
    p.add_argument("--forget", action="store_true", help="forget what was trusted at CONFIG")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import one_line
    from .._load import load_policy
    from .._trust import forget, store_path, trust
    from ..policy._loader import Config

    store = store_path(os.environ)
    if args.forget:
        gone = forget(args.config, os.environ)
        print(one_line(f"{'forgot' if gone else 'nothing was trusted at'} {os.path.abspath(args.config)} ({store})"))
        return 0
    raw: list[bytes] = []
    Config.from_file(args.config, raw.append)  # only a valid config is trusted; these bytes
    entry = trust(args.config, raw[0], os.environ)
    digest, where = entry.split(" ", 1)
    # what it now gives a run started beside it: a file changed after it was reviewed shows
    policy = load_policy(args.config, cwd=os.path.dirname(where), requirements=None)
    fs, net = policy.filesystem, policy.network
    print(one_line(f"trusted {where} (sha256 {digest}) in {store}: profile {policy.name or '(default)'}, "
                f"writable {', '.join(fs.write_roots) or 'nothing'}, network {'on' if net.enabled else 'off'}"))
    return 0
