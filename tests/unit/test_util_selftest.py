import os
import signal

from tests._util import run_in_child


def test_value_error_and_signal_are_reported():
    assert run_in_child(lambda: 41 + 1).unwrap() == 42
    res = run_in_child(lambda: 1 / 0)
    assert res.error and "ZeroDivisionError" in res.error and res.exitcode == 1
    res = run_in_child(lambda: os.kill(os.getpid(), signal.SIGSYS))
    assert res.signal == signal.SIGSYS


def test_as_nobody():
    assert run_in_child(os.getuid, as_nobody=True).unwrap() == 65534
