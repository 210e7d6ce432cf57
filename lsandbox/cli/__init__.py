"""The ``lsandbox`` command line.

argparse, not click: it is in the standard library (nothing more to install or audit in a
security tool), and ``REMAINDER`` after ``--`` is exactly what ``run -- CMD ARGS...`` needs.

Each subcommand lives in its own module exposing ``register(subparsers)`` and a handler
``run(args) -> int``. Any :class:`~lsandbox.SandboxError` becomes one
``lsandbox: error: ...`` line on stderr and exit status 125.

Only what the subcommand at hand needs is imported: ``lsandbox run -- CMD`` (a fresh
interpreter per sandbox) parses its arguments without argparse when they are spelled plainly
(``_run.parse_fast``) and never imports the other subcommands.
"""

from __future__ import annotations

import gc
import os
import sys

from .._errors import SandboxError, one_line

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import NoReturn

EXIT_OWN_ERROR = 125
_SCALAR_OPTIONS = ("config", "profile", "chdir", "events", "requirements")
_OWN_PROCESS = False  # set by console(): the lsandbox command, not a caller of main()
_GC_PAUSED = False  # console() paused the cyclic garbage collector; resume_gc() resumes it
# each in its module ``._<name>``
SUBCOMMANDS = ("run", "explain", "check", "trust", "doctor", "completion", "manpage")


def _formatter_class() -> type[argparse.HelpFormatter]:
    import argparse

    class _Formatter(argparse.HelpFormatter):
        """argparse builds a formatter for every ``add_argument`` and the stock one asks
        ``shutil`` for the terminal size each time (importing shutil, bz2, lzma...): on a
        command run once per sandbox that is measurable. ``$COLUMNS`` or 100 columns it is."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:
            if width is None:
                cols = os.environ.get("COLUMNS", "")
                width = (int(cols) if cols.isdigit() else 100) - 2
            super().__init__(prog, indent_increment, max_help_position, width)

    return _Formatter


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class _Parser(argparse.ArgumentParser):
        """Usage errors in the one shape every lsandbox error has: a single
        ``lsandbox: error: ...`` line (argparse's own prints the usage first and prefixes the
        subcommand's name), then exit status 125 (``main`` maps argparse's 2)."""

        def error(self, message: str) -> NoReturn:
            sub = self.prog.partition(" ")[2]
            hint = f" (see 'lsandbox {sub + ' ' if sub else ''}--help')"
            self.exit(2, f"lsandbox: error: {sub + ': ' if sub else ''}{one_line(message)}{hint}\n")

    return _Parser


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a subcommand, only that one is registered (the others
    cost time and are not reachable then)."""
    import argparse

    from .. import __version__

    if _OWN_PROCESS:  # see console()
        argparse._ = argparse.ngettext = _untranslated  # type: ignore[attr-defined]
    _Formatter = _formatter_class()
    parser = _parser_class()(
        prog="lsandbox",
        description="Run a command under a kernel-enforced sandbox policy.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"lsandbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_parser = sub.add_parser
    sub.add_parser = lambda name, **kw: add_parser(name, formatter_class=_Formatter, **kw)  # type: ignore[method-assign]
    first = argv[0] if argv else None
    for name in SUBCOMMANDS:
        if first not in SUBCOMMANDS or name == first:
            # __import__, not importlib.import_module: the launch path does not import importlib
            __import__(f"{__name__}._{name}", fromlist=["register"]).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | None = None
    if argv and argv[0] == "run":
        from ._run import parse_fast

        args = parse_fast(argv[1:])  # type: ignore[assignment]
    if args is None:
        parser = build_parser(argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # argparse usage errors exit 2; ours are 125 by DESIGN.md
            code = e.code if isinstance(e.code, int) else 1
            return EXIT_OWN_ERROR if code == 2 else code
        for name, value in vars(args).items():
            # argparse drops a value spelled "--" (``--setenv=--``) and stores [] in its place
            if (value == [] and name in _SCALAR_OPTIONS) or (isinstance(value, list) and [] in value):
                print(f"lsandbox: error: --{name.replace('_', '-')}: '--' is not a value", file=sys.stderr)
                return EXIT_OWN_ERROR
    try:
        return int(args.handler(args))
    except SandboxError as e:
        print(f"lsandbox: error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_OWN_ERROR
    except BrokenPipeError:  # `lsandbox explain | head`: the reader left; nothing to say
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a tool killed by the signal reports
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _untranslated(msg: str, plural: str | None = None, n: int = 1) -> str:
    return msg if plural is None or n == 1 else plural


def resume_gc() -> None:
    """Collect garbage again, for the rest of a long-lived ``lsandbox run`` supervisor (the
    broker may serve the command for hours): called once the sandbox runs. The objects made
    until then (modules, policy, plan) live as long as the process, so they are frozen out of
    the collector's sight (``gc.freeze``) rather than walked by every later collection."""
    global _GC_PAUSED
    if _GC_PAUSED:
        _GC_PAUSED = False
        gc.freeze()
        gc.enable()


def console() -> None:
    """The ``lsandbox`` command: :func:`main`, then exit without the interpreter's teardown
    (module cleanup and thread bookkeeping are a noticeable part of a sandboxed ``true``).
    Everything the command owns is closed by then; the standard streams are flushed here.

    Also only here (our own process): argparse, when the arguments need it, asks gettext for
    a translation of each of its messages, and gettext, finding none, searches the locale
    directories again every time; lsandbox's messages are English only. And the cyclic
    garbage collector is paused: importing the launch path and building the plan allocate
    many objects and little garbage, and each collection walks all of them; ``run`` resumes
    it once the sandbox runs (:func:`resume_gc`), the other commands end soon anyway."""
    global _OWN_PROCESS, _GC_PAUSED
    _OWN_PROCESS = True
    if gc.isenabled():
        gc.disable()
        _GC_PAUSED = True
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or EXIT_OWN_ERROR
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
