"""Seccomp filter A: the deny list, argument checks and the ``socket()`` domain filter.

Deny what is dangerous, not what is common. Codex users were hurt by filters that denied
``sendto`` (asyncio, Bun) and ``setsockopt`` (Chromium): neither is touched here. Denials
answer EPERM (EACCES for a network socket while the network is off and for a truncation
Landlock cannot see, ENOSYS for ``clone3`` and ``openat2`` so that libc and programs fall
back to ``clone``/``openat``, whose arguments we can inspect); a foreign architecture or an
x32 syscall number kills the process.

Argument widths: ``ioctl``'s request, ``socket()``'s domain, open flags and mode arguments
are 32-bit (``int``/``umode_t``) in the kernel, which ignores the upper half of the register.
Comparing all 64 bits would let ``0x1_00005412`` slip past a TIOCSTI check while the kernel
still runs TIOCSTI, so those compare the low 32 bits only (masks below ``1 << 32``).

Names: every name must exist on the architecture the filter is compiled for (the filter is
built with unknown names refused; a unit test compiles every variant for every architecture
``seccomp_bpf`` has tables for). Calls that exist only on some architectures are listed in
``ONLY_ON``, explicitly: a misspelling is a build error, never a silently dropped rule.

Files never carry set-id bits, and no device node is made (a root sandbox must not leave a
setuid-root binary or a raw disk node where other users find them): ``chmod``/``fchmod``/
``fchmodat``/``fchmodat2`` with S_ISUID or S_ISGID, ``open``/``openat``/``creat`` with
O_CREAT or O_TMPFILE and those bits, and ``mknod``/``mknodat`` of a character or block
device or with those bits are refused (EPERM). ``mkdir`` needs nothing: the kernel keeps
only the permission and sticky bits of its mode. Capabilities are gone too (``_caps``: no
CAP_MKNOD, CAP_FSETID) and Landlock grants no MAKE_CHAR/MAKE_BLOCK anywhere (``_plan``):
three layers. A side effect: ``tar``/``cp -p`` cannot restore set-id bits (setgid
directories included) in the sandbox; they report the failed chmod.

``openat2`` carries its flags and mode in a struct that a filter cannot read: it answers
ENOSYS, as on a kernel before 5.6, and glibc and the programs that use it fall back to
``openat``.

Truncation below Landlock ABI 3 (``truncate_guard``): Landlock ABI 1-2 does not handle
truncation and checks an open only by the file's access mode, so ``truncate(path)`` and an
``open`` with O_TRUNC but without write access (O_RDONLY|O_TRUNC truncates on Linux; so does
access mode 3) would empty files outside the writable roots. With the guard both are
refused (EACCES), everywhere: ``truncate(2)`` by path even inside the writable roots, where
``ftruncate`` on a descriptor opened for writing (what coreutils ``truncate`` does) keeps
working.

Inode flags: ``FS_IOC_SETFLAGS`` (and its 32-bit twin), ``FS_IOC_FSSETXATTR`` and the
``file_setattr`` syscall are refused everywhere. Without capabilities only the owner's flags
remain (no immutable/append-only: those need CAP_LINUX_IMMUTABLE), but Landlock has no right
for them and a filter cannot tell a file inside the writable roots from one outside, so
without namespaces (no read-only mount view) they would change files anywhere the command's
user owns; no build or agent workload sets inode flags, ``lsattr`` (the GET calls) works.
The same for the other owner-only inode changes a read-only descriptor allows
(``INODE_META_IOCTLS``: generation, fs-verity, fscrypt policies and keys, btrfs subvolumes
and snapshots): refused everywhere.

Other processes by pid (``pidns=False``: no PID namespace of the sandbox's own, as in a
container that refuses namespaces): ``prlimit64``, ``setpriority``, ``ioprio_set`` and the
``sched_set*`` calls act on any process of the command's uid, checked by uid alone (no
ptrace check, which Landlock scopes, and no signal, which Landlock's signal scope covers):
another process's ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` or ``RLIMIT_NOFILE`` set to zero kills or
cripples it, the supervisor and the agent that started the sandbox included. Without a PID
namespace these calls are allowed only on the caller itself (pid 0, ``PRIO_PROCESS``/
``IOPRIO_WHO_PROCESS`` with who 0) and refused (EPERM) on any other pid, the caller's own
threads by tid included (``pthread_setaffinity_np``, thread priorities: advisory calls whose
failure programs tolerate): a filter cannot tell a tid of the sandbox from one outside it.
``setrlimit``, ``nice``, ``taskset CMD`` and ``ionice CMD`` use pid 0. With a PID namespace
the kernel finds no pid outside the sandbox (ESRCH) and nothing is refused.

Reviewed against Docker's default profile (what it refuses a process without capabilities)
and Codex's Linux filter (ptrace, process_vm_*, io_uring; AF_VSOCK, which the ``socket()``
filter refuses here as every family but AF_UNIX/INET/INET6/NETLINK): added ``quotactl_fd``
and ``file_setattr`` (new calls the old list lacked), ``lsm_set_self_attr`` (sets the
LSM attributes Landlock guards at ``/proc/self/attr``), ``process_madvise`` (another
process's memory, like ``process_vm_*``), ``_sysctl`` (sysctl writes outside the /proc
files Landlock covers, on kernels before 5.5) and TIOCSETD (line disciplines: kernel attack
surface with a history of escapes). Not added, being common and harmless without
capabilities: the NUMA calls (``mbind``, ``set_mempolicy``, ``migrate_pages``, ``move_pages``:
other processes need CAP_SYS_NICE or ptrace access, which Landlock scoping refuses),
``name_to_handle_at``, ``modify_ldt``, ``listmount``/``statmount``.
"""

