"""Helpers for the hardening tests: run a Python probe under the real `lsandbox run` CLI as
root or as nobody (``setpriv``), with or without namespaces, and read back its JSON."""

from __future__ import annotations

import json
import os
import subprocess

from tests._sandbox import LSANDBOX, PY

#: (name, as nobody, environment): every mode the issue names
MODES = [
    ("root", False, {}),
    ("root-no-namespaces", False, {"LSANDBOX_NO_NAMESPACES": "1"}),
    ("nobody", True, {}),
    ("nobody-no-namespaces", True, {"LSANDBOX_NO_NAMESPACES": "1"}),
]
MODE_IDS = [m[0] for m in MODES]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

PRELUDE = r"""
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
R = {}
def t(name, f):
    try:
        f()
        R[name] = "ok"
    except OSError as e:
        R[name] = errno.errorcode.get(e.errno, str(e.errno))
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a & 0xFFFFFFFFFFFFFFFF) for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
"""


def lsandbox(args: list[str], *, nobody: bool, env: dict[str, str], cwd: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    e.update(env)
    return subprocess.run([*(NOBODY if nobody else []), LSANDBOX, *args], capture_output=True, text=True,
                          env=e, cwd=cwd or "/", timeout=timeout, stdin=subprocess.DEVNULL)


def probe(code: str, argv: list[str], *, nobody: bool, env: dict[str, str], flags: tuple[str, ...] = (),
          sandboxed: bool = True) -> dict:
    """Run ``PRELUDE + code`` (which fills ``R``) in the sandbox (or, ``sandboxed=False``, as the
    same user outside it: the attack is real) and return ``R``."""
    script = PRELUDE + code + "\nprint('@@' + json.dumps(R))\n"
    if sandboxed:
        r = lsandbox(["run", *flags, "--", PY, "-c", script, *argv], nobody=nobody, env=env)
    else:
        e = dict(os.environ, **env)
        r = subprocess.run([*(NOBODY if nobody else []), PY, "-c", script, *argv], capture_output=True,
                           text=True, env=e, timeout=60, stdin=subprocess.DEVNULL, cwd="/")
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise AssertionError(f"probe failed: rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr!r}")


_EXCHANGER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, stop = (x.encode() for x in sys.argv[1:4])
n = 0
while not os.path.exists(stop):
    libc.syscall(316, -100, a, -100, b, 2)  # renameat2(RENAME_EXCHANGE), x86_64
    n += 1
print(n)
"""


class Exchanger:
    """A racer outside the sandbox that exchanges the names ``a`` and ``b`` as fast as it can
    until ``stop()``, which returns how many exchanges it made. (Outside: inside, its renames
    would be brokered and serialized with the calls under test.)"""

    def __init__(self, a: str, b: str) -> None:
        self._stop = f"{a}.stop-{os.getpid()}"
        self._proc = subprocess.Popen([PY, "-c", _EXCHANGER, a, b, self._stop], stdout=subprocess.PIPE, text=True)

    def stop(self) -> int:
        with open(self._stop, "w"):
            pass
        try:
            return int(self._proc.communicate(timeout=30)[0])
        finally:
            self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if os.path.exists(self._stop):
            os.unlink(self._stop)
