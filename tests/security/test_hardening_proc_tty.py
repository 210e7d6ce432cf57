"""A fresh procfs and a private devpts (lsandbox.linux._mount_view).

The sandbox sees its own processes only, and reaches its own terminal and the ptys it creates,
never another session's /dev/pts/N. Interactive use under a pty keeps working (job control,
resize, /dev/tty prompts, ptys inside).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import time

import pytest

from tests._sandbox import LSANDBOX, PY, rmtree, world_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security]

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
ENVS = {"best": {}, "abi1": {"LANDLOCK_MAX_ABI": "1"}, "abi2": {"LANDLOCK_MAX_ABI": "2"}}


def _run(user: str, env: dict[str, str], *cmd: str, pre: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    e = {**os.environ, **env}
    e.pop("LSANDBOX_REQUIREMENTS", None)
    return subprocess.run([*pre, *(NOBODY if user == "nobody" else []), LSANDBOX, "run", "--", *cmd],
                          capture_output=True, text=True, cwd="/tmp", env=e, timeout=60)


PROC = r"""
import os, sys
host = sys.argv[1]
print("pid", os.getpid())
print("self", os.readlink("/proc/self"))
print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
try:
    print("host", open("/proc/%s/cmdline" % host, "rb").read())
except OSError as e:
    print("host", e.__class__.__name__)
print("init", open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode())
"""


@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("mode", list(ENVS))
def test_proc_shows_the_sandbox_only(user, mode):
    r = _run(user, ENVS[mode], PY, "-c", PROC, str(os.getpid()))
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert out["pid"] == out["self"] == "2"  # `echo $$` and /proc/$$ agree
    assert out["pids"] == "[1, 2]", out  # init and the command: no host process
    assert out["host"] == "FileNotFoundError", out  # the host's /proc/PID/cmdline: unreachable
    assert "python" in out["init"], out  # PID 1 is the sandbox's init, not the host's


def test_ps_lists_the_sandbox_only():
    if not shutil.which("ps"):
        pytest.skip("no ps here")
    r = _run("root", {}, "ps", "-e", "-o", "pid=")
    assert r.returncode == 0, r.stderr
    assert sorted(int(x) for x in r.stdout.split()) == [1, 2]  # init and ps


def test_proc_is_read_only_and_nosuid():
    r = _run("root", {}, "sh", "-c", "grep ' /proc ' /proc/self/mountinfo | tail -1")
    assert r.returncode == 0, r.stderr
    assert " /proc ro,nosuid,nodev,noexec" in r.stdout and " - proc " in r.stdout, r.stdout


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_deny_inside_proc_is_masked_in_the_fresh_procfs(user):
    """A deny path inside /proc is masked in the sandbox's own procfs (masking the host's,
    under it, would leave the fresh one's entry listable)."""
    d = world_dir()
    cfg = os.path.join(d, "c.toml")
    try:
        with open(cfg, "w") as f:
            f.write('[permissions.p]\nextends = ":workspace"\nfilesystem = { "/proc/sys" = "deny" }\n')
        os.chmod(cfg, 0o644)
        e = {**os.environ}
        e.pop("LSANDBOX_REQUIREMENTS", None)
        r = subprocess.run([*(NOBODY if user == "nobody" else []), LSANDBOX, "run", "-c", cfg, "-p", "p", "--",
                            "sh", "-c", "stat -c %A /proc/sys; ls /proc/sys | wc -l"],
                           capture_output=True, text=True, cwd="/tmp", env=e, timeout=60)
    finally:
        rmtree(d)
    assert r.stdout.split() == ["d---------", "0"], (r.stdout, r.stderr)