from __future__ import annotations

import errno
import functools

import seccomp_bpf as sb

# Always denied (EPERM). Each line says why.
DENIED: tuple[str, ...] = (
    # debugging/introspection of other processes (escape into the supervisor, fd theft)
    "ptrace", "process_vm_writev", "process_vm_readv", "pidfd_getfd", "kcmp", "process_madvise",
    # kernel attack surface with a history of escapes
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key",
    # filesystem topology: mounts would undo read-only carve-outs and Landlock
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "open_tree_attr", "mount_setattr",
    # namespaces
    "unshare", "setns",
    # the machine itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",  # (also keeps ctime honest:
    # _provenance dates planted sockets by it)
    "vhangup", "sethostname",
    "setdomainname", "lookup_dcookie", "nfsservctl", "fanotify_init",
    "open_by_handle_at",  # the "shocker" container escape
    # inode flags (see the module docstring) and LSM attributes Landlock guards in /proc
    "file_setattr", "lsm_set_self_attr",
    # on some architectures only (ONLY_ON)
    "iopl", "ioperm", "uselib", "_sysctl",
)

#: Calls that exist only on these architectures (legacy x86 calls that aarch64's generic
#: table never had). Any other name must exist everywhere.
ONLY_ON: dict[str, frozenset[str]] = {
    name: frozenset({"x86_64"})
    for name in ("iopl", "ioperm", "uselib", "_sysctl", "open", "creat", "chmod", "mknod")
}


def on(arch: str, name: str) -> bool:
    """Whether filter A has rules for ``name`` on ``arch``."""
    only = ONLY_ON.get(name)
    return only is None or arch in only


#: clone flags that create namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
#: NEWPID, NEWNET, NEWTIME).
CLONE_NS_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
TIOCSETD = 0x5423
#: inode flags: FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR
INODE_FLAG_IOCTLS = (0x40086602, 0x40046602, 0x401C5820)
#: other inode metadata an owner may change through a read-only descriptor (and so, without
#: namespaces, outside the writable roots): the generation (FS_IOC_SETVERSION and its 32-bit
#: twin, EXT4_IOC_SETVERSION and its twin), ext4's block-map migration (EXT4_IOC_MIGRATE),
#: fs-verity (FS_IOC_ENABLE_VERITY: the file is read-only for good), fscrypt
#: (FS_IOC_SET_ENCRYPTION_POLICY on an empty directory; FS_IOC_ADD/REMOVE_ENCRYPTION_KEY:
#: removing the user's key locks the user's encrypted files, even with namespaces), and
#: btrfs subvolumes (SNAP_CREATE, SUBVOL_CREATE and their v2, SNAP_DESTROY and its v2,
#: SUBVOL_SETFLAGS, SET_RECEIVED_SUBVOL and its 32-bit layout, which 64-bit kernels take
#: too: a snapshot made in any directory the user may write by DAC, Landlock not asked)
INODE_META_IOCTLS = (0x40087602, 0x40047602, 0x40086604, 0x40046604, 0x00006609, 0x40806685, 0x800C6613,
                     0xC0506617, 0xC0406618, 0xC0406619, 0x50009401, 0x5000940E, 0x50009417, 0x50009418,
                     0x5000940F, 0x5000943F, 0x4008941A, 0xC0C89425, 0xC0C09425)
