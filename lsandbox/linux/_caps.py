"""No capabilities in the command, even as uid 0 (DESIGN.md, Linux enforcement, stage 2).

Called in the sandboxed child after the namespace and mount setup (which needs
CAP_SYS_ADMIN) and before Landlock, seccomp and ``execve``. In this order:

1. securebits NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE set and, with KEEP_CAPS, locked:
   uid 0 gains nothing at ``execve`` and no later call can undo it (needs CAP_SETPCAP);
2. the ambient set cleared;
3. every capability dropped from the bounding set (needs CAP_SETPCAP; a higher-numbered
   capability of a newer kernel too: the loop runs until the kernel answers EINVAL);
4. effective, permitted and inheritable cleared (always allowed: it only lowers them).

A process without CAP_SETPCAP (an unprivileged user without namespaces, a container root
whose runtime took it away) cannot do 1 and 3. That weakens nothing: with its permitted set
empty and ``no_new_privs`` set (``_child._restrict``) ``execve`` can gain no capability, a
set-id or file-capability binary included, whatever the bounding set and securebits say.
``doctor`` and ``explain`` still name what is kept (``kept_here``).

python-prctl drops the bounding set (its C call is the cheapest here); the rest is raw
``prctl``/``capset``/``capget`` through the launcher's cffi ``syscall``: python-prctl knows
no PR_CAP_AMBIENT, refuses securebits it does not know (NO_CAP_AMBIENT_RAISE), stops at the
last capability of the kernel it was built on, and clears capability sets through libcap
only for the capabilities it names.
"""

from __future__ import annotations

import errno
import os

import _prctl as _prctl_c  # python-prctl's C extension

import seccomp_bpf as sb

from ._ffi import ffi, lib

SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS = 1 << 4
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
#: what the command runs with (KEEP_CAPS itself stays off, and locked off)
SECUREBITS = (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP
              | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED
              | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

PR_CAPBSET_READ, PR_CAPBSET_DROP = 23, 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAP_SETPCAP = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

KEPT_BOUNDING = "bounding set"
KEPT_SECUREBITS = "securebits"


# cast once: the child makes dozens of these calls between fork and exec
_SYS = {name: ffi.cast("long", sb.syscall_number(name)) for name in ("prctl", "capset", "capget")}
_ZERO = ffi.cast("unsigned long", 0)
_ARGS = [ffi.cast("unsigned long", n) for n in range(64)]


def _prctl(option: int, arg: int = 0) -> int:
    """prctl(option, arg, 0, 0, 0); -errno on failure."""
    ffi.errno = 0
    r = lib.syscall(_SYS["prctl"], _ARGS[option] if option < 64 else ffi.cast("long", option),
                    _ARGS[arg] if arg < 64 else ffi.cast("unsigned long", arg), _ZERO, _ZERO, _ZERO)
    return r if r >= 0 else -ffi.errno


def dumpable() -> bool:
    """PR_GET_DUMPABLE of this process (its /proc files are root's when it is not)."""
    return bool(_prctl(_prctl_c.PR_GET_DUMPABLE))


def _capcall(name: str, data: object) -> None:
    """capget/capset of this thread: ``data`` is two {effective, permitted, inheritable}."""
    header = ffi.new("uint32_t[2]", [_LINUX_CAPABILITY_VERSION_3, 0])
    ffi.errno = 0
    if lib.syscall(_SYS[name], header, data) < 0:
        err = ffi.errno
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _capget() -> list[int]:
    data = ffi.new("uint32_t[6]")
    _capcall("capget", data)
    return list(data)


def _bounding_set_empty() -> bool:
    cap = 0
    while (r := _prctl(PR_CAPBSET_READ, cap)) >= 0:
        if r:
            return False
        cap += 1
    return True


def _drop_bounding_set() -> bool:
    """Drop every capability from the bounding set; False without CAP_SETPCAP. python-prctl's
    C call (cheaper than cffi's) for the capabilities it knows, a raw prctl for any a newer
    kernel added after them, until the kernel answers EINVAL."""
    try:
        for cap in range(_prctl_c.CAP_LAST_CAP + 1):
            _prctl_c.prctl(_prctl_c.PR_CAPBSET_DROP, cap)
    except OSError as e:  # EINVAL: a kernel older than python-prctl's table, all dropped
        return e.errno == errno.EINVAL
    cap = _prctl_c.CAP_LAST_CAP + 1
    while (r := _prctl(PR_CAPBSET_DROP, cap)) != -errno.EINVAL:  # EINVAL: past the last capability
        if r < 0:
            return False
        cap += 1
    return True


def drop_all() -> list[str]:
    """Clear every capability of this process and lock securebits (see the module docstring).
    Returns what could not be done for want of CAP_SETPCAP (``KEPT_*``) while the process
    held permitted capabilities (without any, nothing was at stake: ``kept_here`` still
    names it for doctor and explain); raises OSError only if the capability sets themselves
    cannot be cleared."""
    kept: list[str] = []
    old = _prctl(PR_GET_SECUREBITS)
    if old < 0 or (old & SECUREBITS != SECUREBITS
                   and _prctl(PR_SET_SECUREBITS, (old | SECUREBITS) & ~SECBIT_KEEP_CAPS) < 0):
        kept.append(KEPT_SECUREBITS)
    if (r := _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)) < 0 and r != -errno.EINVAL:
        raise OSError(-r, f"clearing the ambient capabilities: {os.strerror(-r)}")  # EINVAL: before 4.3
    if not _drop_bounding_set() and not _bounding_set_empty():
        kept.append(KEPT_BOUNDING)
    if kept and not held_permitted():
        kept = []
    _capcall("capset", ffi.new("uint32_t[6]"))  # all zero
    if any(_capget()):
        raise OSError(0, "capabilities remained after capset")
    return [k for k in (KEPT_BOUNDING, KEPT_SECUREBITS) if k in kept]


def held_permitted() -> bool:
    """Whether this process holds any permitted capability (capget)."""
    data = _capget()
    return bool(data[1] or data[4])


def kept_here(namespaces: bool, root: bool) -> list[str]:
    """What ``drop_all`` will keep in a sandbox started from this process: a child in a new user
    namespace holds every capability there (CAP_SETPCAP included); otherwise it has this
    process's effective set. For ``doctor`` and ``explain``."""
    if namespaces and not root:
        return []
    try:
        with open("/proc/self/status") as f:
            eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        eff = 0
    return [] if eff >> CAP_SETPCAP & 1 else [KEPT_BOUNDING, KEPT_SECUREBITS]


def describe_kept(kept: list[str]) -> str:
    """One sentence for notes, ``doctor`` and ``explain``."""
    return (f"capability {' and '.join(kept)} kept (no CAP_SETPCAP): the command still has no "
            "capability, and no_new_privs keeps execve from gaining any")


# Make each call once here, in the supervisor that imports this before it forks: cffi
# prepares a signature on its first call in a process, which the child would otherwise do
# between fork and exec (both calls only read).
_prctl(PR_GET_SECUREBITS)
try:
    _capget()
except OSError:  # refused here (a seccomp profile): the child will say so, not the import
    pass
