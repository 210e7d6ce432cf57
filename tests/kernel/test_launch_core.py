"""`lsandbox run` end to end: filesystem, .git, network, exit statuses, ordinary programs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

import lsandbox
from tests._sandbox import LSANDBOX, PY, cli, policy, probe, rmtree, world_dir
from tests._util import TIME_FACTOR, run_in_child, setpriv_nobody

pytestmark = pytest.mark.kernel


@pytest.fixture
def ws():
    d = world_dir("lsb-ws-")
    subprocess.run(["git", "init", "-q", d], check=True)
    subprocess.run(["git", "-C", d, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)
    os.system(f"chmod -R a+rwX {d}")
    outside = world_dir("lsb-out-")
    yield d, outside
    rmtree(d)
    rmtree(outside)


FS_PROBE = """
def t(f):
    try:
        f(); return "ok"
    except OSError as e:
        return e.__class__.__name__
W, O = sys.argv[1:3] if len(sys.argv) > 2 else (os.environ["W"], os.environ["O"])
R["write_inside"] = t(lambda: open(W + "/new.txt", "w").write("x"))
R["write_outside"] = t(lambda: open(O + "/new.txt", "w").write("x"))
R["git_hook"] = t(lambda: open(W + "/.git/hooks/evil", "w").write("x"))
R["read_etc"] = t(lambda: open("/etc/hostname").read())
R["devnull"] = t(lambda: open("/dev/null", "w").write("x"))
"""


def _fs_probe(ws_dir: str, outside: str, pol: lsandbox.Policy) -> dict:
    return probe(f"W, O = {ws_dir!r}, {outside!r}\n" + FS_PROBE.replace(
        'W, O = sys.argv[1:3] if len(sys.argv) > 2 else (os.environ["W"], os.environ["O"])', ""),
        pol, cwd=ws_dir)


def test_workspace_writes_and_git_protected(ws):
    d, outside = ws
    got = _fs_probe(d, outside, policy(":workspace", cwd=d))
    assert got["write_inside"] == "ok"
    assert got["write_outside"] == "OSError"  # EROFS: the read-only mount view answers first
    assert got["git_hook"] in ("OSError", "PermissionError")  # EROFS (bind mount) or EACCES
    assert got["read_etc"] == "ok" and got["devnull"] == "ok"
    assert not os.path.exists(os.path.join(d, ".git/hooks/evil"))
    assert not os.path.exists(os.path.join(outside, "new.txt"))


def test_unsandboxed_probe_succeeds(ws):
    """The probe really attacks: without the sandbox the same writes succeed."""
    d, outside = ws
    r = subprocess.run([PY, "-c", "import json,os,sys\nR={}\n" + FS_PROBE + "\nprint(json.dumps(R))",
                        d, outside], capture_output=True, text=True)
    assert '"write_outside": "ok"' in r.stdout and '"git_hook": "ok"' in r.stdout


def test_git_log_works_commit_fails(ws):
    d, _ = ws
    head = subprocess.run(["git", "-C", d, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    r = cli("run", "--", "git", "log", "--oneline", cwd=d)
    assert r.returncode == 0 and "init" in r.stdout
    r = cli("run", "--", "git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "--allow-empty",
            "-m", "x", cwd=d)
    assert r.returncode != 0
    assert subprocess.run(["git", "-C", d, "rev-parse", "HEAD"], capture_output=True, text=True).stdout == head


def test_read_only_profile(ws):
    d, outside = ws
    got = _fs_probe(d, outside, policy(":read-only", cwd=d))
    assert got["write_inside"] == "OSError" and got["read_etc"] == "ok"  # EROFS (mount view)


def test_deny_read_path(ws, tmp_path):
    d, outside = ws
    secret = os.path.join(outside, "secret")
    os.mkdir(secret)
    with open(os.path.join(secret, "key"), "w") as f:
        f.write("k")
    with open(os.path.join(outside, "sibling"), "w") as f:
        f.write("s")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[permissions.p]\nextends = ":workspace"\nfilesystem = {{ "{secret}" = "deny" }}\n')
    pol = lsandbox.load_policy(str(cfg), "p", cwd=d, requirements=None)
    got = probe(f"""
try:
    open({secret!r} + "/key").read(); R["secret"] = "ok"
except OSError as e:
    R["secret"] = type(e).__name__
