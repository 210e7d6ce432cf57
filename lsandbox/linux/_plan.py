"""Policy -> LinuxPlan: everything the child needs, computed in the supervisor before fork.

Pure apart from reading the filesystem (existence of carve-outs, directory listings for
split rules), so it is unit-testable and the child does only syscalls.

Read-only carve-outs (``.git`` inside a writable workspace) are enforced by a read-only bind
mount when a mount namespace is available: Landlock alone would have to split the writable
root, and new top-level files there would then be refused (fail closed). Without namespaces
that is exactly what happens, and ``explain`` says so. A carve-out that does not exist at
launch has nothing to protect and is skipped (creating it later is not prevented on Linux).
"""

from __future__ import annotations

import os

import landlock as ll
import seccomp_bpf as sb
from lsandbox_records import Record, field

from ..policy import DEVICE_FILES_RW, FsAccess, Policy, SocketAccess
from ..policy._longest import PathTable
from ._features import Features, wait_killable_available
from ._filters import filter_a_bytes as _filter_a
from ._filters import filter_b_bytes as _filter_b
from ._mount_view import MountView, plan_view
from ._netns import wanted as netns_wanted
from ._unix_rules import resolve_unix_rules

# Landlock rights are plain ints here (``landlock``'s FS_*/NET_*/SCOPE_* bits, equal to its IntFlag
# members): the launch path creates no enum class and the child does no flag arithmetic.
_DEV_RW = ll.FS_READ_FILE | ll.FS_WRITE_FILE | ll.FS_TRUNCATE | ll.FS_IOCTL_DEV


class LinuxPlan(Record):
    """What the child executes; frozen: every decision is made here, before the fork."""

    policy: Policy
    socket_dir: str
    abi: int
    handled_fs: int
    handled_net: int
    scoped: int
    landlock_rules: tuple[tuple[str, int], ...]
    ro_binds: tuple[str, ...]
    private_tmpfs: tuple[str, ...]
    filter_a: bytes | None  # encoded; None: sent by the supervisor after fork (filter_a_bytes)
    filter_b: bytes | None  # encoded; None: sent by the supervisor after fork (filter_b_bytes)
    namespaces: bool
    netns: bool  # the sandbox's own network namespace (network off; see _netns)
    datagrams: bool
    wait_killable: bool
    notes: tuple[str, ...] = ()
    view: MountView | None = None  # with a mount namespace: the read-only view (_mount_view)
    report_refusals: bool = False  # filter A/B variants reporting socket() refusals (_refusals)
    # The proxied network (network.domains): the port of the proxy's listener in the
    # sandbox's network namespace (0: no proxy), and Landlock's TCP port rules.
    proxy_port: int = 0
    net_ports: tuple[tuple[int, int], ...] = ()
    # Without namespaces: directories Landlock had to split (_split); creation there is
    # brokered (_pathops), filter B trapping the creating calls.
    split: tuple[str, ...] = ()
    # The Landlock ruleset of the above, built here (no syscall: those happen in the child's
    # restrict_self), so that the child does no flag arithmetic between fork and exec.
    ruleset: ll.RawRuleset | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.ruleset is None:
            rs = ll.RawRuleset(ll.abi_version(self.abi), self.handled_fs, self.handled_net, self.scoped)
            for path, access in self.landlock_rules:
                rs.add_path(path, access)
            for port, net_access in self.net_ports:
                rs.add_net_port(port, net_access)
            object.__setattr__(self, "ruleset", rs)


