"""The sandbox's mount view: everything the policy does not let it write is read-only.

Landlock has no right for chmod, chown, utimes, xattrs or inode flags, handles truncate only
from ABI 3 and does not exist on old kernels; a read-only mount refuses all of them (EROFS)
on every kernel. So, in the sandbox's own mount namespace (as bubblewrap and Codex do), and
under Landlock (defense in depth; without Landlock the view carries the write policy alone):

1. the writable trees (policy write roots, the per-run socket directory) are cloned first,
   detached (``open_tree(OPEN_TREE_CLONE|AT_RECURSIVE)``), and made ``nodev,nosuid``;
2. the whole ``/`` is made read-only recursively (``mount_setattr(AT_RECURSIVE)``);
3. in path order (parents first): the clones are attached where they came from, read-only
   carve-outs (``.git``) are bound read-only over the writable tree, deny paths inside
   readable or writable trees are masked: a directory by an empty read-only tmpfs of mode
   0000, a file by an empty read-only file of mode 0000 (``ls -ld`` shows ``d---------`` or
   ``----------``, size 0; reading it fails, writing it fails with EROFS);
4. a fresh tmpfs on ``/dev/shm``, a private devpts on ``/dev/pts`` (``/dev/ptmx`` bound to its
   ``ptmx``): the sandbox's ptys are its own; its inherited terminal, a pty of the host's
   devpts, is bound over ``/dev/console`` so that ``ttyname()``/``tty`` still names it;
5. init (PID 1 of the new PID namespace: a procfs shows the PID namespace of the process that
   mounts it) mounts a fresh procfs over ``/proc`` (``fresh_proc``), read-only unless the
   policy lets it write ``/proc``.

Kernels before 5.12 lack ``mount_setattr``: there (``classic``) mount flags are changed by
``MS_REMOUNT|MS_BIND`` per mount point, from the list the supervisor read in
``/proc/self/mountinfo``. In a user namespace locked flags (nosuid, nodev, noexec, atime,
read-only) are kept: they can only be set. Every mount here either succeeds or fails the
launch with the path named: nothing is skipped silently (``notes`` say what was not needed).

The plan (``plan_view``) is computed in the supervisor; the child (``apply_view``,
``fresh_proc``) only makes syscalls.
"""

from __future__ import annotations

import os

from lsandbox_records import Record

from . import _sys

TYPE_CHECKING = False  # the typing module is not imported at run time; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..policy import Policy

WRITE, READ_ONLY, MASK, TMPFS = "write", "ro", "mask", "tmpfs"
_ATTR_WRITABLE = _sys.MOUNT_ATTR_NOSUID | _sys.MOUNT_ATTR_NODEV
_ATTR_MASK = _sys.MOUNT_ATTR_RDONLY | _sys.MOUNT_ATTR_NOSUID | _sys.MOUNT_ATTR_NODEV | _sys.MOUNT_ATTR_NOEXEC


class MountView(Record):
    """What the child mounts, in order. ``steps``: (kind, path), parents before children;
    ``clones``: the WRITE paths cloned before ``/`` is made read-only; ``nodev``: whether the
    writable trees get ``nodev`` (not when one of them holds ``/dev``); ``readonly_root``:
    False when ``/`` itself is writable; ``classic``: no mount_setattr (Linux < 5.12), then
    ``mounts`` lists the mount points to remount one by one."""

    steps: tuple[tuple[str, str], ...]
    clones: tuple[str, ...]
    nodev: bool = True
    readonly_root: bool = True
    devpts: bool = True
    proc: bool = True  # a fresh procfs (not when /proc itself is masked)
    proc_masks: tuple[str, ...] = ()  # deny paths inside /proc, masked in the fresh one
    proc_writable: bool = False
    classic: bool = False
    mounts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    devices: tuple[str, ...] | None = None  # /dev made nodev but for these (no Landlock)


