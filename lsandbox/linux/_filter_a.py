"""Seccomp filter A: the deny list, argument checks and the ``socket()`` domain filter.

Deny what is dangerous, not what is common. Codex users were hurt by filters that denied
``sendto`` (asyncio, Bun) and ``setsockopt`` (Chromium): neither is touched here. Denials
answer EPERM (EACCES for a network socket while the network is off, ENOSYS for ``clone3``
so libc falls back to ``clone``, whose flags we can inspect); a foreign architecture or an
x32 syscall number kills the process.

Argument widths: ``ioctl``'s request and ``socket()``'s domain are 32-bit in the kernel,
which ignores the upper half of the register. Comparing all 64 bits would let
``0x1_00005412`` slip past a TIOCSTI check while the kernel still runs TIOCSTI, so those
compare the low 32 bits only (``masked_eq(0xFFFFFFFF, ...)``).
"""

from __future__ import annotations

import errno
import functools

import seccomp_bpf as sb

# Always denied (EPERM). Each line says why.
DENIED: tuple[str, ...] = (
    # debugging/introspection of other processes (escape into the supervisor, fd theft)
    "ptrace", "process_vm_writev", "process_vm_readv", "pidfd_getfd", "kcmp",
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
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_path", "syslog",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",  # (also keeps ctime honest:
    # _provenance dates planted sockets by it)
    "iopl", "ioperm", "vhangup", "sethostname",
    "setdomainname", "lookup_dcookie", "uselib", "nfsservctl", "fanotify_init",
    "open_by_handle_at",  # the "shocker" container escape
)

#: clone flags that create namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
#: NEWPID, NEWNET, NEWTIME).
CLONE_NS_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
#: user-notification ioctls (the workload never gets a listener; defense in depth)
SECCOMP_IOCTLS = (0xC0502100, 0xC0182101, 0x40082102, 0x80082102, 0x40182103, 0x40082104)
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
LOW32 = 0xFFFFFFFF


SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5


def filter_a_rules(*, network: bool, unix_dgram: bool = False, netlink: bool = True) -> list[sb.Rule]:
    """``netlink=False`` (the proxied network of ``network.domains``): TCP/IP sockets, which
    can only reach the proxy, but no netlink. ``unix_dgram``: allow AF_UNIX datagram sockets. They are refused otherwise because every
    datagram may name its own destination (sendto/sendmsg/sendmmsg, even on a connected
    socket), in user memory a filter cannot read and the broker could only re-check racily;
    stream and seqpacket sockets ignore a destination once connected, so brokering
    ``connect`` covers them completely."""
    eperm = sb.errno(errno.EPERM)
    rules = [sb.Rule(name, eperm) for name in DENIED]
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
        sb.Rule("ioctl", eperm, (sb.Arg(1).masked_eq(LOW32, TIOCSTI),)),
        sb.Rule("ioctl", eperm, (sb.Arg(1).masked_eq(LOW32, TIOCLINUX),)),
        *(sb.Rule("ioctl", eperm, (sb.Arg(1).masked_eq(LOW32, c),)) for c in SECCOMP_IOCTLS),
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
    return rules


@functools.cache  # a pure function of three values: a warm API caller compiles each once
def build_filter_a(arch: str, *, network: bool, unix_dgram: bool = False, netlink: bool = True) -> sb.Program:
    rules = filter_a_rules(network=network, unix_dgram=unix_dgram, netlink=netlink)
    return sb.compile_filter(sb.Filter(arch, rules, sb.ALLOW, skip_unknown=True))
