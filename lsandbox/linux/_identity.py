"""Per-thread credentials for broker threads: act as the command, with no capabilities.

A call the broker performs is checked by the kernel against the *calling thread's*
credentials: DAC on the socket inode, ``SO_PEERCRED`` recorded at connect, the
``SCM_CREDENTIALS`` attached to a send when the receiver set ``SO_PASSCRED``, capability
checks of other families (``bind`` to a netlink multicast group, a port below 1024). So
each broker thread *becomes* the command's identity -- real, effective, saved and fs
uids and gids and the supplementary groups -- and performs the socket call with an empty
effective capability set: a peer sees the command's uid/gids (not the supervisor's), and
nothing succeeds that the command, which has no capabilities, could not do itself.

Why per thread and persistent: credentials are per thread in the kernel, but glibc's
``setresuid``/``setgroups`` broadcast to every thread of the process (POSIX semantics), so
the raw system calls are used here. A thread keeps the identity it took until a call from
another identity arrives (in a sandbox that is rare: a command without capabilities cannot
change its ids beyond its own real/saved ones), so the common case pays nothing but a
check. ``PR_SET_KEEPCAPS`` keeps the thread's *permitted* capabilities across the switch
to a non-zero uid, so it can switch again; the *effective* set is chosen per phase:

- ``bare`` (``connect``, ``bind``, ``sendmsg``, making a socket for ADDFD): nothing, always.
- ``prep`` (reading the target's memory, ``pidfd_getfd``, ``/proc/<tid>/root`` and
  ``cwd``): nothing either, at first. With the command's uids and a command without
  capabilities, the kernel's ptrace-access checks pass without any (same ids, and the
  target's capabilities a subset of the thread's). Where they do not (a target that made
  itself non-dumpable, or one that holds capabilities), the call fails, and the broker
  retries it once after :meth:`ThreadCreds.escalate`: from then on this thread holds
  ``CAP_SYS_PTRACE`` (only: no ``CAP_DAC_*``, paths keep the command's DAC) while it
  prepares, and drops it around every socket call. The drop costs two ``capset`` calls,
  which is why it is not paid where nothing needs it.

An unprivileged supervisor has no capabilities to drop and normally the same identity as
its command: nothing changes for it. Where a thread cannot take the command's identity
(an unprivileged supervisor serving another uid) the call fails closed.

Not covered by dropping capabilities: the owner of a user namespace holds every capability
in it whatever its effective set, so where an unprivileged supervisor created the
sandbox's user and network namespaces, a brokered non-AF_UNIX call acting on the
sandbox's *own* network namespace (a netlink group of its loopback-only namespace) can do
what root in that namespace could; nothing outside it. (AF_INET is refused there anyway:
the network is off whenever that namespace exists.)

What a peer still sees differently: the *pid* (``SO_PEERCRED``'s and ``SCM_CREDENTIALS``'
pid is the supervisor's), and an LSM label if any.
"""

from __future__ import annotations

import ctypes
import os

import seccomp_bpf as sb
from lsandbox_records import Record

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_ARCH = sb.native_arch()
_NR = {name: sb.syscall_number(name, _ARCH)
       for name in ("setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "capget",
                    "capset", "prctl", "getresuid", "getresgid")}
_CAP_V3 = 0x20080522
PR_SET_KEEPCAPS = 8
CAP_SETGID, CAP_SETUID, CAP_SYS_PTRACE = 6, 7, 19


class Identity(Record):
    uids: tuple[int, int, int, int]  # real, effective, saved, fs
    gids: tuple[int, int, int, int]
    groups: tuple[int, ...]


def read_identity(tid: int) -> Identity:
    """The ids of thread ``tid`` as this process sees them (``/proc/<tid>/status``)."""
    uids = gids = None
    groups: tuple[int, ...] = ()
    with open(f"/proc/{tid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Uid:"):
                uids = tuple(int(x) for x in line.split()[1:5])
            elif line.startswith(b"Gid:"):
                gids = tuple(int(x) for x in line.split()[1:5])
            elif line.startswith(b"Groups:"):
                groups = tuple(sorted(int(g) for g in line.split()[1:]))
                break
    if uids is None or gids is None or len(uids) != 4 or len(gids) != 4:
        raise OSError(3, f"no credentials for {tid}")
    return Identity(uids, gids, groups)


def own_identity() -> Identity:
    r, e, s = os.getresuid()
    rg, eg, sg = os.getresgid()
    return Identity((r, e, s, e), (rg, eg, sg, eg), tuple(sorted(os.getgroups())))


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32))


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


class Caps(Record):
    """A thread's capability sets as 64-bit masks (what ``capset`` needs)."""

    effective: int
    permitted: int
    inheritable: int

    def words(self) -> tuple[int, int, int, int, int, int]:
        """(eff, perm, inh) of the low word then of the high word: ``_fastpath.h``'s layout."""
        m = 0xFFFFFFFF
        return (self.effective & m, self.permitted & m, self.inheritable & m,
                self.effective >> 32, self.permitted >> 32, self.inheritable >> 32)


