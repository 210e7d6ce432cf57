"""The Python API: ``lsandbox.run`` (like ``subprocess.run``) and ``lsandbox.Sandbox`` (like
``subprocess.Popen``), both reporting the sandbox's denials.

Spawning is serialized by a lock (one clone at a time; the broker threads of earlier
sandboxes keep running), so it is safe to call from several threads.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ._backend import Denial, Note, Outcome
from ._errors import PolicyError, SandboxError, SetupError
from ._fds import check_pass_fds
from ._load import load_policy
from .policy import Policy
from .policy._paths import path_problem

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
_spawn_lock = threading.Lock()


class CompletedSandbox(subprocess.CompletedProcess):
    """``subprocess.CompletedProcess`` plus ``denials`` (:class:`~lsandbox.Denial` records) and ``error``; with
    ``log_denials=True`` also ``fs_denials_unobservable`` (why Landlock's denials could not be
    read here, else "") and ``denial_notes`` (what the denials may lack, e.g. rate-limited),
    and ``hints`` (one-line hints when the command failed and the sandbox may be why)."""

    def __init__(self, args: Any, returncode: int, stdout: Any = None, stderr: Any = None,
                 denials: list[Denial] | None = None, error: str | None = None,
                 fs_denials_unobservable: str = "", denial_notes: list[str] | None = None) -> None:
        super().__init__(args, returncode, stdout, stderr)
        self.denials = denials or []
        self.error = error
        self.fs_denials_unobservable = fs_denials_unobservable
        self.denial_notes = denial_notes or []
        self.hints: list[str] = []  # with log_denials: why a failure may be the sandbox's


def _stdio(spec: Any, default_fd: int, write: bool) -> tuple[int, int | None]:
    """(fd for the child, fd the parent keeps or None)."""
    if spec is None:
        return default_fd, None
    if spec == PIPE:
        r, w = os.pipe()
        return (w, r) if write else (r, w)
    if spec == DEVNULL:
        return os.open(os.devnull, os.O_RDWR), None
    if isinstance(spec, int):
        return spec, None
    return spec.fileno(), None


def _check_env(env: Mapping[str, str]) -> None:
    """What ``execve`` would refuse, refused before anything starts."""
    for k, v in env.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise PolicyError(f"env: {k!r}: names and values must be strings")
        if not k or "=" in k or "\0" in k or "\0" in v:
            raise PolicyError(f"env: {k!r}: a name must be non-empty, without '=' or NUL, "
                              "and a value without NUL")


class Sandbox:
    """A sandboxed process (this platform's backend). ``policy`` defaults to ``load_policy()``.

    ``denials`` lists the broker's AF_UNIX denials; with ``log_denials=True`` also Landlock's
    filesystem/network denials from the audit records, where they can be read
    (``fs_denials_unobservable`` says why not, after :meth:`wait`)."""

    def __init__(self, args: Sequence[str], *, policy: Policy | None = None, stdin: Any = None,
                 stdout: Any = None, stderr: Any = None, cwd: str | None = None,
                 env: Mapping[str, str] | None = None, text: bool = False,
                 log_denials: bool = False, pass_fds: Sequence[int] = ()) -> None:
        from ._backend import backend

        self._backend = backend()
        self.args = [args] if isinstance(args, (str, bytes)) else list(args)  # as subprocess
        if not self.args or not all(isinstance(a, (str, bytes, os.PathLike)) for a in self.args):
            raise PolicyError(f"args: expected a non-empty sequence of strings, got {args!r}")
        if policy is not None and not isinstance(policy, Policy):
            raise PolicyError(f"policy: expected a lsandbox.Policy, got {type(policy).__name__}")
        if env is not None:
            _check_env(env)
        if cwd is not None and not isinstance(cwd, (str, bytes, os.PathLike)):
            raise PolicyError(f"cwd: expected a path, got {type(cwd).__name__}")
        if cwd is not None:
            problem = path_problem(os.path.abspath(cwd), directory=True)
            if problem:
                raise PolicyError(f"cwd {cwd}: {problem}")
        # the workspace is the directory the command runs in, as with `lsandbox run -C DIR`
        self.policy = policy if policy is not None else load_policy(cwd=cwd)
        if not self.policy.environment.is_default:  # [shell_environment_policy], --setenv...
            env = self.policy.environment.apply(os.environ if env is None else env)
        fds = [_stdio(stdin, 0, False), _stdio(stdout, 1, True), _stdio(stderr, 2, True)]
        child_fds = tuple(f[0] for f in fds)
        self._events: list[Denial | Note] = []
        self._outcome: Outcome | None = None
        try:
            with _spawn_lock:
                self._process = self._backend.spawn(
                    self.policy, [os.fsdecode(a) for a in self.args], env=env,
                    cwd=None if cwd is None else os.fsdecode(cwd),
                    stdio=(child_fds[0], child_fds[1], child_fds[2]), log_denials=log_denials,
                    pass_fds=check_pass_fds(pass_fds), on_event=self._events.append)
        except SandboxError:
            raise
        except OSError as e:  # a resource limit, a plan the kernel refused...: typed, not bare
            raise SetupError(f"sandbox setup failed: {e.strerror or e}") from e
        finally:
            for (child, parent), spec in zip(fds, (stdin, stdout, stderr), strict=True):
                if (parent is not None or spec == DEVNULL) and child not in (0, 1, 2):
                    os.close(child)  # our copy of the child's end
        self.stdin: IO[Any] | None = os.fdopen(fds[0][1], "w" if text else "wb") if fds[0][1] is not None else None
        self.stdout: IO[Any] | None = os.fdopen(fds[1][1], "r" if text else "rb") if fds[1][1] is not None else None
        self.stderr: IO[Any] | None = os.fdopen(fds[2][1], "r" if text else "rb") if fds[2][1] is not None else None
        self.pid: int = self._process.pid
        self.returncode: int | None = None
        self._wait_lock = threading.Lock()

    @property
    def denials(self) -> list[Denial]:
        """What the sandbox refused: so far, and all of it after :meth:`wait`."""
        if self._outcome is not None:
            return list(self._outcome.denials)
        return [e for e in list(self._events) if isinstance(e, Denial)]

    @property
    def fs_denials_unobservable(self) -> str:
        """Why Landlock denials are not in :attr:`denials` ("" when they are, or were not
        asked for)."""
        return self._outcome.fs_denials_unobservable if self._outcome is not None else ""

    @property
    def denial_notes(self) -> list[str]:
        """Plain statements of what :attr:`denials` may lack (after :meth:`wait`)."""
        if self._outcome is not None:
            return list(self._outcome.notes)
        return [e.text for e in list(self._events) if isinstance(e, Note)]

    @property
    def socket_dir(self) -> str:
        return str(self._process.socket_dir)

    def poll(self) -> int | None:
        if self.returncode is None and self._backend.ended(self._process, 0):
            return self.wait()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with self._wait_lock:
            if self.returncode is not None:
                return self.returncode
            if timeout is not None and not self._backend.ended(self._process, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._outcome = self._backend.wait(self._process)
            self.returncode = self._outcome.returncode
            return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        out: dict[str, Any] = {}

        def reader(name: str, f: IO[Any]) -> None:
            out[name] = f.read()
            f.close()

        threads = [threading.Thread(target=reader, args=(n, f), daemon=True)
                   for n, f in (("stdout", self.stdout), ("stderr", self.stderr)) if f is not None]
        for t in threads:
            t.start()
        if self.stdin is not None:
            try:
                if input:
                    self.stdin.write(input)
                self.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            raise
        for t in threads:
            t.join()
        return out.get("stdout"), out.get("stderr")

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.returncode is None:
            self.kill()
            self.wait()
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None and not f.closed:
                f.close()


def run(args: Sequence[str], *, policy: Policy | None = None, capture_output: bool = False,
        text: bool = False, timeout: float | None = None, input: Any = None,
        cwd: str | None = None, env: Mapping[str, str] | None = None, check: bool = False,
        stdout: Any = None, stderr: Any = None, log_denials: bool = False,
        pass_fds: Sequence[int] = ()) -> CompletedSandbox:
    """Run ``args`` in the sandbox and wait; like ``subprocess.run``, plus ``.denials``.

    Raises :class:`~lsandbox.PolicyError` for invalid input (policy, paths, ``cwd``),
    :class:`~lsandbox.SetupError` when the sandbox cannot be set up here, and
    :class:`~lsandbox.CommandNotFoundError` / :class:`~lsandbox.CommandNotExecutableError`
    for the command; all are :class:`~lsandbox.SandboxError`."""
    if capture_output:
        stdout = stderr = PIPE
    sbx = Sandbox(args, policy=policy, stdin=PIPE if input is not None else None, stdout=stdout,
                  stderr=stderr, cwd=cwd, env=env, text=text, log_denials=log_denials,
                  pass_fds=pass_fds)
    with sbx:
        try:
            out, err = sbx.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            sbx.kill()
            sbx.wait()
            raise
    outcome = sbx._outcome
    assert outcome is not None
    if outcome.setup_failed:
        raise SetupError(outcome.error)  # after the hand-over: the command never ran
    res = CompletedSandbox(sbx.args, sbx.returncode or 0, out, err, outcome.denials, outcome.error,
                           outcome.fs_denials_unobservable, outcome.notes)
    if log_denials:
        from ._hints import hints

        res.hints = hints([d.to_dict() for d in outcome.denials], returncode=res.returncode,
                          network=sbx.policy.network.enabled, read_only=outcome.read_only,
                          fs_unobservable=bool(outcome.fs_denials_unobservable),
                          command=str(sbx.args[0]),
                          writable=lambda p: sbx.policy.filesystem.access(p).value == "write")
    if check and res.returncode:
        raise subprocess.CalledProcessError(res.returncode, sbx.args, out, err)
    return res
