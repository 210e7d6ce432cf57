"""``lsandbox run`` on macOS: ``/usr/bin/sandbox-exec -p PROFILE -- CMD...``.

Denials (``--log-denials``, ``--events``) come from the unified log, where Seatbelt reports
``Sandbox: <process>(<pid>) deny(1) <operation> <what>``. To keep only this run's denials and
all of them:

* every deny rule of the profile carries ``(with message TAG)`` with a fresh random TAG, and
  a denial is kept when its line carries it: another program's denials (other sandboxes,
  other lsandbox runs) never do, and every process of the sandboxed tree does (a line
  without the tag is kept only when it comes from the command's own pid);
* ``log stream`` is started before the command and the command only after the stream says
  it is filtering; after the command exits a marker line carrying the TAG is logged and the
  stream is read until the marker arrives (or a bound passes), so the last denials are in.

The per-run socket directory is removed afterwards (the profile forbids the command to
rename or remove the directory itself, and cleanup checks it is still the one made).
``pass_fds`` are inherited like the standard descriptors (Seatbelt still checks reads and
writes on descriptors that name files).

This cannot run on Linux; its parsing and planning are unit-tested, and the macOS workflow
runs it for real.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from lsandbox._errors import SandboxError
from lsandbox.policy import Policy

from ._policy_to_sbpl import Context, render_sbpl

SANDBOX_EXEC = "/usr/bin/sandbox-exec"
LOG = "/usr/bin/log"
LOGGER = "/usr/bin/logger"
_DENY = re.compile(r"Sandbox: (?P<proc>.+?)\((?P<pid>\d+)\) deny\(\d+\) (?P<op>\S+)(?: (?P<what>.*))?$")
_READY = "Filtering the log data"
READY_TIMEOUT = 5.0
DRAIN_TIMEOUT = 3.0
GRACE = 0.1


@dataclass
class MacRun:
    """What a run returns to the CLI, which presents it."""

    returncode: int
    denials: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def parse_log_line(line: str, tag: str | None = None, pids: frozenset[int] = frozenset()) -> dict | None:
    """One ndjson record of ``log stream`` -> a denial event, or None. With ``tag``, a record
    is this run's when it carries the tag (cut from the path) or comes from one of ``pids``;
    another sandbox's denial is None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    msg = rec.get("eventMessage", "") if isinstance(rec, dict) else ""
    if not isinstance(msg, str):
        return None
    for part in msg.splitlines():
        m = _DENY.search(part)
        if m:
            if tag is not None and tag not in msg and int(m["pid"]) not in pids:
                return None
            what = (m["what"] or "")
            if tag:
                what = what.replace(tag, "")
            return {"kind": "seatbelt", "process": m["proc"], "pid": int(m["pid"]), "op": m["op"],
                    "path": what.strip(), "verdict": "deny", "rule": "sandbox profile"}
    return None


def inside_sandbox() -> bool:
    """True when this process already runs under Seatbelt: ``sandbox-exec`` would then fail
    with "sandbox_apply: Operation not permitted" (profiles do not nest)."""
    import ctypes

    try:
        fn = ctypes.CDLL("/usr/lib/libSystem.B.dylib").sandbox_check
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    fn.restype = ctypes.c_int
    # No operation, SANDBOX_FILTER_NONE: "is this process sandboxed?" A refusal (-1) can only
    # come from a sandbox too.
    return fn(os.getpid(), None, 0) != 0


def nested_sandbox() -> bool:
    """Inside another sandbox, confirmed: ``sandbox_check`` says so *and* a trivial profile
    cannot be applied (a wrong answer from the first must not stop every run)."""
    if not inside_sandbox():
        return False
    probe = subprocess.run(sandbox_exec_argv("(version 1)(allow default)", ["/usr/bin/true"]),
                           capture_output=True, check=False)
    return probe.returncode != 0


def _own_ttys() -> tuple[str, ...]:
    out: list[str] = []
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                name = os.path.realpath(os.ttyname(fd))
                if name not in out:
                    out.append(name)
        except OSError:
            pass
    return tuple(out)


def _fd_path(fd: int) -> str | None:
    """The path of the regular file open at ``fd``, or None (pipes, sockets, ttys)."""
    import fcntl
    import stat

    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if hasattr(fcntl, "F_GETPATH"):  # macOS
            raw = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))
            return os.fsdecode(raw.split(b"\0", 1)[0]) or None
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def own_files(pass_fds: Sequence[int] = ()) -> tuple[tuple[str, bool], ...]:
    """``(path, writable)`` for the standard streams and passed descriptors that are files."""
    import fcntl

    out: dict[str, bool] = {}
    for fd in (0, 1, 2, *pass_fds):
        path = _fd_path(fd)
        if path:
            try:
                writable = (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE) != os.O_RDONLY
            except OSError:
                continue
            out[path] = out.get(path, False) or writable
    return tuple(out.items())


