"""Helpers for end-to-end sandbox tests: real `lsandbox` runs, real servers outside."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading

import lsandbox

if sys.platform == "linux":  # imported before tests fork and drop to nobody
    import lsandbox.linux._broker  # noqa: F401
    import lsandbox.linux._child  # noqa: F401
    import lsandbox.linux._launcher  # noqa: F401
    from lsandbox.linux._features import features

LSANDBOX = os.path.join(os.path.dirname(sys.executable), "lsandbox")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def world_dir(prefix: str = "lsb-", base: str = "/var/tmp") -> str:
    """A temp dir that nobody can use too; under /var/tmp by default, which (unlike /tmp)
    no built-in profile makes writable."""
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o777)
    return d


def policy(profile: str = ":workspace", cwd: str = "/tmp", **kw: object) -> lsandbox.Policy:
    return lsandbox.load_policy(None, profile, cwd=cwd, search=False, requirements=None, **kw)  # type: ignore[arg-type]


def probe(code: str, pol: lsandbox.Policy, cwd: str | None = None, timeout: float = 60) -> dict:
    """Run Python ``code`` in the sandbox; it assigns results into ``R``; return (R, result)."""
    script = "import json, os, socket, sys\nR = {}\n" + textwrap.dedent(code) + "\nprint('@@' + json.dumps(R))\n"
    res = lsandbox.run([PY, "-c", script], policy=pol, capture_output=True, text=True, cwd=cwd,
                       timeout=timeout)
    for line in res.stdout.splitlines():
        if line.startswith("@@"):
            out = json.loads(line[2:])
            out["_denials"] = res.denials
            return out
    raise AssertionError(f"probe failed: rc={res.returncode} err={res.error} stderr={res.stderr}")


def errname(fn_code: str) -> str:
    """Python snippet evaluating to 'ok' or the errno name of an OSError."""
    return f"""(lambda: (lambda f: f())(lambda: ({fn_code}, 'ok')[1]))()"""


class UnixServer:
    """An AF_UNIX stream server outside the sandbox that counts accepted connections."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.accepts = 0
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(512)
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            try:
                c.sendall(b"hi")
            except OSError:
                pass
            c.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def cli(*args: str, cwd: str | None = None, timeout: float = 60, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    if env:
        e.update(env)
    return subprocess.run([LSANDBOX, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          input=input, env=e)


def as_nobody_setup() -> None:
    """In a forked child about to drop to nobody: recompute features as that user."""
    features.cache_clear()


def run_script(source: str, nobody: bool, tmp: str, timeout: float = 120,
               new_session: bool = False) -> subprocess.CompletedProcess[str]:
    """Python ``source`` as a fresh interpreter (its own launch count, launcher and threads),
    in ``tmp`` (its cwd, HOME and TMPDIR), as nobody if asked (skipped unless root)."""
    import pytest

    if nobody and os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    from tests._util import setpriv_nobody

    script = os.path.join(tmp, "s.py")
    with open(script, "w") as f:
        f.write(source)
    os.chmod(script, 0o644)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LSANDBOX_REQUIREMENTS": "", "TMPDIR": tmp}
    if "PYTHONPATH" in os.environ:  # a checkout tested without installing it
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([*(setpriv_nobody() if nobody else []), sys.executable, script], capture_output=True,
                          text=True, cwd=tmp, env=env, timeout=timeout, start_new_session=new_session)


def rmtree(d: str) -> None:
    shutil.rmtree(d, ignore_errors=True)