def _within(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def mount_setattr_available() -> bool:
    """mount_setattr(2) (Linux 5.12); ``LSANDBOX_NO_MOUNT_SETATTR=1`` emulates its absence."""
    if os.environ.get("LSANDBOX_NO_MOUNT_SETATTR", "") in ("1", "true", "yes"):
        return False
    try:
        _sys.mount_setattr(-1, 0, recursive=False)
    except OSError as e:
        return e.errno != 38  # ENOSYS; EBADF here means it exists
    return True  # pragma: no cover


def _mount_points() -> tuple[str, ...]:
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            mp = line.split(b" ", 5)[4]
            out.append(mp.decode("unicode_escape").encode("latin-1").decode(errors="surrogateescape"))
    return tuple(dict.fromkeys(out))


def _still_canonical(path: str) -> None:
    """A rule's path was resolved when the policy was loaded; the view mounts it by path. A
    directory on it swapped for a symlink since (a sandbox of an earlier launch can, in a
    writable root, and an API caller may run one loaded policy many times) would put the
    step on the link's target: a writable clone of a place the policy keeps read-only. So
    the launch stops instead (one openat2 with RESOLVE_NO_SYMLINKS per existing path)."""
    import errno

    import landlock as ll

    from .._errors import SandboxError

    try:
        os.close(ll.open_rule_path(path))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SandboxError(f"{path}: a symlink is on this path now, which the policy resolved "
                               "when it was loaded: load the policy again") from None


def plan_view(policy: Policy, socket_dir: str, ro_binds: Sequence[str], private_tmpfs: Sequence[str],
              devices: Sequence[str] | None = None) -> MountView:
    """The mount view of ``policy`` (canonical paths; only paths that exist are mounted).
    ``devices``: /dev is made ``nodev`` but for these device files (where no Landlock rule
    keeps the host's device nodes closed); None leaves /dev as it is."""
    from ..policy import FsAccess

    fs = policy.filesystem
    notes: list[str] = []
    rules = {r.path: r.access for r in fs.rules}
    if fs.access(socket_dir) is not FsAccess.WRITE:
        rules[socket_dir] = FsAccess.WRITE
    for path in private_tmpfs:
        rules[path] = FsAccess.WRITE  # mounted fresh (TMPFS), not cloned

    def parent(path: str) -> FsAccess | None:
        best = None
        for k in rules:
            if k != path and _within(path, k) and (best is None or len(k) > len(best)):
                best = k
        return rules[best] if best is not None else None

    steps: list[tuple[str, str]] = []
    clones: list[str] = []
    proc_masks: list[str] = []
    policy_paths = {r.path for r in fs.rules}
    for path in sorted(rules):
        access = rules[path]
        if not os.path.lexists(path):
            continue  # nothing to mount; its parent's mount decides (and Landlock has no rule)
        if path in policy_paths:
            _still_canonical(path)
        up = parent(path)
        if path in private_tmpfs:
            steps.append((TMPFS, path))
        elif access is FsAccess.WRITE:
            if up is not FsAccess.WRITE and path != "/":
                steps.append((WRITE, path))
                clones.append(path)
        elif access is FsAccess.READ:
            if path in ro_binds:
                steps.append((READ_ONLY, path))
        elif up is not None and up is not FsAccess.DENY:
            below = [k for k in rules if k != path and _within(k, path) and rules[k] is not FsAccess.DENY]
            if below:
                notes.append(f"deny {path}: not masked in the mount view (it holds {below[0]}); "
                             "Landlock alone hides it")
            elif _within(path, "/proc") and path != "/proc":
                proc_masks.append(path)  # masked in the fresh procfs, once init has mounted it
            else:
                steps.append((MASK, path))
    root_writable = rules.get("/") is FsAccess.WRITE
    holds_dev = [p for p in clones if _within("/dev", p)]
    if holds_dev:
        notes.append(f"writable {holds_dev[0]} holds /dev: not nodev in the mount view")
    if root_writable:
        notes.append("/ is writable: the mount view makes nothing read-only outside carve-outs")
    classic = not mount_setattr_available()
    below_proc = [k for k in rules if _within(k, "/proc") and k != "/proc"]
    if below_proc:
        notes.append(f"rule below /proc ({below_proc[0]}): its Landlock rules are computed from the host's "
                     "procfs; in the sandbox's fresh /proc, entries they do not name are refused")
    return MountView(
        steps=tuple(steps), clones=tuple(clones), nodev=not holds_dev and not root_writable,
        readonly_root=not root_writable, devpts=os.path.isdir("/dev/pts"),
        proc=(MASK, "/proc") not in steps and os.path.isdir("/proc"), proc_masks=tuple(proc_masks),
        proc_writable=fs.access("/proc") is FsAccess.WRITE,
        classic=classic, mounts=_mount_points() if classic else (), notes=tuple(notes),
        devices=tuple(devices) if devices is not None and not holds_dev and not root_writable else None)


# --- in the child: syscalls only -------------------------------------------------------------

_KEPT = ((os.ST_RDONLY, _sys.MS_RDONLY), (os.ST_NOSUID, _sys.MS_NOSUID), (os.ST_NODEV, _sys.MS_NODEV),
         (os.ST_NOEXEC, _sys.MS_NOEXEC), (os.ST_NOATIME, _sys.MS_NOATIME),
         (os.ST_NODIRATIME, _sys.MS_NODIRATIME), (os.ST_RELATIME, _sys.MS_RELATIME))


def _remount(path: str, add: int) -> None:
    """Classic: add MS_* ``add`` to the mount at ``path``, keeping its other flags (a user
    namespace refuses to clear a locked one)."""
    try:
        flags = os.statvfs(path).f_flag
    except OSError as e:
        raise OSError(e.errno, f"statvfs {path}: {e.strerror}") from None
    keep = 0
    for st_flag, ms_flag in _KEPT:
        if flags & st_flag:
            keep |= ms_flag
    _sys.mount(None, path, None, _sys.MS_REMOUNT | _sys.MS_BIND | keep | add)


def _set(view: MountView, target: str | int, path: str, attr: int, ms: int) -> None:
    """``attr`` (MOUNT_ATTR_*) on the tree at ``target`` (a detached tree's fd, or ``path``
    once attached), recursively. Classic: per mount point, by path, after attaching."""
    if not view.classic:
        _sys.mount_setattr(target, attr)
        return
    if isinstance(target, int):
        return  # classic: done by path once attached (the caller calls again with the path)
    for mp in (path, *(m for m in view.mounts if m != path and _within(m, path))):
        _remount(mp, ms)


_PARKING = ("/mnt", "/media", "/srv", "/opt", "/boot", "/home", "/var/tmp", "/tmp", "/run", "/usr")


class _Stage:
    """A tmpfs holding the masks' empty directory and file, both mode 0000, attached for the
    time of the masking over a directory no step touches (kernels before 6.15 refuse to
    clone from a mount that is not attached in the caller's namespace: EINVAL), and
    detached again once the masks are in place (the clones do not depend on it). Nothing
    else runs in this mount namespace meanwhile, so the parking is never seen."""

    def __init__(self, avoid: tuple[str, ...]) -> None:
        self.fd = _sys.fs_mount("tmpfs", {"mode": "0700", "size": "4k"}, _ATTR_MASK & ~_sys.MOUNT_ATTR_RDONLY)
        self.parked = ""
        try:
            os.mkdir("d", 0, dir_fd=self.fd)
            os.close(os.open("f", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0, dir_fd=self.fd))
            for place in _PARKING:
                if (os.path.isdir(place) and not os.path.islink(place)
                        and not any(_within(a, place) or _within(place, a) for a in avoid)):
                    _sys.move_mount(self.fd, place)
                    self.parked = place
                    break
            else:
                raise OSError(2, "no directory to attach the masks' staging tmpfs to")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.parked:
            _sys.umount(self.parked, _MNT_DETACH)
            self.parked = ""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_MNT_DETACH = 2


def _mask(view: MountView, path: str, stage: _Stage) -> None:
    name = "d" if os.path.isdir(path) and not os.path.islink(path) else "f"
    fd = _sys.open_tree(name, _sys.OPEN_TREE_CLONE, dirfd=stage.fd)
    try:
        if not view.classic:
            _sys.mount_setattr(fd, _ATTR_MASK, recursive=False)
        _sys.move_mount(fd, path)
    finally:
        os.close(fd)
    if view.classic:
        _remount(path, _sys.MS_RDONLY | _sys.MS_NOSUID | _sys.MS_NODEV | _sys.MS_NOEXEC)


def _hide_devices(view: MountView, keep: Sequence[str]) -> None:
    """/dev as a ``nodev`` mount of its own (its submounts keep their flags), with the device
    files in ``keep`` bound back from clones taken before: opening any other device node
    answers EACCES. Where Landlock runs, its rules do this; without it a read-only mount
    does not stop a device from being opened for reading or writing."""
    kept: dict[str, int] = {}
    try:
        for node in keep:
            kept[node] = _sys.open_tree(node, _sys.OPEN_TREE_CLONE)
        fd = _sys.open_tree("/dev", _sys.OPEN_TREE_CLONE | _sys.AT_RECURSIVE)
        try:
            if not view.classic:
                _sys.mount_setattr(fd, _sys.MOUNT_ATTR_NODEV, recursive=False)
            _sys.move_mount(fd, "/dev")
        finally:
            os.close(fd)
        if view.classic:
            _remount("/dev", _sys.MS_NODEV)
        for node, fd in kept.items():
            _sys.move_mount(fd, node)
            if view.classic:  # not among view.mounts: made read-only here (the host's inode)
                _remount(node, _sys.MS_RDONLY)
    finally:
        for fd in kept.values():
            os.close(fd)


def apply_view(view: MountView, *, root: bool, userns: bool) -> None:
    """Build the view in this (new) mount namespace. Raises OSError naming the path."""
    clones = {}
    try:
        if view.devices is not None:
            _hide_devices(view, view.devices)
        for path in view.clones:
            fd = clones[path] = _sys.open_tree(path, _sys.OPEN_TREE_CLONE | _sys.AT_RECURSIVE)
            if view.nodev:
                _set(view, fd, path, _ATTR_WRITABLE, 0)
        if view.readonly_root:
            if view.classic:
                for mp in view.mounts:
                    _remount(mp, _sys.MS_RDONLY)
            else:
                _sys.mount_setattr("/", _sys.MOUNT_ATTR_RDONLY)
        stage: _Stage | None = None
        for kind, path in view.steps:
            if kind == WRITE:
                _sys.move_mount(clones[path], path)
                if view.nodev and view.classic:
                    _set(view, path, path, _ATTR_WRITABLE, _sys.MS_NOSUID | _sys.MS_NODEV)
            elif kind == READ_ONLY:
                fd = _sys.open_tree(path, _sys.OPEN_TREE_CLONE | _sys.AT_RECURSIVE)
                try:
                    _set(view, fd, path, _sys.MOUNT_ATTR_RDONLY, 0)
                    _sys.move_mount(fd, path)
                finally:
                    os.close(fd)
                if view.classic:
                    _set(view, path, path, _sys.MOUNT_ATTR_RDONLY, _sys.MS_RDONLY)
            elif kind == MASK:
                if stage is None:
                    stage = _Stage(tuple(p for _, p in view.steps))
                _mask(view, path, stage)
            elif kind == TMPFS:
                fd = _sys.fs_mount("tmpfs", {"mode": "1777"}, _ATTR_WRITABLE)
                try:
                    _sys.move_mount(fd, path)
                finally:
                    os.close(fd)
        if stage is not None:
            stage.close()
    except OSError as e:
        raise OSError(e.errno, f"mount view: {e.strerror}") from None
    finally:
        for fd in clones.values():
            os.close(fd)
    if view.devpts:
        private_devpts(root=root, userns=userns)


def private_devpts(*, root: bool, userns: bool) -> None:
    """A new devpts instance over /dev/pts, /dev/ptmx bound to its ptmx; the inherited terminal
    (a pty of the host's devpts, fd 0) bound over /dev/console so that it keeps a name."""
    console = None
    try:
        if os.isatty(0):
            name = os.readlink("/proc/self/fd/0")
            if (name.startswith("/dev/pts/") and os.path.exists("/dev/console")
                    and os.stat(name).st_rdev == os.fstat(0).st_rdev):
                console = _sys.open_tree(name, _sys.OPEN_TREE_CLONE)
    except OSError:
        pass  # no terminal, or not a host pty: nothing to keep a name for
    try:
        opts = {"ptmxmode": "0666", "mode": "0620"}
        if root and not userns:
            opts["gid"] = "5"  # tty (unmapped in a user namespace: left as the caller's)
        fd = _sys.fs_mount("devpts", opts, _sys.MOUNT_ATTR_NOSUID | _sys.MOUNT_ATTR_NOEXEC)
        try:
            _sys.move_mount(fd, "/dev/pts")
        finally:
            os.close(fd)
        if os.path.exists("/dev/ptmx") and not os.path.islink("/dev/ptmx"):  # a link to pts/ptmx: done
            fd = _sys.open_tree("/dev/pts/ptmx", _sys.OPEN_TREE_CLONE)
            try:
                _sys.move_mount(fd, "/dev/ptmx")
            finally:
                os.close(fd)
        if console is not None:
            _sys.move_mount(console, "/dev/console")
    except OSError as e:
        raise OSError(e.errno, f"private devpts: {e.strerror}") from None
    finally:
        if console is not None:
            os.close(console)


def fresh_proc(view: MountView) -> str | None:
    """In init (PID 1): a procfs of this PID namespace over /proc (read-only unless the policy
    lets the sandbox write /proc). In a user namespace the kernel refuses it when the host's
    /proc has masked parts (mount_too_revealing: a container runtime's /dev/null binds over
    /proc/kcore...): then /proc stays the enclosing one (read-only) and the returned note
    says so. Any other failure raises OSError."""
    if not view.proc:
        return None
    attrs = _sys.MOUNT_ATTR_NOSUID | _sys.MOUNT_ATTR_NODEV | _sys.MOUNT_ATTR_NOEXEC
    if not view.proc_writable:
        attrs |= _sys.MOUNT_ATTR_RDONLY
    try:
        fd = _sys.fs_mount("proc", {}, attrs)
    except OSError as e:
        if e.errno != 1:  # EPERM: mount_too_revealing
            raise OSError(e.errno, f"fresh procfs: {e.strerror}") from None
        return ("fresh procfs refused by the kernel (the host's /proc has masked parts): /proc "
                "shows the processes of the enclosing PID namespace")
    try:
        _sys.move_mount(fd, "/proc")
        if view.proc_masks:
            stage = _Stage(("/proc",))
            try:
                for path in view.proc_masks:
                    if os.path.lexists(path):
                        _mask(view, path, stage)
            finally:
                stage.close()
    except OSError as e:
        raise OSError(e.errno, f"fresh procfs: {e.strerror}") from None
    finally:
        os.close(fd)
    return None