def _merge_trees(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Two longest-match trees over different rights as one: at every key of either, the
    union of what each tree grants there (exact, since no key of either lies in between)."""
    ta, tb = PathTable(a), PathTable(b)
    return {k: (ta.get(k) or 0) | (tb.get(k) or 0) for k in {*a, *b}}


#: Handled (so denied) but granted nowhere: no device node is made anywhere, on any ABI (also
#: refused by filter A and by the missing CAP_MKNOD; a block node of a disk is the disk).
NEVER_GRANTED = ll.FS_MAKE_CHAR | ll.FS_MAKE_BLOCK


def fs_rights(access: FsAccess, abi: int) -> int:
    if access is FsAccess.WRITE:
        return ll.FS_READ | (ll.fs_write(abi) & ~NEVER_GRANTED)
    if access is FsAccess.READ:
        return ll.FS_READ
    return 0


def _no_host_devices(policy: Policy, rules: dict[str, int], read: int) -> None:
    """Reading "everything" means files, not the machine's device nodes: read rights inherited
    from an ancestor of /dev (``:workspace`` reads ``/``) would let a root command (no
    capability needed for a 0600 root node) read /dev/vcs* (the consoles' screens) and
    /dev/input/*, and, below Landlock ABI 5 (no IOCTL_DEV), get a userfaultfd from
    /dev/userfaultfd (the syscall filter A refuses), VMs from /dev/kvm, loop devices from
    /dev/loop-control. /dev keeps listing and the DEVICE_FILES_RW their own rules; a policy
    rule naming /dev or a path below it decides as written."""
    rule = policy.filesystem.rule_for("/dev")
    if rule is None or rule.access is not FsAccess.READ or rule.path == "/dev" or not os.path.isdir("/dev"):
        return
    rules["/dev"] = read & ~ll.FS_READ_FILE


def _devices_kept(policy: Policy) -> tuple[str, ...] | None:
    """Without Landlock, what :func:`_no_host_devices` leaves out falls to the mount view: /dev
    becomes ``nodev`` but for these device files (a read-only mount alone does not stop
    opening a device node). None: /dev stays as it is (a policy rule names /dev or a path
    below it, or /dev does not inherit plain read access)."""
    rule = policy.filesystem.rule_for("/dev")
    if rule is None or rule.access is not FsAccess.READ or rule.path == "/dev" or not os.path.isdir("/dev"):
        return None
    if any(r.path.startswith("/dev/") for r in policy.filesystem.rules):
        return None
    devpts = os.path.isdir("/dev/pts")  # then the private devpts provides /dev/ptmx
    return tuple(d for d in DEVICE_FILES_RW
                 if d != "/dev/pts" and not (devpts and d == "/dev/ptmx") and os.path.exists(d)
                 and not os.path.islink(d))


def filter_a_bytes(plan: LinuxPlan) -> bytes:
    """Filter A of ``plan``, encoded (precompiled: ``_filters``)."""
    return _filter_a(sb.native_arch(), network=plan.policy.network.enabled, unix_dgram=plan.datagrams,
                     truncate_guard=truncate_guard(plan.abi), report=plan.report_refusals,
                     netlink=not plan.proxy_port, pidns=plan.namespaces)


def filter_b_bytes(plan: LinuxPlan) -> bytes:
    """Filter B of ``plan``, encoded (precompiled: ``_filters``)."""
    return _filter_b(sb.native_arch(), network=plan.policy.network.enabled, datagrams=plan.datagrams,
                     report=plan.report_refusals, paths=bool(plan.split), meta=not plan.namespaces)


def truncate_guard(abi: int) -> bool:
    """Filter A refuses truncation Landlock cannot see: it handles truncate from ABI 3."""
    return abi < 3


def build_plan(policy: Policy, socket_dir: str, feats: Features, *, filter_a: bool = True,
               filter_b: bool = True, report_refusals: bool = False) -> LinuxPlan:
    """``filter_a=False``: leave ``filter_a`` None; the launcher sends it (``filter_a_bytes``)
    to the child after the fork, which installs it last. ``filter_b=False``: the same for
    filter B (``filter_b_bytes``), sent before A: the supervisor then loads the filter table
    while the child sets up its namespaces, not before the fork.
    ``report_refusals``: the filter variants that report refused ``socket()`` calls
    through the broker (``_refusals``), when denials are asked for."""
    abi = feats.landlock_abi
    arch = sb.native_arch()
    rules: dict[str, int] = {}
    ro_binds: list[str] = []
    notes: list[str] = []
    carve = set(policy.filesystem.read_only)
    for r in policy.filesystem.rules:
        rights = fs_rights(r.access, abi)
        if r.path in carve:
            if not os.path.lexists(r.path):
                notes.append(f"read-only {r.path}: does not exist at launch, nothing to protect")
                continue
            if feats.namespaces:
                ro_binds.append(r.path)
                parent = policy.filesystem.rule_for(os.path.dirname(r.path) or "/")
                rights = fs_rights(parent.access if parent else FsAccess.READ, abi)
        rules[r.path] = rights
    read = ll.FS_READ
    for dev in DEVICE_FILES_RW:
        if os.path.exists(dev):
            rules[dev] = rules.get(dev, 0) | read | _DEV_RW
    _no_host_devices(policy, rules, read)
    rules[socket_dir] = fs_rights(FsAccess.WRITE, abi)
    # POSIX shared memory and semaphores (Python multiprocessing, Chromium) need a writable
    # /dev/shm; with a mount namespace each sandbox gets its own empty one. Without, the
    # container's /dev/shm is writable, shared with its other processes (_without_namespaces).
    private_tmpfs = ["/dev/shm"] if feats.namespaces and os.path.isdir("/dev/shm") else []
    for path in private_tmpfs:
        rules[path] = fs_rights(FsAccess.WRITE, abi)
    if not feats.namespaces and os.path.isdir("/dev/shm"):
        rules[os.path.realpath("/dev/shm")] = fs_rights(FsAccess.WRITE, abi)
    split: tuple[str, ...] = ()
    if not feats.namespaces:  # (a mount namespace carries carve-outs: nothing is split)
        from ._split import split_dirs

        split = split_dirs(rules)
    view = plan_view(policy, socket_dir, ro_binds, private_tmpfs,
                     devices=_devices_kept(policy) if abi == 0 else None) if feats.namespaces else None
    if view is not None:
        notes.extend(view.notes)
    handled_fs = ll.fs_all(abi)  # RESOLVE_UNIX included from ABI 9
    unix = resolve_unix_rules(policy, socket_dir, abi)
    if unix:  # ABI >= 9: the kernel checks pathname AF_UNIX too, under the broker
        rules = _merge_trees(rules, unix)
    # AF_UNIX datagrams name their destination per message (sendto/sendmsg/sendmmsg). When the
    # policy allows some path, the broker performs those sends (filter B brokers sendmsg);
    # otherwise nothing outside could receive them anyway and AF_UNIX datagram sockets are
    # refused outright, so sendmsg stays free of notifications.
    net = policy.network
    datagrams = net.dangerously_allow_all_unix_sockets or any(
        r.access is SocketAccess.ALLOW for r in net.unix_sockets)
    handled_net = 0 if policy.network.enabled else ll.net_all(abi)
    proxied = net.proxied
    net_ports: list[tuple[int, int]] = []
    if proxied and not net.allow_local_binding:
        # TCP only to the proxy's port (the broker performs connects, and checks the same; the
        # network namespace has nothing but loopback anyway). allow_local_binding lets the
        # command listen and connect on its own loopback: the namespace alone confines that.
        handled_net = ll.net_all(abi)
        if handled_net:
            net_ports.append((net.proxy_port, ll.NET_CONNECT_TCP))
    return LinuxPlan(
        policy=policy,
        socket_dir=socket_dir,
        abi=abi,
        handled_fs=handled_fs,
        handled_net=handled_net,
        scoped=ll.scope_all(abi),
        landlock_rules=tuple(ll.plan_raw_path_rules(rules)),
        ro_binds=tuple(ro_binds),
        private_tmpfs=tuple(private_tmpfs),
        filter_a=(_filter_a(arch, network=policy.network.enabled, unix_dgram=datagrams,
                            truncate_guard=truncate_guard(abi), report=report_refusals, netlink=not proxied,
                            pidns=feats.namespaces)
                  if filter_a else None),
        filter_b=(_filter_b(arch, network=policy.network.enabled, datagrams=datagrams,
                            report=report_refusals, paths=bool(split), meta=not feats.namespaces)
                  if filter_b else None),
        namespaces=feats.namespaces,
        netns=feats.namespaces and (proxied or netns_wanted(net.enabled, net.dangerously_allow_all_unix_sockets)),
        datagrams=datagrams,
        wait_killable=wait_killable_available(),
        notes=tuple(notes),
        view=view,
        report_refusals=report_refusals,
        proxy_port=net.proxy_port if proxied else 0,
        net_ports=tuple(net_ports),
        split=split,
    )
