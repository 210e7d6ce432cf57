"""The restricted connector: brokered pathname AF_UNIX calls performed under the sandbox's
Landlock ``MAKE_SOCK`` and ``RESOLVE_UNIX`` rules.

Landlock checks a ``bind`` that creates a socket file against ``MAKE_SOCK`` (ABI >= 1), and
(ABI >= 9) checks a pathname AF_UNIX ``connect``/``sendmsg`` against the domain of
the task that *performs* it. The broker performs every such call of the sandbox, so without
this module the kernel checks it against the supervisor's (empty) domain, and a path the
broker wrongly allowed would go through. Restricting the broker's own threads is no way out:
a Landlock domain on a thread takes away its ptrace-mode access to the sandbox
(``pidfd_getfd`` and ``/proc/<tid>/mem`` fail), which preparing every call needs.

So the work is split. A broker thread keeps everything that needs the target: reading its
memory, ``pidfd_getfd``, resolving and pinning the path as the target, the policy decision,
waiting, signals, timeouts. Only the final system call, on the descriptors it prepared (the
target's socket, the destination as ``/proc/self/fd/<pin>``, or a bind's pinned parent
directory and base name), is handed to the connector thread, which has restricted *itself*
(``landlock_restrict_self`` applies to the calling thread only; ``no_new_privs`` is set on
that thread alone, which never executes anything) with a ruleset handling what the plan
handles of ``MAKE_SOCK`` and ``RESOLVE_UNIX`` and carrying the sandbox's grants of them
(``_unix_pins``). The kernel then refuses (EACCES) what those rules refuse, whatever the
broker decided. A bind is made from the connector's own cwd and umask (``unshare(CLONE_FS)``
on its thread): ``fchdir`` into the pinned parent, the target's umask, ``bind`` of the base
name, back to ``/``.

Every handed-over call is non-blocking (the broker sets ``O_NONBLOCK`` for a connect and
passes ``MSG_DONTWAIT`` to a send, and retries on EAGAIN itself), so the connector never
waits and one thread serves every broker thread; the broker thread waits for the answer
(its descriptors stay open until then, so their numbers cannot be reused under the call).

Identity: the connector performs each call with the identity the handing broker thread holds
(the command's uids, gids and groups, ``_identity``) and no effective capability, as the
broker thread would have: ``SO_PEERCRED``, ``SCM_CREDENTIALS`` and DAC see the command.
It never escalates (it touches nothing of the target's), so its effective set stays empty.

The rules' paths are opened by the launcher (``_unix_pins.PinnedRules``), in the supervisor's
mount namespace. The sandbox's mount view keeps the
host's inodes at the same paths except where it puts a fresh tmpfs (``/dev/shm``, masked
deny paths): a rule there grants the connector nothing, so it refuses more, never less.

Only pathname destinations are handed over; abstract names, unnamed and non-AF_UNIX
addresses, and sends without an address go on as before. Connects and sends are handed over
only where the plan handles ``RESOLVE_UNIX`` (ABI >= 9), binds where it handles
``MAKE_SOCK`` (any Landlock); without Landlock no connector exists and the broker calls the
kernel directly (binds then still go through the sandbox's read-only mount view: the parent
is opened through ``/proc/<pid>/root``). If the connector cannot restrict itself, every
handed-over call fails with EACCES (and a note says why): fail closed.
"""

from __future__ import annotations

import collections
import errno
import os
import threading
from collections.abc import Callable, Sequence

import landlock as ll

from . import _broker_sys as sysc
from ._identity import Identity, ThreadCreds
from ._sockaddr import AF_UNIX, family, unix_sockaddr

_RESOLVE_UNIX = ll.FS_RESOLVE_UNIX
_MAKE_SOCK = ll.FS_MAKE_SOCK


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


