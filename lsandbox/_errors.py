"""The error hierarchy.

One base, :class:`SandboxError`; each subclass also inherits the builtin it resembles so
callers can catch either (``except ValueError`` still sees a bad policy). The CLI turns any
``SandboxError`` into one ``lsandbox: error: ...`` line and exit status 125 (126/127 for the
two command errors, as a shell does).

* :class:`PolicyError` (``ValueError``): a config, profile, flag or path is invalid (a path
  that cannot exist, a name over 255 bytes, a ``-w`` directory that is missing...).
* :class:`UnenforceableError` (a ``PolicyError``): valid, but not enforceable here.
* :class:`SetupError` (``OSError``): the sandbox could not be set up on this machine.
* :class:`CommandNotFoundError` / :class:`CommandNotExecutableError`
  (``FileNotFoundError`` / ``PermissionError``): the command itself.

``lsandbox.run`` and ``lsandbox.Sandbox`` raise only these for a policy, input or setup
problem, never a bare ``OSError``.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n``...): a path may contain a newline,
    and an error is one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class SandboxError(Exception):
    """Base of every error lsandbox raises on purpose."""


class PolicyError(SandboxError, ValueError):
    """A policy or configuration is invalid.

    ``str()`` is the whole one-line message, ``FILE:LINE: KEY: what is wrong`` when the error
    comes from a file (``file``/``line``/``key`` are kept as attributes for tests and tools).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        key = f"{self.key}: " if self.key else ""
        return one_line(f"{where}{key}{self.message}")


class UnenforceableError(PolicyError):
    """A valid setting that the backend running here cannot enforce (and best effort was not
    asked for). Raised instead of silently running with a weaker policy."""


class SetupError(SandboxError, OSError):
    """The sandbox could not be set up (a kernel call failed, a namespace was refused, the
    socket directory could not be made...). Nothing is left behind when it is raised."""


class CommandNotFoundError(SandboxError, FileNotFoundError):
    """The command to run does not exist (``lsandbox run`` exits 127). Also a
    ``FileNotFoundError``, as ``subprocess.run`` raises for a missing program."""


class CommandNotExecutableError(SandboxError, PermissionError):
    """The command exists but cannot be executed (``lsandbox run`` exits 126). Also a
    ``PermissionError``, as with ``subprocess.run``."""
