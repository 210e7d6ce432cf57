"""``--events FILE`` cannot be turned against the user by an earlier sandbox.

FILE is often in the workspace. Red team (session 9): a command replaced ``events.jsonl``
with a symlink to ``~/.bashrc``; the next run with the same command line truncated the
user's shell startup file and wrote events into it, one with a socket path the command
chose (``/x/$(touch PWNED)``), which the user's next shell ran. A FIFO left there made the
next run hang before it started. Now a final symlink, a FIFO without a reader and a file
with other hard links are refused (125, one line) and the target is untouched; the
supervisor's own descriptors still work.

As root and as nobody. Shown to fail without the fix: the victim is truncated and holds the
events, and the FIFO case times out."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests._sandbox import rmtree, world_dir
from tests._util import skip_dropping_unless_root
from tests.conftest import NO_LANDLOCK
from tests.security._hardening import lsandbox

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(NO_LANDLOCK, reason="no Landlock on this kernel: lsandbox run refuses to start")]
AS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
PLANT = {"symlink": "ln -s {victim} events.jsonl", "fifo": "mkfifo events.jsonl",
         "hardlink": "echo keep > mine && ln mine events.jsonl"}


@AS
@pytest.mark.parametrize("kind", sorted(PLANT))
def test_a_planted_events_file_is_refused(nobody, kind):
    skip_dropping_unless_root(nobody)
    ws, home = world_dir("lsb-ev-ws-"), world_dir("lsb-ev-home-")
    victim = os.path.join(home, "bashrc")
    with open(victim, "w") as f:
        f.write("# the user's\n")
    os.chmod(victim, 0o666)
    env = {"HOME": home}
    try:
        r = lsandbox(["run", "--", "sh", "-c", PLANT[kind].format(victim=victim)], nobody=nobody, env=env, cwd=ws)
        assert r.returncode == 0, r.stderr
        r = lsandbox(["run", "--events", "events.jsonl", "--allow-unix-socket", "/x/$(touch PWNED)", "--",
                      "true"], nobody=nobody, env=env, cwd=ws, timeout=30)
        assert r.returncode == 125, (r.returncode, r.stderr)
        assert r.stderr.startswith("lsandbox: error: --events events.jsonl: ") and r.stderr.count("\n") == 1, r.stderr
        with open(victim) as f:
            assert f.read() == "# the user's\n"
        if kind == "hardlink":
            with open(os.path.join(ws, "mine")) as f:
                assert f.read() == "keep\n"
    finally:
        rmtree(ws)
        rmtree(home)


@AS
def test_events_still_reach_a_file_a_device_and_a_fifo_with_a_reader(nobody):
    skip_dropping_unless_root(nobody)
    ws = world_dir("lsb-ev-ok-")
    try:
        r = lsandbox(["run", "--events", "ev.jsonl", "--", "true"], nobody=nobody, env={}, cwd=ws)
        assert r.returncode == 0 and os.path.isfile(os.path.join(ws, "ev.jsonl")), r.stderr
        r = lsandbox(["run", "--events", "ev.jsonl", "--", "true"], nobody=nobody, env={}, cwd=ws)
        assert r.returncode == 0, r.stderr  # an existing regular file is replaced
        r = lsandbox(["run", "--events", "/dev/null", "--", "true"], nobody=nobody, env={}, cwd=ws)
        assert r.returncode == 0, r.stderr  # (a named device, followed: a sandbox makes no devices)
        fifo = os.path.join(ws, "ev.fifo")
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE, text=True)
        try:
            deadline = 0
            while deadline < 100 and not any(os.readlink(f"/proc/{reader.pid}/fd/{fd}") == fifo
                                             for fd in os.listdir(f"/proc/{reader.pid}/fd")):
                deadline += 1
                __import__("time").sleep(0.05)
            r = lsandbox(["run", "--events", fifo, "--", "true"], nobody=nobody, env={}, cwd=ws)
            assert r.returncode == 0, r.stderr
        finally:
            reader.wait(timeout=30)
    finally:
        rmtree(ws)


@AS
def test_a_reader_that_goes_away_costs_the_events_not_the_run(nobody):
    """Red team 3 (F5): a FIFO reader that stopped reading made the run end with 141 and no
    summary (EPIPE writing an event). The command's own status and the summary stay."""
    skip_dropping_unless_root(nobody)
    ws = world_dir("lsb-ev-pipe-")
    fifo = os.path.join(ws, "ev.fifo")
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    reader = subprocess.Popen(["head", "-c", "200", fifo], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if any(os.readlink(f"/proc/{reader.pid}/fd/{fd}") == fifo for fd in os.listdir(f"/proc/{reader.pid}/fd")):
                break
            __import__("time").sleep(0.05)
        noisy = ("import socket, time\nfor i in range(60):\n    try: socket.socket(socket.AF_UNIX).connect(f'/nope/{i}')\n"
                 "    except OSError: pass\n    time.sleep(0.01)\nraise SystemExit(3)")
        r = lsandbox(["run", "--events", fifo, "--log-denials", "--", "python3", "-c", noisy], nobody=nobody,
                     env={}, cwd=ws)
        assert r.returncode == 3, (r.returncode, r.stderr)
        assert "=== Sandbox denials ===" in r.stderr and "Traceback" not in r.stderr, r.stderr
    finally:
        reader.wait(timeout=30)
        rmtree(ws)
