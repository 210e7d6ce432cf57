"""One backend per platform, chosen in one place (:func:`backend`), and the typed records
both backends return. Backends decide and report; they never print: the CLI and the API
present what they return.

- :class:`Backend`: what a backend offers (spawn, wait, explain, doctor, its compiled
  policy). Linux: :class:`lsandbox.linux.LinuxBackend` (Landlock, seccomp, the broker);
  macOS: :class:`macos.MacBackend` (Seatbelt through ``sandbox-exec``).
- :class:`Denial` and :class:`Note`: the events of a run, whichever layer saw them (the
  broker, a seccomp refusal, Landlock's audit records, the proxy, Seatbelt's log). Inside
  the Linux backend events travel as dicts; they are typed at the backend's boundary
  (:func:`event`) and read back as the same dicts (:meth:`Denial.to_dict`) for
  ``--events``.

This module is on the launch path of ``lsandbox run``: it imports nothing that the launch
does not import anyway (no ``typing`` at run time; the protocol is for type checkers).
"""

from __future__ import annotations

import sys

from lsandbox_records import Record, field

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Protocol

    from .policy import Policy
else:
    Protocol = object

__all__ = ["Backend", "Denial", "DoctorReport", "Explanation", "FieldState", "Note", "Outcome",
           "backend", "event"]

_CORE = ("kind", "op", "path", "address", "pid", "process")


class Denial(Record):
    """One thing the sandbox refused, as a backend observed it.

    ``kind`` says which layer or object (``unix_socket``, ``network``, ``filesystem``,
    ``path_op``, ``seatbelt``...), ``op`` the operation (``connect``, ``fs.write_file``,
    ``file-write-create``...), ``path`` the object or ``address`` the network peer, ``pid``
    and ``process`` who asked (when known), ``rule`` the rule or reason that decided.
    ``detail`` keeps what one backend adds (``layer``, ``source``, ``host``, ``port``).

    Read access by key (``d["path"]``, ``d.get("layer")``) gives the same answers as the
    event dict it is made from, so code written against the dicts keeps working."""

    kind: str
    op: str
    path: str | None = None
    address: str | None = None
    pid: int | None = None
    process: str | None = None
    rule: str = ""
    detail: tuple[tuple[str, Any], ...] = ()

    verdict = "deny"

    @classmethod
    def from_dict(cls, e: Mapping[str, Any]) -> Denial:
        known = {*_CORE, "rule", "verdict"}
        return cls(str(e.get("kind", "")), str(e.get("op", "")), e.get("path"), e.get("address"),
                   e.get("pid"), e.get("process"), str(e.get("rule", "")),
                   tuple((k, v) for k, v in e.items() if k not in known))

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready dict (``--events``): fields that are unknown are left out."""
        out: dict[str, Any] = {"kind": self.kind, "op": self.op}
        for name in ("path", "address", "pid", "process"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["verdict"] = "deny"
        out["rule"] = self.rule
        out.update(self.detail)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def keys(self) -> list[str]:
        return list(self.to_dict())


class Note(Record):
    """A plain statement about the run's report: what the denials may lack and why."""

    text: str

    kind = "note"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "note", "text": self.text}

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


def event(e: Mapping[str, Any] | Denial | Note) -> Denial | Note | None:
    """A backend's event (a dict inside the Linux backend) as a typed record; None for
    events that are neither a denial nor a note."""
    if isinstance(e, (Denial, Note)):
        return e
    if e.get("kind") == "note":
        return Note(str(e.get("text", "")))
    if e.get("verdict") == "deny":
        return Denial.from_dict(e)
    return None


class Outcome(Record):
    """How a sandboxed run ended."""

    returncode: int  # like subprocess: -N for death by signal N
    exit_status: int  # what `lsandbox run` exits with: the command's, 128+N, 125, 126, 127
    denials: list[Denial] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # one line: why the command did not run or the sandbox failed
    setup_failed: bool = False  # the sandbox could not be set up after the hand-over
    fs_denials_unobservable: str = ""  # why filesystem denials are not among ``denials``
    read_only: tuple[str, ...] = ()  # read-only carve-outs the run had (for hints)


class FieldState(Record):
    """One row of ``doctor``: a policy field, its state here and what enforces it."""

    field: str
    state: str  # enforced, degraded, not enforced, open, brokered
    by: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "state": self.state, "by": self.by}


class DoctorReport(Record):
    """What this machine supports (``machine``, backend-specific keys) and, per policy
    field, what enforces it; ``fully_enforced`` when no field is left unenforced."""

    backend: str
    machine: dict[str, Any]
    fields: list[FieldState]

    @property
    def fully_enforced(self) -> bool:
        return all(f.state != "not enforced" for f in self.fields)


class Explanation(Record):
    """What enforces each part of a policy on one backend, for ``lsandbox explain``: one
    phrase per kind of rule, and the lines of what holds whatever the policy says."""

    backend: str
    filesystem: dict[str, str]  # access (read/write/deny) -> what enforces it
    read_only: str | None  # what enforces a read-only carve-out (None: a plain rule)
    filesystem_always: list[str]  # rules every sandbox gets, as lines
    network: str  # what enforces the policy's network setting
    unix_sockets: str
    exposed: tuple[str, ...]  # allowed socket paths the sandbox could plant a socket in
    process: list[str]  # what holds whatever the profile says, on this machine


class Backend(Protocol):
    """What the CLI and the API need from a platform's sandbox."""

    name: str

    def spawn(self, policy: Policy, args: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | None = None, stdio: tuple[int, int, int] = (0, 1, 2),
              pass_fds: Sequence[int] = (), log_denials: bool = False,
              on_event: Callable[[Denial | Note], None] | None = None,
              forward_signals: bool = False) -> Any:
        """Start ``args`` under ``policy``; returns the backend's handle (``.pid``,
        ``.socket_dir``). ``on_event`` sees each event as it happens (possibly from the
        backend's threads). ``forward_signals`` (the CLI, main thread only): the signals a
        terminal or a supervisor sends this process reach the command until :meth:`wait`
        returns.

        Raises :class:`~lsandbox.SandboxError` for bad input or a sandbox that cannot be
        made, :class:`~lsandbox.CommandNotFoundError` /
        :class:`~lsandbox.CommandNotExecutableError` for the command."""
        ...

    def ended(self, process: Any, timeout: float | None) -> bool:
        """Has the command ended? Waits up to ``timeout`` seconds (None: until it has);
        :meth:`wait` then collects the report."""
        ...

    def wait(self, process: Any) -> Outcome:
        """Wait for the run to end and collect its report."""
        ...

    def explain(self, policy: Policy) -> Explanation:
        ...

    def compiled(self, policy: Policy) -> str:
        """The policy as this backend's kernel takes it, in text (seccomp filters
        disassembled; the SBPL profile)."""
        ...

    def doctor(self, policy: Policy) -> DoctorReport:
        ...


BACKENDS = ("linux", "macos")
_chosen: dict[str, Backend] = {}


def backend(name: str | None = None) -> Backend:
    """The backend named (``linux``, ``macos``), by default this platform's. The only place
    that asks which platform this is."""
    if name is None:
        name = "macos" if sys.platform == "darwin" else "linux"
    chosen = _chosen.get(name)
    if chosen is None:
        if name == "linux":
            from .linux import LinuxBackend

            chosen = LinuxBackend()
        elif name == "macos":
            from macos import MacBackend

            chosen = MacBackend()
        else:
            from ._errors import PolicyError

            raise PolicyError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
        _chosen[name] = chosen
    return chosen