def test_masked_host_proc_is_named_not_hidden():
    """In a user namespace the kernel refuses a new procfs when the host's /proc has masked
    parts (container runtimes bind /dev/null over some files; mount_too_revealing): the run
    goes on with the enclosing /proc and says so (here emulated: root masks /proc/timer_list
    in a mount namespace of its own, then runs the sandbox as nobody)."""
    if not os.path.exists("/proc/timer_list"):
        pytest.skip("no /proc/timer_list to mask here")
    inner = " ".join([*NOBODY, LSANDBOX, "run", "--log-denials", "--", "true"])
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f"mount --bind /dev/null /proc/timer_list && exec {inner}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "fresh procfs refused by the kernel" in r.stderr, r.stderr


@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("mode", list(ENVS))
def test_another_sessions_pty_is_unreachable(user, mode):
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        os.chmod(name, 0o666)  # even a pty anyone may open
        os.write(master, b"typed by someone else\n")
        code = (f"import os\ntry:\n    fd = os.open({name!r}, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)\n"
                "    print('opened', os.read(fd, 100))\nexcept OSError as e:\n    print(type(e).__name__)\n"
                "print(sorted(os.listdir('/dev/pts')))")
        r = _run(user, ENVS[mode], PY, "-c", code)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["FileNotFoundError", "['ptmx']"], r.stdout
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_own_ptys_work(user):
    code = ("import os, pty\nm, s = pty.openpty()\nname = os.ttyname(s)\nos.write(m, b'ping\\n')\n"
            "print(name, os.read(s, 10))\nfd = os.open(name, os.O_RDWR | os.O_NOCTTY)\nprint('reopen ok')")
    r = _run(user, {}, PY, "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["/dev/pts/0 b'ping\\n'", "reopen ok"], r.stdout


def _interact(argv: list[str], steps: list[tuple[bytes | None, bytes]], timeout: float = 20) -> bytes:
    """Run ``argv`` under a new pty; for each (input, marker): write input (or resize the
    terminal to 33x111 when input is None), read until marker appears."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["PS1"] = "$ "
        os.environ.pop("LSANDBOX_REQUIREMENTS", None)
        os.execv(argv[0], argv)
    out = b""
    try:
        for data, marker in steps:
            if data is None:
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
            else:
                os.write(fd, data)
            deadline = time.time() + timeout
            while marker not in out and time.time() < deadline:
                if select.select([fd], [], [], 0.2)[0]:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            assert marker in out, (marker, out.decode(errors="replace"))
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return out


def test_interactive_bash_under_a_pty():
    if not shutil.which("bash"):
        pytest.skip("no bash")
    steps: list[tuple[bytes | None, bytes]] = [
        (b"", b"$ "),
        (b"tty; echo T-DONE\n", b"T-DONE"),
        (b"sleep 30 &\n", b"$ "),
        (b"jobs; echo J-DONE\n", b"J-DONE"),
        (b"kill %1; wait; echo K-DONE\n", b"K-DONE"),
        (None, b""),
        (b"trap 'echo WINCH' WINCH; stty size; echo S-DONE\n", b"S-DONE"),
        (b"echo via-dev-tty > /dev/tty\n", b"via-dev-tty\r\n"),
        (PY.encode() + b" -c \"import getpass; print('pw=' + getpass.getpass())\"\n", b"Password:"),
        (b"hunter2\n", b"pw=hunter2"),
        (b"script -qc 'tty; echo in-script' /dev/null\n", b"in-script\r\n"),
        (b"exit 7\n", b"exit"),
    ]
    if not shutil.which("script"):
        steps = [s for s in steps if s[0] is None or b"script" not in s[0]]
    out = _interact([LSANDBOX, "run", "--", "bash", "--norc", "-i"], steps).decode(errors="replace")
    assert "/dev/console" in out  # the inherited host pty keeps a name (tty, ttyname)
    assert "Running" in out and "sleep 30" in out  # job control
    assert "33 111" in out  # the resize reached the terminal the command sees
    assert "pw=hunter2" in out and "hunter2\r\n" not in out.split("Password:")[1].split("pw=")[0]
    if shutil.which("script"):
        assert "/dev/pts/0" in out  # a pty of the sandbox's own devpts
