"""The broker is started on the first notification (`_launcher.LazyBroker`, which imports it
in the background): a command that never connects starts no broker, one that does is served,
and a broker that cannot start leaves the brokered calls failing (closed listener), never
hanging or allowed."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kernel

CONNECT = ("import os, socket\n"
           "d = os.environ['LSANDBOX_SOCKET_DIR']\n"
           "s = socket.socket(socket.AF_UNIX); c = socket.socket(socket.AF_UNIX)\n"
           "try:\n    s.bind(d + '/srv'); s.listen(); c.connect(d + '/srv'); print('connected')\n"
           "except OSError as e:\n    print('refused', e.errno)\n")


def _run(code: str, tmp_path) -> list[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LSANDBOX_REQUIREMENTS": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\n")


def test_no_broker_started_without_a_notification(tmp_path):
    """One thread besides the caller's: the lazy broker's watcher (a ``_thread``, which
    ``threading.enumerate`` does not list); no broker thread, no broker module."""
    code = ("import os, sys, threading, lsandbox\n"
            "with lsandbox.Sandbox(['sleep', '0.5'], policy=lsandbox.load_policy(search=False)) as s:\n"
            "    import time; time.sleep(0.2)\n"
            "    names = sorted(t.name for t in threading.enumerate() if t.name.startswith('lsandbox-'))\n"
            "    tasks = len(os.listdir('/proc/self/task'))\n"
            "    rc = s.wait()\n"
            "print(rc, names, tasks, 'lsandbox.linux._broker' in sys.modules)\n")
    assert _run(code, tmp_path)[-2] == "0 [] 2 False"


def test_first_notification_starts_the_broker(tmp_path):
    code = ("import sys, lsandbox\n"
            f"r = lsandbox.run([sys.executable, '-c', {CONNECT!r}], capture_output=True, text=True,\n"
            "                  policy=lsandbox.load_policy(search=False))\n"
            "print(r.stdout.strip(), r.returncode, 'lsandbox.linux._broker' in sys.modules)\n")
    assert _run(code, tmp_path)[-2] == "connected 0 True"


def test_broker_that_cannot_start_fails_closed(tmp_path):
    code = ("import sys\n"
            "sys.modules['lsandbox.linux._broker'] = None  # its import now raises ImportError\n"
            "import lsandbox\n"
            f"with lsandbox.Sandbox([sys.executable, '-c', {CONNECT!r}], stdout=lsandbox._api.PIPE,\n"
            "                      policy=lsandbox.load_policy(search=False)) as sbx:\n"
            "    out = sbx.stdout.read().decode().strip()\n"
            "    rc = sbx.wait()\n"
            "notes = sbx.denial_notes\n"
            "print(out, rc, any('broker could not start' in n for n in notes))\n")
    assert _run(code, tmp_path)[-2] == f"refused {errno.ENOSYS} 0 True"
