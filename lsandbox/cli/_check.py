"""``lsandbox check [CONFIG]``: validate a config file, every profile in it (not only the
default). Without CONFIG, the file ``lsandbox run`` would load here (``-c``'s search path)."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a config file (default: the one `run` would "
                                     "load); errors name file:line:key")
    p.add_argument("config", metavar="CONFIG", nargs="?")
    p.add_argument("--requirements", metavar="FILE")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import PolicyError, one_line
    from .._load import config_search_path, find_config, load_policy, needs_trust
    from .._trust import is_trusted
    from ..policy._loader import Config

    cwd = os.getcwd() if os.path.isdir(".") else None
    if cwd is None:
        raise PolicyError("the current directory no longer exists (deleted?); name CONFIG")
    path = find_config(args.config, cwd, os.environ)
    if path is None:
        load_policy(None, requirements=args.requirements, search=False, cwd=cwd)
        print("no config file found (looked for " + ", ".join(config_search_path(cwd, os.environ))
              + "); `lsandbox run` uses the built-in :workspace profile: OK")
        return 0
    raw: list[bytes] = []
    cfg = Config.from_file(path, raw.append)  # parses every profile, raising on the first error
    names = list(cfg.profiles)
    refused = []
    for name in names:  # resolve extends chains and expand paths too
        try:
            load_policy(path, name, requirements=args.requirements, cwd=cwd)
        except PolicyError as e:
            if e.key not in ("allowed_permission_profiles", "allowed_sandbox_modes"):
                raise
            refused.append(name)  # a base profile others extend need not be allowed itself
    load_policy(path, requirements=args.requirements, cwd=cwd)
    note = f"; not allowed by the requirements to run: {', '.join(refused)}" if refused else ""
    if needs_trust(args.config, path, cwd) and not is_trusted(path, raw[0], os.environ):
        note += "; not trusted yet: `lsandbox run` refuses it until `lsandbox trust`"
    print(one_line(f"{path}: OK ({len(names)} profile{'s' if len(names) != 1 else ''}){note}"))
    return 0
