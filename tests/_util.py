"""Test helpers shared by every test area: run a function in a forked child and observe it
from outside (kernel tests never install a filter or ruleset in the pytest process), and
drop privileges to ``nobody`` in such a child."""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NOBODY_UID = 65534
NOGROUP_GID = 65534
# Deadlines of forked children are multiplied by this: ``make test-kernels`` sets it in its
# qemu guests, where TCG emulation runs the same work several times slower.
TIME_FACTOR = float(os.environ.get("LSANDBOX_TEST_TIME_FACTOR") or 1)


@dataclass
class ChildResult:
    """What a forked child did: ``value`` returned, or ``error`` (repr + traceback) raised,
    or death by ``signal``; ``exitcode`` is its exit status when it exited."""

    value: Any = None
    error: str | None = None
    exitcode: int | None = None
    signal: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.signal is None and self.exitcode == 0

    def unwrap(self) -> Any:
        assert self.ok, f"child failed: {self}"
        return self.value


def drop_to_nobody() -> None:
    """Become uid/gid 65534 with no supplementary groups (call in a child only)."""
    os.setgroups([])
    os.setgid(NOGROUP_GID)
    os.setuid(NOBODY_UID)
    # setuid() cleared "dumpable", which makes /proc/self root-owned; a real unprivileged
    # user's process is dumpable, so restore that.
    import prctl

    prctl.set_dumpable(True)


def skip_dropping_unless_root(nobody: bool) -> None:
    """A test's nobody variant drops from root: skipped in an unprivileged run (``make
    test-kernels``'s user pass, where the whole run is the unprivileged variant)."""
    if nobody and os.geteuid() != 0:
        import pytest

        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")


def setpriv_nobody() -> list[str]:
    """Command prefix that runs a command as nobody ([] when this run is unprivileged already)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOGROUP_GID}", "--clear-groups"]


def run_in_child(
    fn: Callable[..., Any], *args: Any, timeout: float = 30.0, as_nobody: bool = False
) -> ChildResult:
    """Fork, run ``fn(*args)`` in the child, and return what happened.

    The return value must be picklable. A child that outlives ``timeout`` is SIGKILLed and
    the test fails with a clear message rather than hanging the suite.
    """
    if as_nobody and os.geteuid() != 0:
        # ``make test-kernels`` runs the suites as uid 65534 too: there, the tests' own
        # unprivileged variants are what the whole run is, and their root part cannot run.
        import pytest

        pytest.skip("drops from root to nobody: needs root (this run is unprivileged)")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        code = 0
        try:
            if as_nobody:
                drop_to_nobody()
            payload: tuple[str, Any] = ("value", fn(*args))
        except BaseException as e:  # noqa: BLE001 - report everything to the parent
            payload = ("error", f"{e!r}\n{traceback.format_exc()}")
            code = 1
        try:
            data = pickle.dumps(payload)
        except Exception as e:  # noqa: BLE001
            data = pickle.dumps(("error", f"unpicklable result: {e!r}"))
            code = 1
        try:
            with os.fdopen(w, "wb") as f:
                f.write(data)
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    timeout *= TIME_FACTOR
    deadline = time.monotonic() + timeout
    with os.fdopen(r, "rb") as f:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise TimeoutError(f"child {pid} still running after {timeout}s")
            ready, _, _ = select.select([f], [], [], left)
            if not ready:
                continue
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    res = ChildResult()
    if os.WIFSIGNALED(status):
        res.signal = os.WTERMSIG(status)
    else:
        res.exitcode = os.WEXITSTATUS(status)
    if chunks:
        kind, obj = pickle.loads(b"".join(chunks))
        if kind == "value":
            res.value = obj
        else:
            res.error = obj
    return res