def user_dirs(env: dict[str, str]) -> tuple[str | None, str | None]:
    """(DARWIN_USER_TEMP_DIR, DARWIN_USER_CACHE_DIR), canonical, when they can be found:
    ``/var/folders/XX/YYYY/T`` and its sibling ``C``."""
    tmp = env.get("TMPDIR", "")
    m = re.fullmatch(r"(/(?:private/)?var/folders/[^/]+/[^/]+)/T/?", tmp)
    if not m:
        return None, None
    base = os.path.realpath(m.group(1))
    cache = os.path.join(base, "C")
    return os.path.join(base, "T"), (cache if os.path.isdir(cache) else None)


def context(env: dict[str, str], tag: str | None, pass_fds: Sequence[int] = ()) -> Context:
    temp, cache = user_dirs(env)
    return Context(own_ttys=_own_ttys(), own_files=own_files(pass_fds), user_cache_dir=cache,
                   user_temp_dir=temp, tag=tag)


def _predicate(tag: str) -> str:
    """Lines carrying the run's tag (tagged denials, the end marker), and the kernel's
    Sandbox lines (attributed by pid when a line lacks the tag)."""
    return (f'(eventMessage CONTAINS "{tag}") OR '
            '((processID == 0) AND (senderImagePath CONTAINS "/Sandbox"))')


class _LogStream:
    """``log stream`` filtered on the run's tag, read by a thread into ``lines``."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [LOG, "stream", "--style", "ndjson", "--predicate", _predicate(tag)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_READY):
                self.ready.set()
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        self.ready.set()

    def finish(self) -> bool:
        """Log an end marker, read until it arrives; True when it did."""
        marker = f"{self.tag} end"
        subprocess.run([LOGGER, marker], check=False)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        seen = False
        with self.cond:
            while not (seen := any(marker in ln for ln in self.lines)):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        time.sleep(GRACE)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.thread.join(timeout=5)
        return seen


def _make_socket_dir() -> tuple[str, os.stat_result]:
    d = os.path.realpath(tempfile.mkdtemp(prefix="lsandbox-sock-"))
    return d, os.lstat(d)


def _remove_socket_dir(d: str, made: os.stat_result) -> None:
    try:
        st = os.lstat(d)
    except OSError:
        return
    if (st.st_dev, st.st_ino) == (made.st_dev, made.st_ino):
        shutil.rmtree(d, ignore_errors=True)


def sandbox_exec_argv(profile: str, cmd: Sequence[str]) -> list[str]:
    """``--`` ends sandbox-exec's options: a command named ``-p`` or ``-D`` stays a command."""
    return [SANDBOX_EXEC, "-p", profile, "--", *cmd]


def _resolve(cmd0: str, env: dict[str, str]) -> str | None:
    if "/" in cmd0:
        return cmd0 if os.path.exists(cmd0) else None
    return shutil.which(cmd0, path=env.get("PATH", os.defpath))


def run(cmd: list[str], policy: Policy, *, log_denials: bool = False, events: str | None = None,
        pass_fds: Sequence[int] = ()) -> MacRun:
    if nested_sandbox():
        raise SandboxError("already running inside a macOS sandbox: sandbox-exec cannot apply a "
                           "second profile (sandbox_apply: Operation not permitted); run lsandbox "
                           "outside the other sandbox")
    env = dict(os.environ)
    if _resolve(cmd[0], env) is None:
        return MacRun(127, error=f"{cmd[0]}: command not found")
    want_log = log_denials or bool(events)
    tag = f"lsandbox-{os.urandom(8).hex()}" if want_log else None
    socket_dir, made = _make_socket_dir()
    notes: list[str] = []
    stream: _LogStream | None = None
    try:
        profile = render_sbpl(policy, socket_dir=socket_dir, context=context(env, tag, pass_fds))
        env["LSANDBOX_SOCKET_DIR"] = socket_dir
        if tag:
            try:
                stream = _LogStream(tag)
            except OSError as e:
                notes.append(f"denials cannot be read: {LOG}: {e.strerror}")
        if stream and not stream.ready.wait(READY_TIMEOUT):
            notes.append("the unified log stream did not start in time: denials may be missing")
        proc = subprocess.Popen(sandbox_exec_argv(profile, cmd), env=env, pass_fds=tuple(pass_fds))
        forwarded = (signal.SIGTERM, signal.SIGHUP) if threading.current_thread() is threading.main_thread() else ()
        old = {s: signal.signal(s, lambda n, _f: proc.send_signal(n)) for s in forwarded}
        try:
            while True:
                try:
                    rc = proc.wait()
                    break
                except KeyboardInterrupt:
                    proc.send_signal(signal.SIGINT)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        denials: list[dict] = []
        if stream:
            if not stream.finish():
                notes.append("the end marker did not come back from the unified log: the last "
                             "denials may be missing")
            seen = set()
            root = frozenset({proc.pid})  # sandbox-exec execs the command: same pid
            for e in (parse_log_line(ln, tag, root) for ln in stream.lines):
                if e and (key := (e["process"], e["op"], e["path"])) not in seen:
                    seen.add(key)
                    denials.append(e)
    finally:
        if stream and stream.proc.poll() is None:  # an error before the stream was drained
            stream.proc.kill()
            stream.proc.wait()
        _remove_socket_dir(socket_dir, made)
    if events:
        with open(events, "w") as f:
            for e in denials:
                f.write(json.dumps(e) + "\n")
    return MacRun(128 - rc if rc < 0 else rc, denials, notes)