def get_caps() -> Caps:
    hdr, data = _CapHeader(_CAP_V3, 0), (_CapData * 2)()
    if _syscall(_NR["capget"], ctypes.byref(hdr), data) != 0:
        raise _fail("capget")
    return Caps(data[0].effective | data[1].effective << 32,
                data[0].permitted | data[1].permitted << 32,
                data[0].inheritable | data[1].inheritable << 32)


def _cap_data(c: Caps) -> ctypes.Array:
    data = (_CapData * 2)()
    w = c.words()
    data[0].effective, data[0].permitted, data[0].inheritable = w[0], w[1], w[2]
    data[1].effective, data[1].permitted, data[1].inheritable = w[3], w[4], w[5]
    return data


def set_caps(c: Caps) -> None:
    """``capset`` of the calling thread only."""
    if _syscall(_NR["capset"], ctypes.byref(_CapHeader(_CAP_V3, 0)), _cap_data(c)) != 0:
        raise _fail("capset")


def _bit(cap: int) -> int:
    return 1 << cap


class ThreadCreds:
    """The calling broker thread's credentials (one instance per thread, made in it)."""

    def __init__(self) -> None:
        _syscall(_NR["prctl"], ctypes.c_int(PR_SET_KEEPCAPS), ctypes.c_ulong(1),
                 ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        caps = get_caps()
        self.permitted, self.inheritable = caps.permitted, caps.inheritable
        self.bare = Caps(0, caps.permitted, caps.inheritable)
        self.prep = self.bare
        self.ident = own_identity()
        if caps.effective:
            set_caps(self.bare)
        # Only when there is something to drop does a call pay for two capsets (prebuilt:
        # they run around every brokered call).
        self.toggles = False
        self._hdr = ctypes.byref(_CapHeader(_CAP_V3, 0))
        self._bare_data = self._prep_data = _cap_data(self.bare)
        self._capset = _NR["capset"]

    def can_escalate(self) -> bool:
        return not self.toggles and bool(self.permitted & _bit(CAP_SYS_PTRACE))

    def escalate(self) -> None:
        """Hold ``CAP_SYS_PTRACE`` while preparing calls from now on (dropped around each)."""
        self.prep = Caps(self.permitted & _bit(CAP_SYS_PTRACE), self.permitted, self.inheritable)
        self._prep_data = _cap_data(self.prep)
        set_caps(self.prep)
        self.toggles = True

    def can_switch(self) -> bool:
        need = _bit(CAP_SETUID) | _bit(CAP_SETGID)
        return self.permitted & need == need

    def adopt(self, ident: Identity) -> None:
        """Become ``ident`` (raw syscalls: this thread only); the effective set ends as
        ``prep``. Raises OSError where the thread cannot (no CAP_SETUID/SETGID)."""
        if ident == self.ident:
            return
        if not self.can_switch():
            raise OSError(1, "cannot take another identity without CAP_SETUID/CAP_SETGID")
        raise_ = Caps(self.permitted & (_bit(CAP_SETUID) | _bit(CAP_SETGID) | _bit(CAP_SYS_PTRACE)),
                      self.permitted, self.inheritable)
        self.ident = Identity((-1, -1, -1, -1), (-1, -1, -1, -1), ())  # unknown until done
        set_caps(raise_)
        arr = (ctypes.c_uint * max(1, len(ident.groups)))(*ident.groups)
        if _syscall(_NR["setgroups"], ctypes.c_size_t(len(ident.groups)), arr) != 0:
            raise _fail("setgroups")
        ru, eu, su, fu = ident.uids
        rg, eg, sg, fg = ident.gids
        if _syscall(_NR["setresgid"], ctypes.c_uint(rg), ctypes.c_uint(eg), ctypes.c_uint(sg)) != 0:
            raise _fail("setresgid")
        if _syscall(_NR["setresuid"], ctypes.c_uint(ru), ctypes.c_uint(eu), ctypes.c_uint(su)) != 0:
            raise _fail("setresuid")
        set_caps(raise_)  # a switch to uid 0 made effective = permitted; to non-zero, empty
        _syscall(_NR["setfsgid"], ctypes.c_uint(fg))
        _syscall(_NR["setfsuid"], ctypes.c_uint(fu))
        if (_syscall(_NR["setfsuid"], ctypes.c_uint(0xFFFFFFFF)) != fu
                or _syscall(_NR["setfsgid"], ctypes.c_uint(0xFFFFFFFF)) != fg):
            raise OSError(1, "setfsuid/setfsgid refused")
        set_caps(self.prep)
        self.ident = ident

    def drop(self) -> None:
        """Effective set empty (before the socket call)."""
        if self.toggles and _syscall(self._capset, self._hdr, self._bare_data) != 0:
            raise _fail("capset")

    def undrop(self) -> None:
        if self.toggles and _syscall(self._capset, self._hdr, self._prep_data) != 0:
            raise _fail("capset")