#: user-notification ioctls (the workload never gets a listener; defense in depth)
SECCOMP_IOCTLS = (0xC0502100, 0xC0182101, 0x40082102, 0x80082102, 0x40182103, 0x40082104)
DENIED_IOCTLS = (TIOCSTI, TIOCLINUX, TIOCSETD, *SECCOMP_IOCTLS, *INODE_FLAG_IOCTLS, *INODE_META_IOCTLS)
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
LOW32 = 0xFFFFFFFF
# open flags (the same values on x86_64 and aarch64) and mode bits
O_RDONLY, O_ACCMODE, O_CREAT, O_TRUNC = 0, 3, 0o100, 0o1000
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE: O_TMPFILE without O_DIRECTORY, which differs per arch
S_ISUID, S_ISGID = 0o4000, 0o2000
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000


SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
#: Calls that act on a process named by its pid in the first argument (``pidns=False``).
BY_PID = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr")
#: ... and by (which, who): PRIO_PROCESS and IOPRIO_WHO_PROCESS name one process.
BY_WHICH_WHO = (("setpriority", 0), ("ioprio_set", 1))


def filter_a_rules(arch: str, *, network: bool, unix_dgram: bool = False,
                   truncate_guard: bool = False, netlink: bool = True, pidns: bool = True) -> list[sb.Rule]:
    """The rules for ``arch``. ``unix_dgram``: allow AF_UNIX datagram sockets. They are refused
    otherwise because every datagram may name its own destination (sendto/sendmsg/sendmmsg,
    even on a connected socket), in user memory a filter cannot read and the broker could
    only re-check racily; stream and seqpacket sockets ignore a destination once connected,
    so brokering ``connect`` covers them completely. ``truncate_guard``: Landlock below ABI 3
    (see the module docstring). ``netlink=False`` (the proxied network of
    ``network.domains``): TCP/IP sockets, which can only reach the proxy, but no netlink.
    ``pidns=False``: no PID namespace; calls on other processes by pid refused (see the
    module docstring)."""
    eperm = sb.errno(errno.EPERM)
    rules = [sb.Rule(name, eperm) for name in DENIED if on(arch, name)]
    if not unix_dgram:
        # only stream and seqpacket AF_UNIX sockets (SOCK_RAW on AF_UNIX is a datagram socket too)
        for call in ("socket", "socketpair"):
            for kind in (SOCK_STREAM, SOCK_SEQPACKET):
                rules.append(sb.Rule(call, sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, AF_UNIX),
                                                      sb.Arg(1).masked_eq(0xF, kind))))
            rules.append(sb.Rule(call, sb.errno(errno.EACCES), (sb.Arg(0).masked_eq(LOW32, AF_UNIX),)))
    rules += [
        sb.Rule("clone", sb.ALLOW, (sb.Arg(0).masked_eq(CLONE_NS_MASK, 0),)),
        sb.Rule("clone", eperm),
        sb.Rule("clone3", sb.errno(errno.ENOSYS)),
        sb.Rule("personality", sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, 0),)),
        sb.Rule("personality", sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, 0xFFFFFFFF),)),
        sb.Rule("personality", eperm),
        *(sb.Rule("ioctl", eperm, (sb.Arg(1).masked_eq(LOW32, c),)) for c in DENIED_IOCTLS),
        # seccomp(SECCOMP_SET_MODE_FILTER, flags with NEW_LISTENER): no supervisor of its own
        sb.Rule("seccomp", eperm, (sb.Arg(0).masked_eq(LOW32, 1), sb.Arg(1).masked_eq(8, 8))),
        sb.Rule("socket", sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, AF_UNIX),)),
    ]
    if network:
        rules += [sb.Rule("socket", sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, d),))
                  for d in (AF_INET, AF_INET6, *((AF_NETLINK,) if netlink else ()))]
        rules.append(sb.Rule("socket", sb.errno(errno.EAFNOSUPPORT)))
    else:
        rules += [sb.Rule("socket", sb.errno(errno.EACCES), (sb.Arg(0).masked_eq(LOW32, d),))
                  for d in (AF_INET, AF_INET6)]
        rules.append(sb.Rule("socket", sb.errno(errno.EAFNOSUPPORT)))
    if not pidns:
        rules += _process_rules()
    return rules + _file_rules(arch, truncate_guard)


