"""Planted sockets: refuse allowlisted paths whose socket the sandbox itself put there.

An allowlist entry names a *path*. Where the sandbox may write, it can move things to that
path: ``mv /tmp/tmux-1000/default /tmp/.X11-unix/X9`` (the socket), ``mv /tmp/tmux-1000
/tmp/.X11-unix/t`` (a directory holding one), or rename the allowlisted directory away and
another into its place; ``ln`` makes a second name for a socket. Any of these would hand the
workload a server the policy does not allow (a tmux server runs commands outside the
sandbox). Hard links are refused by the broker (``st_nlink != 1``); this module covers moves.

For a socket whose canonical path matched an allow rule, every component the sandbox could
have renamed (its parent directory is writable under the policy, or is the sandbox-local
socket directory) must pass, checked on the objects themselves by a walk with ``O_PATH``
file descriptors that ends at the pinned inode:

- the socket: it is the socket that was at this very place when the sandbox started (path
  -> device, inode and ctime recorded before the sandbox's first instruction, so a server
  that bound just before the launch is never refused for its age), or its ctime is older
  than the launch (rename, link, chmod and chown all set ctime, and nobody can set it
  back), or the sandbox bound it itself through the broker (recorded by device, inode and
  birth time, so a reused inode number does not inherit it);
- a directory: it is the directory that was at this very place when the sandbox started
  (path -> device and inode, recorded for the allowlisted paths, their ancestors and what
  is under them), or it was created after the start (birth time), so it can only hold what
  was moved into it, and moved sockets fail above. Known by place, not by inode alone: a
  directory that was an ancestor at launch and was moved *under* the allowlisted path
  (``mv /tmp/app /tmp/a0; mkdir -p /tmp/app/run; mv /tmp/a0 /tmp/app/run/x``) is refused.

Cost of the rule: in a directory the sandbox can write, a socket that an *outside* process
creates after the launch (a server restarted mid-session) is refused too, with an event
saying so; keep such directories read-only in the policy, or restart the sandbox. Outside
writable locations nothing is checked and nothing is paid. Timestamps come from the coarse
clock (one tick behind), hence ``SLACK_NS`` (applied only to what the snapshot does not
name). A filesystem without birth times (statx
``STATX_BTIME``) fails closed for directories created after the launch and for the
sandbox's own sockets there.
"""

from __future__ import annotations

import os
import stat

from ..policy._longest import ancestors
from ..policy._model import FsAccess, Policy, SocketAccess
from ..policy._paths import is_within

TYPE_CHECKING = False
if TYPE_CHECKING:
    from . import _broker_sys as sysc

SLACK_NS = 50_000_000  # coarse timestamps lag the real clock by up to one tick (1-10 ms)
SNAPSHOT_MAX = 4096  # directories and sockets recorded per launch under allowlisted paths
_O_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_LAST = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _statx(fd: int) -> sysc.Statx:
    # imported here: the launcher builds a Provenance before forking, the checks run in the
    # broker after it (ctypes' import stays off the launch's critical path)
    from ._broker_sys import statx

    return statx(fd)


