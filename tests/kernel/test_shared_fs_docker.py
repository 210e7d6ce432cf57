"""The broker without an ``fs_struct`` of its own (``lsandbox.linux._shared_fs``): under
Docker's profile ``unshare(CLONE_FS)`` is refused, so a broker thread's cwd and umask are the
whole supervisor's. Path operations (the split repository root) and brokered binds (Docker's
profile with CAP_SYS_PTRACE, which allows ``pidfd_getfd``) must then leave an API caller's
cwd and umask alone, and still give what they create the modes the command's umask asks for.

Shown to fail without the fix: the caller's umask was seen as 0000 and 0077 (path
operations) and its cwd as the socket directory (binds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests._docker_profile import DOCKER_DEFAULT_CAPS, run_under_docker_profile
from tests._sandbox import world_dir
from tests._util import run_in_child, skip_dropping_unless_root
from tests.conftest import NO_LANDLOCK, REFUSAL
from tests.security._hardening import NOBODY

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(sys.platform != "linux", reason="Linux"),
              pytest.mark.skipif(NO_LANDLOCK, reason=f"{REFUSAL} (and no namespaces under Docker's profile)")]

#: the API caller: runs CODE (argv[2]) in a sandbox rooted at argv[1] while a forked process
#: (it does not wait for this one's GIL) records this process's umask and cwd
HOST = r"""
import os, signal, sys
import lsandbox
ws, code = sys.argv[1], sys.argv[2]
os.umask(0o022)
os.chdir("/")
host, (r, w) = os.getpid(), os.pipe()
watcher = os.fork()
if watcher == 0:
    os.close(r)
    seen = set()
    signal.signal(signal.SIGTERM, lambda *_: (os.write(w, " ".join(sorted(seen)).encode()), os._exit(0)))
    while True:
        with open(f"/proc/{host}/status") as f:
            seen.update("umask=" + ln.split()[1] for ln in f if ln.startswith("Umask:"))
        seen.add("cwd=" + os.readlink(f"/proc/{host}/cwd"))
os.close(w)
try:
    res = lsandbox.run(["python3", "-c", code], cwd=ws, capture_output=True, text=True)
finally:
    os.kill(watcher, signal.SIGTERM)
    os.waitpid(watcher, 0)
print(res.stdout, res.stderr)
print("HOST=" + os.read(r, 1000).decode().replace(" ", ","))
"""

CREATE = r"""
import os
out = {}
for mask in (0o000, 0o077, 0o022):
    os.umask(mask)
    for i in range(50):
        n = "f%o-%d" % (mask, i)
        os.close(os.open(n, os.O_CREAT | os.O_WRONLY, 0o666))
        os.mkdir("d" + n, 0o777)
        os.mkfifo("p" + n, 0o666)
    out["%o" % mask] = [oct(os.stat(p + "f%o-0" % mask).st_mode & 0o777) for p in ("", "d", "p")]
print("RESULT=" + repr(out).replace(" ", ""))
"""

BIND = r"""
import os, socket
d = os.environ["LSANDBOX_SOCKET_DIR"]
out = {}
for mask in (0o000, 0o077, 0o022):
    os.umask(mask)
    for i in range(30):
        s = socket.socket(socket.AF_UNIX)
        s.bind(f"{d}/s{mask:o}-{i}")
        s.close()
    out["%o" % mask] = oct(os.stat(f"{d}/s{mask:o}-0").st_mode & 0o777)
srv = socket.socket(socket.AF_UNIX)
srv.bind(f"{d}/srv")
srv.listen()
c = socket.socket(socket.AF_UNIX)
c.connect(f"{d}/srv")
out["connect"] = "ok"
print("RESULT=" + repr(out).replace(" ", ""))
"""


def _api_caller(ws: str, code: str, nobody: bool, caps: frozenset[str]) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "LSANDBOX_NO_NAMESPACES"}
    env["HOME"] = ws
    return run_under_docker_profile([*(NOBODY if nobody else []), sys.executable, "-c", HOST, ws, code],
                                    cwd=ws, env=env, caps=caps)


def _run(code: str, nobody: bool, caps: frozenset[str] = DOCKER_DEFAULT_CAPS) -> tuple[dict, str]:
    ws = world_dir("lsb-dk-shared-")
    subprocess.run(["git", "init", "-q", ws], check=True)  # .git: the workspace root is split
    subprocess.run(["chmod", "-R", "a+rwX", ws], check=True)
    try:
        rc, output = run_in_child(_api_caller, ws, code, nobody, caps, timeout=400).unwrap()
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    assert rc == 0, output
    assert "HOST=cwd=/,umask=0022\n" in output, output
    result = [ln for ln in output.split() if ln.startswith("RESULT=")]
    assert result, output
    return eval(result[0][len("RESULT="):]), output


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_path_operations_leave_the_callers_umask_alone(nobody):
    skip_dropping_unless_root(nobody)
    got, output = _run(CREATE, nobody)
    assert got == {"0": ["0o666", "0o777", "0o666"], "77": ["0o600", "0o700", "0o600"],
                   "22": ["0o644", "0o755", "0o644"]}, output


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_brokered_binds_leave_the_callers_cwd_and_umask_alone(nobody):
    skip_dropping_unless_root(nobody)
    got, output = _run(BIND, nobody, DOCKER_DEFAULT_CAPS | {"CAP_SYS_PTRACE"})
    assert got == {"0": "0o777", "77": "0o700", "22": "0o755", "connect": "ok"}, output