def _process_rules() -> list[sb.Rule]:
    """Without a PID namespace: the calls of :data:`BY_PID` and :data:`BY_WHICH_WHO` on the
    caller itself only (the pid and who arguments are ``pid_t``/``int``: low 32 bits)."""
    eperm = sb.errno(errno.EPERM)
    rules = []
    for call in BY_PID:
        rules += [sb.Rule(call, sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, 0),)), sb.Rule(call, eperm)]
    for call, which in BY_WHICH_WHO:
        rules += [sb.Rule(call, sb.ALLOW, (sb.Arg(0).masked_eq(LOW32, which), sb.Arg(1).masked_eq(LOW32, 0))),
                  sb.Rule(call, eperm)]
    return rules


def _file_rules(arch: str, truncate_guard: bool) -> list[sb.Rule]:
    """Set-id bits, device nodes, ``openat2``, and truncation below Landlock ABI 3. Each call
    allows its common case first (a mode without set-id bits; an open that neither creates
    nor truncates: one masked compare for the hottest syscall), then refuses the rest."""
    eperm, eacces = sb.errno(errno.EPERM), sb.errno(errno.EACCES)
    no_setid = (S_ISUID | S_ISGID, 0)
    rules = []
    for call, mode_arg in (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("creat", 1)):
        if on(arch, call):
            rules += [sb.Rule(call, sb.ALLOW, (sb.Arg(mode_arg).masked_eq(*no_setid),)), sb.Rule(call, eperm)]
    makes = O_CREAT | O_TMPFILE_BIT
    for call, flags_arg in (("open", 1), ("openat", 2)):
        if not on(arch, call):
            continue
        flags, mode = sb.Arg(flags_arg), sb.Arg(flags_arg + 1)
        rules.append(sb.Rule(call, sb.ALLOW, (flags.masked_eq(makes | O_TRUNC, 0),)))
        if truncate_guard:  # not opened for writing, truncated all the same
            rules += [sb.Rule(call, eacces, (flags.masked_eq(O_TRUNC | O_ACCMODE, O_TRUNC | acc),))
                      for acc in (O_RDONLY, O_ACCMODE)]
        rules += [sb.Rule(call, sb.ALLOW, (mode.masked_eq(*no_setid),)),
                  sb.Rule(call, sb.ALLOW, (flags.masked_eq(makes, 0),)),  # the mode is not used
                  sb.Rule(call, eperm)]
    for call, mode_arg in (("mknod", 1), ("mknodat", 2)):
        if on(arch, call):
            mode = sb.Arg(mode_arg)
            rules += [*(sb.Rule(call, eperm, (mode.masked_eq(S_IFMT, kind),)) for kind in (S_IFCHR, S_IFBLK)),
                      sb.Rule(call, sb.ALLOW, (mode.masked_eq(*no_setid),)), sb.Rule(call, eperm)]
    rules.append(sb.Rule("openat2", sb.errno(errno.ENOSYS)))
    if truncate_guard:
        rules.append(sb.Rule("truncate", eacces))
    return rules


@functools.cache  # pure: the generator, explain and the tests ask for the same variants often
def build_filter_a(arch: str, *, network: bool, unix_dgram: bool = False,
                   truncate_guard: bool = False, netlink: bool = True, pidns: bool = True) -> sb.Program:
    """Compiled with unknown names refused (``skip_unknown`` off): see the module docstring."""
    rules = filter_a_rules(arch, network=network, unix_dgram=unix_dgram, truncate_guard=truncate_guard,
                           netlink=netlink, pidns=pidns)
    return sb.compile_filter(sb.Filter(arch, tuple(rules), sb.ALLOW))
