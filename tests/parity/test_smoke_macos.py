"""``lsandbox run`` on macOS, end to end (macOS CI job only): the programs the base policy
is for, under ``:workspace`` in a workspace no built-in profile writes otherwise
(``/private/var/tmp``). A test whose tool is absent on the runner is skipped, never passed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import macos
from lsandbox.policy import (
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
)
from macos._runner import context, sandbox_exec_argv
from tests._sandbox import LSANDBOX, rmtree, world_dir

pytestmark = [pytest.mark.macos, pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS sandbox-exec")]


@pytest.fixture
def ws():
    base = os.path.realpath(world_dir("lsb-smoke-"))
    os.makedirs(os.path.join(base, "ws"))
    os.makedirs(os.path.join(base, "outside"))
    yield os.path.join(base, "ws")
    rmtree(base)


def lsb(*args: str, cwd: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run([LSANDBOX, "run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kw)  # type: ignore[call-overload]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed on this runner")
    return path


@pytest.mark.parametrize("network", [False, True])
def test_every_form_compiles(ws, network):
    """Every group and every rule form the writer has, accepted by sandbox-exec (an unknown
    operation or filter name would make every run fail)."""
    fs = FilesystemPolicy((FsRule("/", FsAccess.READ), FsRule(ws, FsAccess.WRITE),
                           FsRule(ws + "/.git", FsAccess.READ), FsRule(ws + "/secret", FsAccess.DENY)))
    net = NetworkPolicy(network, (UnixSocketRule("/private/tmp/.X11-unix", SocketAccess.ALLOW),
                                  UnixSocketRule("/private/tmp/.X11-unix/X9", SocketAccess.NONE)), network)
    ctx = context(dict(os.environ), "lsandbox-0123456789abcdef")
    ctx = macos.Context(own_ttys=("/dev/ttys000",), user_cache_dir=ctx.user_cache_dir,
                        user_temp_dir=ctx.user_temp_dir, tag=ctx.tag)
    profile = macos.render_sbpl(Policy(filesystem=fs, network=net, name='p"\n(allow default)'),
                                socket_dir=ws + "/sock", context=ctx)
    r = subprocess.run(sandbox_exec_argv(profile, ["/usr/bin/true"]), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stderr, profile)


def test_sh_writes_the_workspace(ws):
    r = lsb("--", "sh", "-c", "echo hello > out.txt && cat out.txt && ls / >/dev/null", cwd=ws)
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr


def test_writes_outside_are_denied(ws):
    r = lsb("--", "sh", "-c", "echo x > ../outside/f", cwd=ws)
    assert r.returncode != 0 and not os.path.exists(os.path.join(ws, "..", "outside", "f")), r.stderr


def test_interactive_shell_under_script(ws):
    """``script`` makes the pty outside the sandbox: the shell's terminal is the caller's own."""
    need("script")
    # the pty echoes the input: only computed output ($((...))) proves the shell ran it
    feed = "sleep 2; printf 'echo tty-$((6*7)); tty; stty -a >/dev/null && echo stty-$((40+3)); exit\\n'; sleep 5"
    r = subprocess.run(["sh", "-c", f"({feed}) | script -q /dev/null {LSANDBOX} run -- sh -i"],
                       cwd=ws, capture_output=True, text=True, timeout=120)
    assert "tty-42" in r.stdout and "stty-43" in r.stdout and "/dev/ttys" in r.stdout, (r.stdout, r.stderr)


def test_pty_opened_inside_the_sandbox(ws):
    """``script`` inside the sandbox calls openpty(): pseudo-tty, /dev/ptmx, the pty extension."""
    need("script")
    r = lsb("--", "script", "-q", "/dev/null", "sh", "-c", "tty && stty -a >/dev/null && echo inner-ok",
            cwd=ws, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "inner-ok" in r.stdout and "/dev/ttys" in r.stdout, (r.stdout, r.stderr)


def test_python_multiprocessing(ws):
    with open(os.path.join(ws, "mp.py"), "w") as f:
        f.write("import multiprocessing as mp\n"
                "if __name__ == '__main__':\n"
                "    lock = mp.Lock()\n"  # a POSIX semaphore (SemLock)
                "    with lock, mp.Pool(2) as pool:\n"
                "        print(sum(pool.map(abs, [-1, -2, -3])))\n")
    r = lsb("--", sys.executable, "mp.py", cwd=ws)
    assert (r.returncode, r.stdout.strip()) == (0, "6"), r.stderr


def test_node_sees_the_cpus(ws):
    node = need("node")
    r = lsb("--", node, "-e", "const n = require('os').cpus().length; console.log(n); process.exit(n > 0 ? 0 : 3)", cwd=ws)
    assert r.returncode == 0 and int(r.stdout) > 0, (r.stdout, r.stderr)


def test_git_status(ws):
    git = need("git")
    subprocess.run([git, "init", "-q"], cwd=ws, check=True)
    with open(os.path.join(ws, "f.txt"), "w") as f:
        f.write("x\n")
    r = lsb("--", git, "status", "--porcelain", cwd=ws)
    assert r.returncode == 0 and "?? f.txt" in r.stdout, (r.stdout, r.stderr)
    r = lsb("--", "sh", "-c", "echo evil > .git/hooks/pre-commit", cwd=ws)
    assert r.returncode != 0 and not os.path.exists(os.path.join(ws, ".git", "hooks", "pre-commit"))


def test_curl_https_with_network(ws):
    curl = need("curl")
    args = ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "https://github.com"]
    r = lsb("--network", "--", curl, *args, cwd=ws)
    assert r.returncode == 0 and r.stdout.startswith(("2", "3")), (r.stdout, r.stderr)  # DNS + TLS
    r = lsb("--", curl, *args, cwd=ws)
    assert r.returncode != 0, (r.stdout, r.stderr)  # no network, no name lookup


def test_cc_compiles_into_the_workspace(ws):
    cc = need("cc")
    subprocess.run([cc, "--version"], capture_output=True, check=False)  # xcrun's lookup cache, made outside
    with open(os.path.join(ws, "hello.c"), "w") as f:
        f.write('#include <stdio.h>\nint main(void) { puts("hello from cc"); return 0; }\n')
    r = lsb("--", cc, "-o", "hello", "hello.c", cwd=ws)
    assert r.returncode == 0, r.stderr
    r = lsb("--", "./hello", cwd=ws)
    assert (r.returncode, r.stdout) == (0, "hello from cc\n"), r.stderr


def test_log_denials_names_the_denied_path(ws):
    target = os.path.join(os.path.dirname(ws), "outside", "denied.txt")
    events = os.path.join(ws, "events.jsonl")
    r = lsb("--log-denials", "--events", events, "--", "sh", "-c", f"echo x > {target}", cwd=ws)
    assert r.returncode != 0
    summary = r.stderr[r.stderr.index("=== Sandbox denials ==="):]
    assert target in summary and "file-write" in summary, r.stderr
    with open(events) as f:
        recorded = [json.loads(line) for line in f]
    assert any(e["path"] == target for e in recorded), recorded


def test_output_redirected_to_a_file_outside(ws):
    """Seatbelt checks writes on inherited descriptors too: the caller's redirect target is
    allowed by name."""
    log = os.path.join(os.path.dirname(ws), "outside", "build.log")
    with open(log, "w") as f:
        r = subprocess.run([LSANDBOX, "run", "--", "sh", "-c", "echo built"], cwd=ws, stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    with open(log) as f:
        assert (r.returncode, f.read()) == (0, "built\n"), r.stderr


def test_socket_dir_is_removed(ws):
    r = lsb("--", "sh", "-c", 'echo "$LSANDBOX_SOCKET_DIR"; touch "$LSANDBOX_SOCKET_DIR/x"', cwd=ws)
    d = r.stdout.strip()
    assert r.returncode == 0 and d.startswith("/"), r.stderr
    assert not os.path.exists(d)


def test_pass_fd(ws):
    r = subprocess.run(["sh", "-c", f'{LSANDBOX} run --pass-fd 3 -- sh -c "echo via-fd3 >&3" 3>&1'],
                       cwd=ws, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "via-fd3" in r.stdout, r.stderr


def test_nested_sandbox_is_a_clear_error(ws):
    r = lsb("--", LSANDBOX, "run", "--", "true", cwd=ws)
    assert r.returncode == 125, (r.stdout, r.stderr)
    assert re.search(r"lsandbox: error: already running inside a macOS sandbox", r.stderr), r.stderr


def test_command_not_found(ws):
    r = lsb("--", "lsandbox-no-such-command", cwd=ws)
    assert r.returncode == 127 and "lsandbox: error:" in r.stderr