R["sibling"] = open({outside!r} + "/sibling").read()
""", pol, cwd=d)
    # masked by an empty directory of mode 0000: EACCES without capabilities, ENOENT with
    # CAP_DAC_READ_SEARCH (root keeping its capabilities)
    assert got["secret"] in ("PermissionError", "FileNotFoundError")
    assert got == {"secret": got["secret"], "sibling": "s", "_denials": []}


@pytest.fixture
def tcp_server():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_network_off_and_on(tcp_server):
    code = f"""
try:
    s = socket.create_connection(("127.0.0.1", {tcp_server}), timeout=5); R["tcp"] = "ok"
except OSError as e:
    R["tcp"] = type(e).__name__
"""
    assert probe(code, policy(":workspace"))["tcp"] == "PermissionError"
    assert probe(code, policy(":workspace", network=True))["tcp"] == "ok"


def test_exit_statuses(tmp_path):
    assert cli("run", "--", "sh", "-c", "exit 3").returncode == 3
    assert cli("run", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    assert cli("run", "--", "no-such-command-xyz").returncode == 127
    f = tmp_path / "noexec"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    assert cli("run", "--", str(f)).returncode == 126
    r = cli("run", "-p", ":nope", "--", "true")
    assert r.returncode == 125 and r.stderr.startswith("lsandbox: error: ")


def test_ordinary_programs_work(ws):
    d, _ = ws
    r = cli("run", "--", "sh", "-c", "echo hello | tr a-z A-Z | cat > /dev/null && echo piped", cwd=d)
    assert r.returncode == 0 and "piped" in r.stdout
    code = """
import asyncio, multiprocessing
async def main():
    r, w = await asyncio.open_unix_connection(path=None) if False else (None, None)
    await asyncio.sleep(0.01)
    return 42
R["asyncio"] = asyncio.run(main())
def sq(x): return x * x
with multiprocessing.get_context("fork").Pool(2) as p:
    R["mp"] = p.map(sq, [1, 2, 3])