class _Channel:
    """The calls handed to the connector, in order (``queue.SimpleQueue``'s put/get, from
    modules the broker has loaded already: a broker started after its caller changed uid may
    find the standard library out of reach)."""

    def __init__(self) -> None:
        self._items: collections.deque[_Call | None] = collections.deque()
        self._count = threading.Semaphore(0)

    def put(self, item: _Call | None) -> None:
        self._items.append(item)
        self._count.release()

    def get(self) -> _Call | None:
        self._count.acquire()
        return self._items.popleft()


class Connector:
    """One restricted thread performing the final ``connect``/``sendmsg``/``bind`` of brokered
    calls.

    ``handled``, ``rules``: the rights the connector handles and its grants (paths or pinned
    descriptors, with plain int rights: ``_unix_pins``); ``local``: the broker's thread-local
    state (``local.creds``: the calling broker thread's :class:`ThreadCreds`); ``on_event``:
    where a note goes if the thread cannot restrict itself. Started on the first handed-over
    call. ``connects``/``binds``: which calls are handed over."""

    def __init__(self, handled: int, rules: Sequence[tuple[str | int, int]], local: threading.local,
                 on_event: Callable[[dict], None], *, abi: int | None = None) -> None:
        self._handled = handled
        self.connects = bool(handled & _RESOLVE_UNIX)
        self.binds = bool(handled & _MAKE_SOCK)
        self._rules = list(rules)
        self._abi = abi
        self._local = local
        self._on_event = on_event
        self._queue = _Channel()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: str | None = None
        self._closed = False
        self.private_fs = False  # the thread's own cwd and umask (set when it starts)

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

    def bind_at(self, fd: int, dirfd: int, name: bytes, mask: int) -> bool:
        """Bind ``fd`` to the base name ``name`` in the directory ``dirfd``, with umask
        ``mask`` (a pathname bind: the broker pinned and decided the parent). False, doing
        nothing, where the thread has no cwd of its own (unshare refused): the broker binds."""
        if not self._ready.is_set():
            self._start()
        if self._failed is None and not self._closed and not self.private_fs:
            return False
        self._call(_bind_at, (fd, dirfd, name, mask))
        return True

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
        """This thread only: its own cwd and umask (binds ``fchdir``), the sandbox's rules,
        then the command's kind of credentials (rule paths are opened first, with the
        supervisor's)."""
        try:  # else a bind's fchdir would move the whole supervisor: binds stay with the broker
            sysc.unshare_fs()
            self.private_fs = True
        except OSError:  # a runtime's seccomp profile refusing unshare (Docker's)
            self.private_fs = False
        handled = ll.AccessFs(self._handled)
        rs = ll.Ruleset(handled_fs=handled, compat=ll.CompatLevel.HARD_REQUIREMENT, max_abi=self._abi)
        for path, access in self._rules:  # descriptors pinned by the launcher (PinnedRules)
            grant = ll.AccessFs(access)
            rs.add_path_fd(path, grant) if isinstance(path, int) else rs.add_path(path, grant)
        status = rs.restrict_self(no_new_privs=True)
        if status.ruleset is not ll.Enforcement.FULLY_ENFORCED:
            raise OSError(errno.EACCES, f"{handled!r} not enforced ({status.ruleset.name})")
        return ThreadCreds()

    def _main(self) -> None:
        try:
            creds = self._restrict()
        except BaseException as e:  # noqa: BLE001 - fail closed, and say why
            self._failed = f"the AF_UNIX connector could not restrict itself ({e!r}): brokered " \
                           "pathname " + ("connects, sends and binds" if self.connects and self.binds
                                          else "connects and sends" if self.connects else "binds") + " fail"
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


def _bind_at(fd: int, dirfd: int, name: bytes, mask: int) -> None:
    """In the connector's thread (its own cwd and umask): bind ``name`` in ``dirfd``."""
    os.umask(mask)
    os.fchdir(dirfd)
    try:
        sysc.bind(fd, unix_sockaddr(name))
    finally:
        os.chdir("/")
