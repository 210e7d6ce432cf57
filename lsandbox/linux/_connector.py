"""The restricted connector: brokered pathname AF_UNIX calls performed under the sandbox's
Landlock ``RESOLVE_UNIX`` rules.

Landlock (ABI >= 9) checks a pathname AF_UNIX ``connect``/``sendmsg`` against the domain of
the task that *performs* it. The broker performs every such call of the sandbox, so without
this module the kernel checks it against the supervisor's (empty) domain, and a path the
broker wrongly allowed would go through. Restricting the broker's own threads is no way out:
a Landlock domain on a thread takes away its ptrace-mode access to the sandbox
(``pidfd_getfd`` and ``/proc/<tid>/mem`` fail), which preparing every call needs.

So the work is split. A broker thread keeps everything that needs the target: reading its
memory, ``pidfd_getfd``, resolving and pinning the path as the target, the policy decision,
waiting, signals, timeouts. Only the final system call, on the descriptors it prepared (the
target's socket, the destination as ``/proc/self/fd/<pin>``), is handed to the connector
thread, which has restricted *itself* (``landlock_restrict_self`` applies to the calling
thread only; ``no_new_privs`` is set on that thread alone, which never executes anything)
with a ruleset handling ``RESOLVE_UNIX`` and carrying the sandbox's ``RESOLVE_UNIX`` grants.
The kernel then refuses (EACCES) what the sandbox's rules refuse, whatever the broker decided.

Every handed-over call is non-blocking (the broker sets ``O_NONBLOCK`` for a connect and
passes ``MSG_DONTWAIT`` to a send, and retries on EAGAIN itself), so the connector never
waits and one thread serves every broker thread; the broker thread waits for the answer
(its descriptors stay open until then, so their numbers cannot be reused under the call).

Identity: the connector performs each call with the identity the handing broker thread holds
(the command's uids, gids and groups, ``_identity``) and no effective capability, as the
broker thread would have: ``SO_PEERCRED``, ``SCM_CREDENTIALS`` and DAC see the command.
It never escalates (it touches nothing of the target's), so its effective set stays empty.

The ruleset is the plan's own ``RESOLVE_UNIX`` part (each rule's ``RESOLVE_UNIX`` bit), its
paths opened here, in the supervisor's mount namespace. The sandbox's mount view keeps the
host's inodes at the same paths except where it puts a fresh tmpfs (``/dev/shm``, masked
deny paths): a rule there grants the connector nothing, so it refuses more, never less.

Only pathname destinations are handed over; abstract names, unnamed and non-AF_UNIX
addresses, and sends without an address go on as before. Where the plan does not handle
``RESOLVE_UNIX`` (ABI < 9) no connector exists and the broker calls the kernel directly.
If the connector cannot restrict itself, every handed-over call fails with EACCES (and a
note says why): fail closed.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence

import landlock as ll

from . import _broker_sys as sysc
from ._identity import Identity, ThreadCreds
from ._sockaddr import AF_UNIX, family

_RESOLVE_UNIX = ll.AccessFs.RESOLVE_UNIX


def connector_rules(handled_fs: int,
                    landlock_rules: Sequence[tuple[str, int]]) -> list[tuple[str, ll.AccessFs]] | None:
    """The ``RESOLVE_UNIX`` part of a plan's Landlock rules (path, grant), or None when the
    plan does not handle ``RESOLVE_UNIX`` (then the broker needs no connector)."""
    if not handled_fs & _RESOLVE_UNIX:
        return None
    return [(path, _RESOLVE_UNIX) for path, access in landlock_rules if access & _RESOLVE_UNIX]


class PinnedRules:
    """The connector's rule paths (:func:`connector_rules`), opened ``O_PATH`` by the launcher
    before the sandbox runs. The connector starts with the broker, on the first brokered
    call, after the command has run: by then a path the sandbox can write (its socket
    directory, a workspace) may have been renamed or replaced by a symlink, and opening the
    rules by name would grant on whatever the command put there. ``rules`` holds each
    pinned descriptor (the connector is a thread of this process) with its rights. A path
    that cannot be opened gets no rule: the connector then refuses more, never less."""

    def __init__(self, rules: Sequence[tuple[str, int]]) -> None:
        self._fds: list[int] = []
        self.rules: list[tuple[str | int, ll.AccessFs]] = []
        for path, access in rules:
            try:  # O_NOFOLLOW as landlock's own add_path: a symlink there gets no rule
                fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            self._fds.append(fd)
            self.rules.append((fd, ll.AccessFs(access)))

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)


def _pathname(addr: bytes | None) -> bool:
    """Is ``addr`` a pathname AF_UNIX address (what Landlock's ``RESOLVE_UNIX`` checks)?"""
    return addr is not None and len(addr) > 2 and addr[2] != 0 and family(addr) == AF_UNIX


class _Call:
    __slots__ = ("fn", "args", "ident", "result", "error", "done")

    def __init__(self, fn: Callable[..., int | None], args: tuple, ident: Identity) -> None:
        self.fn, self.args, self.ident = fn, args, ident
        self.result: int | None = None
        self.error: OSError | None = None
        self.done = threading.Lock()
        self.done.acquire()


class Connector:
    """One restricted thread performing the final ``connect``/``sendmsg`` of brokered calls.

    ``rules``: :func:`connector_rules` of the plan; ``local``: the broker's thread-local state
    (``local.creds``: the calling broker thread's :class:`ThreadCreds`); ``on_event``: where a
    note goes if the thread cannot restrict itself. Started on the first handed-over call."""

    def __init__(self, rules: Sequence[tuple[str | int, ll.AccessFs]], local: threading.local,
                 on_event: Callable[[dict], None], *, abi: int | None = None) -> None:
        self._rules = list(rules)
        self._abi = abi
        self._local = local
        self._on_event = on_event
        import queue  # here: the launcher imports this module for connector_rules alone

        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: str | None = None
        self._closed = False

    # -- what the broker calls (in place of ``_broker_sys.connect``/``sendmsg``) ----------
    # Same signatures as ``_broker_sys``'s: a pathname destination is handed over, the rest
    # is performed here, in the calling broker thread.
    def connect(self, fd: int, addr: bytes) -> None:
        if not _pathname(addr):
            sysc.connect(fd, addr)
            return
        self._call(sysc.connect, (fd, addr))

    def sendmsg(self, fd: int, data: bytes, name: bytes | None, control: bytes, flags: int) -> int:
        if not _pathname(name):
            return sysc.sendmsg(fd, data, name, control, flags)
        return int(self._call(sysc.sendmsg, (fd, data, name, control, flags)) or 0)

    def _call(self, fn: Callable[..., int | None], args: tuple) -> int | None:
        creds = getattr(self._local, "creds", None)
        if creds is None:
            raise OSError(errno.EACCES, "broker thread without credentials")
        if not self._ready.is_set():
            self._start()
        if self._failed is not None or self._closed:
            raise OSError(errno.EACCES, self._failed or "connector closed")
        call = _Call(fn, args, creds.ident)
        self._queue.put(call)
        # Never long: every handed-over call is non-blocking. Given up only once the thread
        # is gone (it then never touches the descriptors, which the caller closes).
        while not call.done.acquire(timeout=1.0):
            t = self._thread
            if t is None or not t.is_alive():
                raise OSError(errno.EACCES, "connector gone")
        if call.error is not None:
            raise call.error
        return call.result

    # -- lifecycle -------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._main, name="lsandbox-connector", daemon=True)
                try:
                    self._thread.start()
                except RuntimeError as e:  # no more threads: fail closed
                    self._failed = f"connector thread not started: {e}"
                    self._ready.set()
        self._ready.wait()

    def close(self) -> None:
        """Stop the thread (once calls in flight are answered)."""
        with self._lock:
            self._closed = True
            t = self._thread
        if t is not None and t.ident is not None:
            self._queue.put(None)
            t.join(timeout=5)

    def _restrict(self) -> ThreadCreds:
        """This thread only: the sandbox's ``RESOLVE_UNIX`` rules, then the command's kind of
        credentials (rule paths are opened first, with the supervisor's)."""
        rs = ll.Ruleset(handled_fs=_RESOLVE_UNIX, compat=ll.CompatLevel.HARD_REQUIREMENT, max_abi=self._abi)
        for path, access in self._rules:  # descriptors pinned by the launcher (PinnedRules)
            rs.add_path_fd(path, access) if isinstance(path, int) else rs.add_path(path, access)
        status = rs.restrict_self(no_new_privs=True)
        if status.ruleset is not ll.Enforcement.FULLY_ENFORCED:
            raise OSError(errno.EACCES, f"RESOLVE_UNIX not enforced ({status.ruleset.name})")
        return ThreadCreds()

    def _main(self) -> None:
        try:
            creds = self._restrict()
        except BaseException as e:  # noqa: BLE001 - fail closed, and say why
            self._failed = f"the AF_UNIX connector could not restrict itself ({e!r}): brokered " \
                           "pathname connects and sends fail"
            self._ready.set()
            try:
                self._on_event({"kind": "note", "text": self._failed})
            except Exception:  # noqa: BLE001 - a failing sink must not take the broker down
                pass
            self._drain()
            return
        self._ready.set()
        while True:
            call = self._queue.get()
            if call is None:
                return
            try:
                if call.ident != creds.ident:
                    creds.adopt(call.ident)  # its effective capability set stays empty
                call.result = call.fn(*call.args)
            except OSError as e:
                call.error = e
            except BaseException:  # noqa: BLE001 - fail closed, keep serving
                call.error = OSError(errno.EACCES, "connector failure")
            call.done.release()

    def _drain(self) -> None:
        """Failed: answer whatever was queued before the failure was visible (EACCES)."""
        while True:
            call = self._queue.get()
            if call is None:
                return
            call.error = OSError(errno.EACCES, self._failed or "connector failure")
            call.done.release()