"""
    got = probe(code, policy(":workspace", cwd=d), cwd=d)
    assert got["asyncio"] == 42 and got["mp"] == [1, 4, 9]


def test_grandchildren_confined(ws):
    d, outside = ws
    r = cli("run", "--", "sh", "-c", f"sh -c 'sh -c \"touch {outside}/gc\"'", cwd=d)
    assert r.returncode != 0 and not os.path.exists(f"{outside}/gc")


def test_supervisor_killed_kills_tree(ws):
    d, _ = ws
    marker = "4242.4242"
    sup = subprocess.Popen([LSANDBOX, "run", "--", "sh", "-c", f"sleep {marker} & sleep {marker} & wait"],
                           cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sleepers() -> list[int]:
        """The two sandboxed ``sleep``s (the supervisor's and sh's command lines name the
        marker too, but are not ``sleep MARKER``)."""
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        if f.read().split(b"\0")[:2] == [b"sleep", marker.encode()]:
                            out.append(int(p))
                except OSError:
                    pass
        return out

    deadline = time.time() + 10 * TIME_FACTOR
    while len(sleepers()) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert len(sleepers()) >= 2, "the sandboxed tree did not start"
    sup.kill()
    sup.wait()
    deadline = time.time() + 5 * TIME_FACTOR
    while sleepers() and time.time() < deadline:
        time.sleep(0.05)
    assert sleepers() == []


def test_signals_forwarded():
    p = subprocess.Popen([LSANDBOX, "run", "--", PY, "-c",
                          "import signal,sys,time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
                          "print('ready', flush=True)\ntime.sleep(30)"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 7


def _core_as_nobody(d: str, outside: str) -> dict:
    from tests._sandbox import as_nobody_setup

    as_nobody_setup()
    return _fs_probe(d, outside, policy(":workspace", cwd=d))


def test_core_as_nobody(ws):
    d, outside = ws
    got = run_in_child(_core_as_nobody, d, outside, as_nobody=True, timeout=60).unwrap()
    assert got["write_inside"] == "ok"
    assert got["write_outside"] == "OSError"  # EROFS: the read-only mount view
    assert got["git_hook"] in ("OSError", "PermissionError")
    assert not os.path.exists(os.path.join(d, ".git/hooks/evil"))


def test_interactive_terminal_usable():
    """Under a real pty the command owns the terminal: it is a tty, reads input, gets its size,
    and Ctrl-C (sent by the terminal to the foreground group) reaches it."""
    import pty
    import select as sel

    pid, fd = pty.fork()
    if pid == 0:
        # What a terminal's foreground job starts with, wherever this test runs (under nohup, or
        # in the background of a shell without job control, SIGINT and SIGHUP come ignored,
        # the sandbox keeps them ignored, and sh cannot trap a signal ignored on entry).
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.execv(LSANDBOX, [LSANDBOX, "run", "--", "sh", "-c",
                            "tty; stty size; read line; echo got:$line; trap 'echo INT; exit 9' INT; "
                            "echo waiting; while :; do sleep 0.1; done"])
    out = b""

    def read_until(marker: bytes, timeout: float = 15) -> None:
        nonlocal out
        deadline = time.time() + timeout
        while marker not in out and time.time() < deadline:
            if sel.select([fd], [], [], 0.2)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break

    read_until(b"\n")
    os.write(fd, b"hello\n")
    read_until(b"waiting")
    os.write(fd, b"\x03")  # Ctrl-C through the line discipline
    read_until(b"INT")
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    # the host's pty is not in the sandbox's own devpts: bound over /dev/console to keep a name
    assert "/dev/console" in text and "got:hello" in text and "INT" in text, text
    assert os.waitstatus_to_exitcode(status) == 9


def test_signal_dispositions_are_the_commands_own():
    """Python ignores SIGPIPE and SIGXFSZ and ignored signals survive execve: without a reset
    the command would see EPIPE instead of dying quietly (`yes: standard output: Broken
    pipe`). The command gets what it would get run directly (subprocess restores the same
    two): nothing blocked, and only what the caller's own environment ignores."""
    script = "yes | head -1; grep -E '^Sig(Ign|Blk)' /proc/self/status"
    r = cli("run", "--", "sh", "-c", script)
    bare = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Broken pipe" not in r.stderr and "Broken pipe" not in bare.stderr
    assert r.stdout == bare.stdout and "SigBlk:\t0000000000000000" in r.stdout, (r.stdout, bare.stdout)
    assert int(r.stdout.split("SigIgn:\t")[1][:16], 16) & (1 << (signal.SIGPIPE - 1)) == 0


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "no-namespaces"])
def test_signals_the_caller_ignores_stay_ignored(namespaces, nobody):
    """``nohup lsandbox run -- job``: the job must stay immune to hangups, and a background
    job of a shell without job control ignores SIGINT and SIGQUIT, sandboxed or not. (Shown
    to fail without the check in ``SignalForwarder``: its handlers replaced the inherited
    SIG_IGN and the child reset them to the default, so SigIgn lacked all three.)"""
    def ignore() -> None:
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)

    e = dict(os.environ)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    if not namespaces:
        e["LSANDBOX_NO_NAMESPACES"] = "1"
    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    r = subprocess.run([*(setpriv_nobody() if nobody else []), LSANDBOX, "run", "--", "grep", "^SigIgn",
                        "/proc/self/status"], capture_output=True, cwd="/",
                       text=True, env=e, timeout=60 * TIME_FACTOR, preexec_fn=ignore)
    assert r.returncode == 0, r.stderr
    ignored = int(r.stdout.split("\t")[1], 16)
    want = sum(1 << (sig - 1) for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT))
    assert ignored & want == want, r.stdout


def test_only_std_fds_unless_passed(tmp_path):
    """An inherited descriptor is a capability the policy does not see, so the command gets
    0-2 only, plus what the caller names (API ``pass_fds``, CLI ``--pass-fd``)."""
    r, w = os.pipe()
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_w, True)  # inheritable, yet not asked for: must not arrive
    try:
        code = f"import os; os.write({w}, b'through\\n'); print(*os.listdir('/proc/self/fd'))"
        res = lsandbox.run([PY, "-c", code], policy=policy(":read-only"), capture_output=True,
                           text=True, pass_fds=[w])
        assert res.returncode == 0, res.stderr
        fds = {int(x) for x in res.stdout.split()}
        assert w in fds and leak_w not in fds and fds <= {0, 1, 2, 3, w}
        os.close(w)
        assert os.read(r, 100) == b"through\n"
    finally:
        for fd in (r, leak_r, leak_w):
            os.close(fd)
    with pytest.raises(lsandbox.SandboxError, match="not open"):
        lsandbox.run(["true"], policy=policy(":read-only"), pass_fds=[leak_w])
    out = tmp_path / "fd7"
    p = subprocess.run(f"{LSANDBOX} run -p :read-only --pass-fd 7 -- sh -c 'echo cli >&7' 7>{out}",
                       shell=True, capture_output=True, text=True)
    assert p.returncode == 0 and out.read_text() == "cli\n", p.stderr
    bad = cli("run", "--pass-fd", "2", "--", "true")
    assert bad.returncode == 125 and "above 2" in bad.stderr
