"""The CLI forwards signals from before the fork: one that arrives while the sandbox is being
made is kept and delivered once it exists, instead of killing lsandbox by its default action
(the sandbox would then die of PDEATHSIG, with the wrong status, and leave its socket
directory behind). Run in a forked child: the forwarder installs handlers in its process."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests._sandbox import PY
from tests._util import TIME_FACTOR, run_in_child

pytestmark = pytest.mark.kernel

# os.write in the handler: the signal may arrive while print('ready') is still returning
# (seen under emulation), and print from the handler then fails as a reentrant call.
WAITER = ("import os, signal, sys, time\n"
          "signal.signal(signal.SIGTERM, lambda *a: (os.write(1, b'got TERM\\n'), sys.exit(7)))\n"
          "print('ready', flush=True)\ntime.sleep(30)")


class _Launch:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def _early_signal_is_delivered() -> tuple[int, str]:
    from lsandbox.linux._launcher import SignalForwarder

    fwd = SignalForwarder()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # "during the launch": no sandbox yet
        time.sleep(0.05)  # the handler runs (and must not end this process)
        assert fwd.pending == [signal.SIGTERM], fwd.pending
        p = subprocess.Popen([PY, "-c", WAITER], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        fwd.attach(_Launch(p.pid))  # type: ignore[arg-type]
        out, _ = p.communicate(timeout=20 * TIME_FACTOR)
        return p.returncode, out
    finally:
        fwd.restore()


def test_a_signal_during_the_launch_reaches_the_sandbox():
    code, out = run_in_child(_early_signal_is_delivered, timeout=40).unwrap()  # scaled by run_in_child
    assert code == 7 and "got TERM" in out, (code, out)
