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

:class:`MacBackend` is this platform's backend (``lsandbox._backend``): it starts and waits,
returning typed records; the CLI prints them. This cannot run on Linux; its parsing and
planning are unit-tested, and the macOS workflow runs it for real.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsandbox._backend import Denial, DoctorReport, Explanation, FieldState, Note, Outcome, event
from lsandbox._errors import CommandNotFoundError, SandboxError
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
    """What :func:`run` returns: the exit status (128+N for signal N) and the report."""

    returncode: int
    denials: list[Denial] = field(default_factory=list)
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


def _own_ttys(stdio: Sequence[int] = (0, 1, 2)) -> tuple[str, ...]:
    """The terminals the command's standard descriptors are (not ours: an API caller may
    give it pipes while its own stdout is a terminal)."""
    out: list[str] = []
    for fd in stdio:
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


def own_files(pass_fds: Sequence[int] = (), stdio: Sequence[int] = (0, 1, 2)) -> tuple[tuple[str, bool], ...]:
    """``(path, writable)`` for the command's standard descriptors (``stdio``, as it gets
    them) and passed descriptors that are files."""
    import fcntl

    out: dict[str, bool] = {}
    for fd in (*stdio, *pass_fds):
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


def context(env: dict[str, str], tag: str | None, pass_fds: Sequence[int] = (),
            stdio: Sequence[int] = (0, 1, 2)) -> Context:
    """What the profile grants beyond the policy: the terminals and files the command's own
    descriptors are (``stdio`` as the command gets them, and ``pass_fds``)."""
    temp, cache = user_dirs(env)
    return Context(own_ttys=_own_ttys(stdio), own_files=own_files(pass_fds, stdio), user_cache_dir=cache,
                   user_temp_dir=temp, tag=tag, home=_home(env))


