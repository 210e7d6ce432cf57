"""The ``lsandbox`` command line.

argparse, not click: it is in the standard library (nothing more to install or audit in a
security tool), and ``REMAINDER`` after ``--`` is exactly what ``run -- CMD ARGS...`` needs.

Each subcommand lives in its own module exposing ``register(subparsers)`` and a handler
``run(args) -> int``. Any :class:`~lsandbox.SandboxError` becomes one
``lsandbox: error: ...`` line on stderr and exit status 125.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._errors import SandboxError
from . import _check, _doctor, _explain, _run

EXIT_OWN_ERROR = 125


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsandbox",
        description="Run a command under a kernel-enforced sandbox policy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in (_run, _explain, _check, _doctor):
        mod.register(sub)
    return parser



def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse usage errors exit 2; ours are 125 by DESIGN.md
        code = e.code if isinstance(e.code, int) else 1
        return EXIT_OWN_ERROR if code == 2 else code
    try:
        return int(args.handler(args))
    except SandboxError as e:
        print(f"lsandbox: error: {e}", file=sys.stderr)
        return EXIT_OWN_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
