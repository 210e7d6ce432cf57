"""What this machine offers the Linux backend, probed once per process (cheap, no walks).

``LSANDBOX_NO_NAMESPACES=1`` makes the backend behave as in a container that refuses
namespaces (for tests of that mode on a machine that has them).
"""

from __future__ import annotations

import os
from functools import cache

import landlock
import seccomp_bpf
from lsandbox_records import Record


def _clamped(name: str) -> bool:
    return os.environ.get(name, "") in ("1", "true", "yes")


def addfd_available() -> bool:
    """SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9); ``LSANDBOX_SECCOMP_NO_ADDFD=1`` emulates its absence."""
    return not _clamped("LSANDBOX_SECCOMP_NO_ADDFD")


def pidfd_thread_available() -> bool:
    """``pidfd_open(tid, PIDFD_THREAD)`` (Linux 6.9): a pidfd for any thread, not only a
    thread-group leader. ``LSANDBOX_NO_PIDFD_THREAD=1`` emulates its absence; the broker then
    opens the leader and checks (kcmp) that the thread shares its descriptor table."""
    if _clamped("LSANDBOX_NO_PIDFD_THREAD"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid(), os.O_EXCL))  # PIDFD_THREAD == O_EXCL
        return True
    except OSError:
        return False


def wait_killable_available() -> bool:
    """SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19); ``LSANDBOX_SECCOMP_NO_WAIT_KILLABLE=1``
    emulates its absence. With it, a brokered call can no longer be interrupted by a non-fatal
    signal once the broker has received it, so the broker's work is never thrown away and
    redone; without it the same answers are given, with more restarts."""
    if _clamped("LSANDBOX_SECCOMP_NO_WAIT_KILLABLE"):
        return False
    try:
        return seccomp_bpf.flag_supported(seccomp_bpf.FLAG_WAIT_KILLABLE_RECV)
    except OSError:
        return False


@cache
def sync_wake_up_available() -> bool:
    """``SECCOMP_IOCTL_NOTIF_SET_FLAGS`` with ``USER_NOTIF_FD_SYNC_WAKE_UP`` (Linux 6.6; the
    ioctl itself is refused with EINVAL before): probed on the listener of a throwaway filter
    in a forked child, never assumed from the version (distribution kernels backport). The
    broker needs no probe: it tries the flag on its own listener and carries on without it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            prog = seccomp_bpf.compile_filter(seccomp_bpf.Filter(
                seccomp_bpf.native_arch(), (seccomp_bpf.Rule("getppid", seccomp_bpf.USER_NOTIF),),
                seccomp_bpf.ALLOW))
            seccomp_bpf.set_no_new_privs()
            fd = seccomp_bpf.install_filter(prog, flags=seccomp_bpf.FLAG_NEW_LISTENER)
            assert fd is not None  # FLAG_NEW_LISTENER returns the listener
            seccomp_bpf.set_listener_flags(fd, seccomp_bpf.USER_NOTIF_FD_SYNC_WAKE_UP)
            code = 0
        except BaseException:  # noqa: BLE001 - any failure means "not available"
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


class Features(Record):
    landlock_abi: int
    user_notif: bool
    namespaces: bool  # may try user/mount/pid namespaces
    root: bool


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def userns_allowed() -> tuple[bool, str]:
    """Can an unprivileged process create a user namespace here? (reason when not)"""
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        return False, "user.max_user_namespaces is 0"
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return False, "kernel.unprivileged_userns_clone is 0"
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return False, "AppArmor restricts unprivileged user namespaces"
    return True, ""


def filesystem_unenforced(abi: int, namespaces: bool, view: object | None) -> str | None:
    """Why the filesystem policy could not be enforced by this launch (None when it can).

    Landlock carries the filesystem policy. Without it (Linux < 5.13, or Landlock left out of
    the ``lsm=`` list) only a read-only mount view in a mount namespace can (``view``: the
    plan's, when the backend builds one); with neither, lsandbox refuses to start rather than
    run a command that could write anywhere its user can."""
    if abi >= 1 or (namespaces and view is not None):
        return None
    missing = "Landlock is not available in this kernel (Linux 5.13+ with landlock in its lsm= list)"
    if not namespaces:
        return f"{missing} and mount namespaces are not usable: the filesystem policy cannot be enforced"
    return f"{missing} and this build has no read-only mount view to carry the filesystem policy"


def mount_view_built() -> bool:
    """Does this build carry the read-only mount view (``_mount_view``) that can hold the
    filesystem policy where Landlock is missing? (doctor's answer; a launch asks its plan)"""
    import importlib.util

    return importlib.util.find_spec("lsandbox.linux._mount_view") is not None


def features() -> Features:
    """What this kernel and this process can do, probed once per effective uid: a caller
    that dropped root after a launch needs a user namespace for the next one."""
    return _features(os.geteuid())


@cache
def _features(euid: int) -> Features:
    root = euid == 0
    ns = not _clamped("LSANDBOX_NO_NAMESPACES")
    if ns and not root:
        ns = userns_allowed()[0]
    try:
        notif = seccomp_bpf.action_available(seccomp_bpf.RET_USER_NOTIF)
    except OSError:
        notif = False
    return Features(landlock.abi_version(), notif, ns, root)


features.cache_clear = _features.cache_clear  # type: ignore[attr-defined]  # probed afresh (tests)