def _home(env: dict[str, str]) -> str | None:
    """The user's home directory: the password database's (the one Security.framework uses),
    else ``$HOME``."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return env.get("HOME")


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


def _resolve(cmd0: str, env: Mapping[str, str], cwd: str | None = None) -> str | None:
    if "/" in cmd0:
        return cmd0 if os.path.exists(os.path.join(cwd or "", cmd0)) else None
    return shutil.which(cmd0, path=env.get("PATH", os.defpath))


FILESYSTEM = {"read": "SBPL (allow file-read*)", "write": "SBPL (allow file-read* file-write*)",
              "deny": "SBPL (deny file-read* file-write*)"}
UNIX_SOCKETS = "SBPL network-outbound (remote unix-socket) / network-bind (local unix-socket)"


class MacProcess:
    """A command running under ``sandbox-exec``, as :meth:`MacBackend.spawn` started it."""

    def __init__(self, proc: subprocess.Popen[bytes], socket_dir: tuple[str, os.stat_result],
                 stream: _LogStream | None, tag: str | None, notes: list[str], proxy: Any,
                 proxy_denials: list[dict], on_event: Callable[[Denial | Note], None] | None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.socket_dir = socket_dir[0]
        self._made = socket_dir
        self.stream = stream
        self.tag = tag
        self.notes = notes
        self.proxy = proxy
        self.proxy_denials = proxy_denials
        self.on_event = on_event
        self.forward_signals = False

    def close(self) -> None:
        """Stop the proxy and the log stream, remove the socket directory (idempotent)."""
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self.stream and self.stream.proc.poll() is None:  # an error before the stream was drained
            self.stream.proc.kill()
            self.stream.proc.wait()
        _remove_socket_dir(*self._made)


class MacBackend:
    """Seatbelt through ``sandbox-exec`` (see :class:`lsandbox._backend.Backend`)."""

    name = "macos"

    def spawn(self, policy: Policy, args: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | None = None, stdio: tuple[int, int, int] = (0, 1, 2),
              pass_fds: Sequence[int] = (), log_denials: bool = False,
              on_event: Callable[[Denial | Note], None] | None = None,
              forward_signals: bool = False) -> MacProcess:
        if nested_sandbox():
            raise SandboxError("already running inside a macOS sandbox: sandbox-exec cannot apply a "
                               "second profile (sandbox_apply: Operation not permitted); run lsandbox "
                               "outside the other sandbox")
        cmd = list(args)
        run_env = dict(os.environ if env is None else env)
        if _resolve(cmd[0], run_env, cwd) is None:
            raise CommandNotFoundError(2, f"{cmd[0]}: command not found")
        tag = f"lsandbox-{os.urandom(8).hex()}" if log_denials else None
        made = _make_socket_dir()
        notes: list[str] = []
        stream: _LogStream | None = None
        proxy: Any = None  # network.domains: the SBPL allows only the proxy's port
        proxy_denials: list[dict] = []
        try:
            profile = render_sbpl(policy, socket_dir=made[0], context=context(run_env, tag, pass_fds, stdio))
            run_env["LSANDBOX_SOCKET_DIR"] = made[0]
            if policy.network.proxied:
                from lsandbox.proxy import proxy_env, serve_on_loopback

                proxy = serve_on_loopback(policy.network, proxy_denials.append)
                run_env.update(proxy_env(policy.network.proxy_port))
            if tag:
                try:
                    stream = _LogStream(tag)
                except OSError as e:
                    notes.append(f"denials cannot be read: {LOG}: {e.strerror}")
            if stream and not stream.ready.wait(READY_TIMEOUT):
                notes.append("the unified log stream did not start in time: denials may be missing")
            std = [None if fd == i else fd for i, fd in enumerate(stdio)]
            proc = subprocess.Popen(sandbox_exec_argv(profile, cmd), env=run_env, cwd=cwd,
                                    stdin=std[0], stdout=std[1], stderr=std[2], pass_fds=tuple(pass_fds))
        except BaseException:
            if proxy is not None:
                proxy.close()
            if stream and stream.proc.poll() is None:
                stream.proc.kill()
                stream.proc.wait()
            _remove_socket_dir(*made)
            raise
        process = MacProcess(proc, made, stream, tag, notes, proxy, proxy_denials, on_event)
        process.forward_signals = forward_signals
        return process

    def ended(self, process: MacProcess, timeout: float | None) -> bool:
        try:
            process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def wait(self, process: MacProcess) -> Outcome:
        proc = process.proc
        forwarded = (signal.SIGTERM, signal.SIGHUP) if process.forward_signals else ()
        old = {s: signal.signal(s, lambda n, _f: proc.send_signal(n)) for s in forwarded}
        try:
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
            if process.proxy is not None:
                process.proxy.close()
                process.proxy = None
            raw: list[dict] = list(process.proxy_denials)
            stream = process.stream
            if stream:
                if not stream.finish():
                    process.notes.append("the end marker did not come back from the unified log: "
                                         "the last denials may be missing")
                seen = set()
                root = frozenset({proc.pid})  # sandbox-exec execs the command: same pid
                for e in (parse_log_line(ln, process.tag, root) for ln in stream.lines):
                    if e and (key := (e["process"], e["op"], e["path"])) not in seen:
                        seen.add(key)
                        raw.append(e)
        finally:
            process.close()
        denials = [d for d in map(event, raw) if isinstance(d, Denial)]
        if process.on_event is not None:
            for d in denials:
                process.on_event(d)
        return Outcome(rc, 128 - rc if rc < 0 else rc, denials, process.notes)

    def explain(self, policy: Policy) -> Explanation:
        from ._baseline import explain_lines

        net = policy.network
        if net.proxied:
            network = f"SBPL network-outbound to localhost:{net.proxy_port} only (the proxy runs outside)"
        elif net.enabled:
            network = ("allowed (IP sockets; name resolution through mDNSResponder and configd; TLS "
                       "trust through trustd)")
        else:
            network = "denied (no IP rules; no name resolution)"
        return Explanation("macos", FILESYSTEM, None, list(explain_lines(policy)), network,
                           UNIX_SOCKETS, (), [])

    def compiled(self, policy: Policy) -> str:
        return render_sbpl(policy)

    def doctor(self, policy: Policy) -> DoctorReport:
        import platform

        machine = {"system": f"macOS {platform.mac_ver()[0] or '?'}", "arch": platform.machine(),
                   "sandbox_exec": os.access(SANDBOX_EXEC, os.X_OK), "log": os.access(LOG, os.X_OK),
                   "run_refused": "" if os.access(SANDBOX_EXEC, os.X_OK) else f"{SANDBOX_EXEC} is missing"}
        state = "enforced" if machine["sandbox_exec"] else "not enforced"
        fields = [FieldState("filesystem read/write roots", state, "Seatbelt (SBPL file-read*/file-write*)"),
                  FieldState("network", state, "Seatbelt (SBPL network-outbound/network-bind)"),
                  FieldState("unix_sockets allowlist", state, "Seatbelt (SBPL unix-socket filters)")]
        if policy.filesystem.read_only:
            fields.insert(1, FieldState("read-only carve-outs", state, "Seatbelt (SBPL deny file-write*)"))
        return DoctorReport("macos", machine, fields)


def run(cmd: list[str], policy: Policy, *, log_denials: bool = False, events: str | None = None,
        pass_fds: Sequence[int] = ()) -> MacRun:
    """Run ``cmd`` and wait (:class:`MacBackend`), writing the denials to ``events`` as JSON
    lines when given."""
    backend = MacBackend()
    try:
        process = backend.spawn(policy, cmd, pass_fds=pass_fds, log_denials=log_denials or bool(events),
                                forward_signals=threading.current_thread() is threading.main_thread())
    except CommandNotFoundError as e:
        return MacRun(127, error=e.strerror)
    outcome = backend.wait(process)
    if events:
        with open(events, "w") as f:
            for d in outcome.denials:
                f.write(json.dumps(d.to_dict()) + "\n")
    return MacRun(outcome.exit_status, outcome.denials, outcome.notes)