class Provenance:
    """What the sandbox could have planted, for one sandbox. ``launch_ns`` is
    ``time.time_ns()`` taken before the sandbox was started; construct before the start too
    (the snapshot of allowlisted directories must predate the workload)."""

    def __init__(self, policy: Policy, socket_dir: str, launch_ns: int, *, snapshot: bool = True) -> None:
        self._fs = policy.filesystem.table
        self._socket_dir = socket_dir
        self._launch = launch_ns
        self._cache: dict[str, bool] = {}
        self._bound: set[tuple[int, int, int]] = set()
        self.off = policy.network.dangerously_allow_all_unix_sockets
        self._known: dict[str, tuple[int, int]] = {}  # place -> directory (dev, ino) at launch
        self._sockets: dict[str, tuple[int, int, int]] = {}  # place -> socket (dev, ino, ctime)
        if snapshot and not self.off:
            roots = [r.path for r in policy.network.unix_sockets if r.access == SocketAccess.ALLOW]
            self._snapshot([*roots, socket_dir] if socket_dir else roots)
        # The socket directory is the sandbox's wherever it is moved (the broker knows it by
        # inode too): what it holds is the sandbox's own sockets, or moved ones, refused below.
        self._sd_ident = self._known.get(socket_dir) if socket_dir else None

    # -- where the sandbox can rename ---------------------------------------------------
    def _writable(self, directory: str) -> bool:
        hit = self._cache.get(directory)
        if hit is None:
            hit = bool(self._socket_dir) and is_within(directory, self._socket_dir)
            if not hit:
                rule = self._fs.get(directory)
                hit = rule is not None and rule.access == FsAccess.WRITE
            if len(self._cache) < 4096:
                self._cache[directory] = hit
        return hit

    def rename_roots(self) -> tuple[str, ...]:
        """The directories below which the sandbox can rename (the writable rules and the
        socket directory): :meth:`exposed` is true exactly for a path with one of these at
        or above its parent directory. Empty when the checks are off."""
        if self.off:
            return ()
        roots = [p for p, r in self._fs.items() if r.access == FsAccess.WRITE]
        return (*roots, self._socket_dir) if self._socket_dir else tuple(roots)

    def exposed(self, path: str) -> bool:
        """Could the sandbox have renamed any component of canonical ``path``? (Then the
        checks below apply to sockets there; ``explain`` says so per rule.)"""
        if self.off or path == "/":
            return False
        return any(self._writable(head) for head in ancestors(path.rsplit("/", 1)[0] or "/"))

    # -- launch-time snapshot -----------------------------------------------------------
    def _record(self, path: str, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            self._known[path] = (st.st_dev, st.st_ino)
        elif stat.S_ISSOCK(st.st_mode):
            self._sockets[path] = (st.st_dev, st.st_ino, st.st_ctime_ns)

    def _snapshot(self, roots: list[str]) -> None:
        budget = SNAPSHOT_MAX
        written = [p for p, r in self._fs.items() if r.access == FsAccess.WRITE]
        for root in roots:
            if not (self.exposed(root) or self._writable(root) or any(is_within(w, root) for w in written)):
                continue
            probe = root
            while probe != "/":  # the allowlisted path and its ancestors
                try:
                    self._record(probe, os.stat(probe, follow_symlinks=False))
                except OSError:
                    pass
                probe = probe.rsplit("/", 1)[0] or "/"
            stack = [root]  # and the directories and sockets under it
            while stack and budget > 0:
                top = stack.pop()
                try:
                    entries = list(os.scandir(top))
                except OSError:
                    continue
                for e in entries:
                    if e.is_symlink() or e.is_file(follow_symlinks=False):
                        continue  # neither a directory nor a socket
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    self._record(e.path, st)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(e.path)
                    budget -= 1
            # beyond the budget, older directories count as moved in (fail closed) and
            # sockets are judged by their age

    # -- the sandbox's own sockets --------------------------------------------------------
    def note_bound(self, dir_fd: int, name: str, since_ns: int) -> None:
        """Record the socket the broker just bound at ``name`` in ``dir_fd``. Only an inode born
        after ``since_ns`` counts, so a socket swapped in under that name meanwhile does not."""
        try:
            fd = os.open(name, _O_LAST, dir_fd=dir_fd)
        except OSError:
            return
        try:
            sx = _statx(fd)
        finally:
            os.close(fd)
        if sx.btime_ns is not None and stat.S_ISSOCK(sx.mode) and sx.btime_ns >= since_ns - SLACK_NS:
            self._bound.add((sx.dev, sx.ino, sx.btime_ns))

    # -- the check --------------------------------------------------------------------------
    def check(self, path: str, pin: int) -> str | None:
        """None when the socket pinned at ``pin`` (canonical ``path``) was not planted by the
        sandbox, else the reason. Walks ``path`` component by component with O_PATH fds."""
        if not self.exposed(path):
            return None
        names = path.split("/")[1:]
        # Components whose parent the sandbox cannot write cannot have been moved by it: the
        # walk starts below the deepest such prefix (opened by its path), not at "/".
        here, start = "", 0
        while start < len(names) - 1 and not self._writable(here or "/"):
            here = f"{here}/{names[start]}"
            start += 1
        fd = os.open(here or "/", _O_DIR)
        try:
            for i in range(start, len(names)):
                name = names[i]
                last = i == len(names) - 1
                parent = here or "/"
                here = f"{here}/{name}"
                nfd = os.open(name, _O_LAST if last else _O_DIR, dir_fd=fd)
                os.close(fd)
                fd = nfd
                if not self._writable(parent):
                    continue
                sx = _statx(fd)
                if last:
                    if self._sockets.get(here) == (sx.dev, sx.ino, sx.ctime_ns):
                        continue  # the very socket that was here at launch
                    if sx.ctime_ns < self._launch - SLACK_NS:
                        continue
                    if sx.btime_ns is not None and (sx.dev, sx.ino, sx.btime_ns) in self._bound:
                        continue
                    return (f"planted socket: {here} was created, moved or linked after the "
                            "sandbox started, in a directory the sandbox can write")
                if self._known.get(here) == (sx.dev, sx.ino) or (sx.dev, sx.ino) == self._sd_ident:
                    continue  # the very directory that was here at launch, or the socket dir
                if sx.btime_ns is not None and sx.btime_ns >= self._launch - SLACK_NS:
                    continue
                return (f"planted socket: directory {here} was moved where the sandbox can "
                        "write after it started")
            st, pst = os.fstat(fd), os.fstat(pin)
            if (st.st_dev, st.st_ino) != (pst.st_dev, pst.st_ino):
                return f"planted socket: {path} changed while it was checked"
            return None
        except OSError as e:
            return f"planted socket: {path} could not be checked ({os.strerror(e.errno or 0)})"
        finally:
            os.close(fd)
