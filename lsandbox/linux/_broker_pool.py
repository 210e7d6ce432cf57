"""The broker's threads: a leader/follower pool with no fixed size.

One thread waits for and receives notifications and keeps serving them inline while nothing
can block (the common case pays no thread switch). A call that would block (a full backlog,
a full send buffer, a TCP connect in progress) hands leadership to a follower first and
waits alone; if no other thread is free a new one is started, so blocked calls (at most one
per blocked thread of the command) never hold the threads that serve the others. Idle
threads beyond ``size`` end.
"""

from __future__ import annotations

import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Pool:
    """``run`` is each thread's body: it calls :meth:`lead_loop` with its serving step."""

    def __init__(self, size: int, run: Callable[[], None]) -> None:
        self.size = max(2, size)  # threads kept when idle; more start while calls wait
        self._run = run
        self._lead = threading.Lock()
        self.stop = False
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards _threads, _live, _waiting
        self._live = 0  # threads running
        self._waiting = 0  # of which waiting in a call that would block (not serving)
        self.peak_threads = 0
        self.local = threading.local()

    def start(self) -> None:
        # The first thread starts the others: Thread.start() waits for the new thread to run,
        # and the launch should not pay that for each.
        self._spawn(0)

    def _spawn(self, i: int) -> None:
        t = threading.Thread(target=self._main, args=(i,), name=f"lsandbox-broker-{i}", daemon=True)
        with self._lock:
            self._threads.append(t)
            self._live += 1
            self.peak_threads = max(self.peak_threads, self._live)
        try:
            t.start()
        except RuntimeError:  # no more threads: the others keep serving
            with self._lock:
                self._live -= 1

    def _main(self, i: int) -> None:
        if i == 0:
            for j in range(1, self.size):
                if not self.stop:
                    self._spawn(j)
        try:
            self._run()
        finally:
            if not getattr(self.local, "counted_out", False):
                with self._lock:
                    self._live -= 1

    def close(self) -> None:
        """Stop every thread (the wake pipe ends their waits) and join them."""
        self.stop = True
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass
        joined = 0  # in start order: a thread that ends has listed every thread it started
        while joined < len(self._threads):
            with self._lock:
                t = self._threads[joined]
            if t.ident is not None:
                t.join(timeout=5)
            joined += 1
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._threads.clear()

    def lead_loop(self, step: Callable[[], None]) -> None:
        """Whoever holds the lead runs ``step`` (wait for, receive and serve one
        notification) until it hands the lead over before a call that may block."""
        local = self.local
        while not self.stop and not self._surplus():
            if not self._lead.acquire(timeout=0.2):
                continue
            local.leading = True
            try:
                while not self.stop and local.leading:
                    step()
            finally:
                if local.leading:
                    local.leading = False
                    self._lead.release()

    def _surplus(self) -> bool:
        """An idle thread beyond the pool's size (started while calls waited) ends."""
        with self._lock:
            if self._live - self._waiting > self.size:
                self._live -= 1
                self.local.counted_out = True
                return True
        return False

    def _handoff(self) -> None:
        if getattr(self.local, "leading", False):
            self.local.leading = False
            self._lead.release()

    def wait_begin(self) -> None:
        """This thread is about to wait for a blocked call: hand the lead over, and start a
        thread if no other is free to take it (the pool never runs dry)."""
        self._handoff()
        with self._lock:
            self._waiting += 1
            starve = self._live - self._waiting < 1
        if starve and not self.stop:
            self._spawn(len(self._threads))

    def wait_end(self) -> None:
        with self._lock:
            self._waiting -= 1
