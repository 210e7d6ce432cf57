"""``lsandbox manpage``: the man page (roff), generated from the option table by
``argparse-manpage`` (optional: ``pip install 'lsandbox[shell]'``), never written by hand.
``lsandbox manpage > lsandbox.1``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manpage", help="print the man page (roff; needs argparse-manpage)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from .._errors import SandboxError
    from . import build_parser

    try:
        from argparse_manpage.manpage import Manpage  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise SandboxError("manpage needs the argparse-manpage package: "
                           "pip install 'lsandbox[shell]'") from None
    data = {"project_name": "lsandbox", "version": __version__,
            "manual_title": "lsandbox manual",
            "description": "run a command under a kernel-enforced sandbox policy"}
    print(str(Manpage(build_parser(), _data=data)), end="")
    return 0
