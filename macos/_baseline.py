"""The allowances every sandboxed program gets on macOS, grouped by purpose.

Under ``(deny default)`` nothing works until it is allowed: not ``fork``, not a terminal, not a
name lookup. Each :class:`Group` below is one purpose with the rules it needs; docs/macos.md
has the table that compares every group with Codex's Seatbelt policies and sandbox-runtime's
profile, and states where we differ on purpose. The unit tests pin each group.

Placement matters (Seatbelt: the last matching filtered rule wins): :data:`HEAD` goes before
the filesystem rules, so a policy's own deny rules can still override what it allows;
:func:`devices` and :func:`terminals` go after them, because every program needs
``/dev/null`` whatever the policy says about ``/dev`` (the Linux backend adds the same devices
to every policy). Nothing here names a user path except the caller's own terminal, which the
runner passes in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._sbpl import List, Regex, Str, global_name, literal, sexp, subpath, sysctl_name, sysctl_prefix


@dataclass(frozen=True)
class Group:
    name: str
    purpose: str
    rules: tuple[List, ...]


def _mach(*names: str) -> List:
    return sexp("allow", "mach-lookup", *(global_name(n) for n in names))


_SAME_SANDBOX = sexp("target", "same-sandbox")

#: sysctl names programs read at start (CPU count and features, page size, OS version) and
#: the per-process ones ``ps``/libproc use for the caller's own processes. Not listed, so
#: denied: ``kern.proc.all`` (every process on the machine) and anything writable.
SYSCTL_READ_NAMES: tuple[str, ...] = (
    "hw.activecpu", "hw.busfrequency_compat", "hw.byteorder", "hw.cacheconfig",
    "hw.cachelinesize_compat", "hw.cpufamily", "hw.cpufrequency", "hw.cpufrequency_compat",
    "hw.cputype", "hw.l1dcachesize_compat", "hw.l1icachesize_compat", "hw.l2cachesize_compat",
    "hw.l3cachesize_compat", "hw.logicalcpu", "hw.logicalcpu_max", "hw.machine", "hw.memsize",
    "hw.model", "hw.ncpu", "hw.nperflevels", "hw.packages", "hw.pagesize", "hw.pagesize_compat",
    "hw.physicalcpu", "hw.physicalcpu_max", "hw.tbfrequency_compat", "hw.vectorunit",
    "kern.argmax", "kern.bootargs", "kern.hostname", "kern.maxfiles", "kern.maxfilesperproc",
    "kern.maxproc", "kern.ngroups", "kern.osproductversion", "kern.osrelease", "kern.ostype",
    "kern.osvariant_status", "kern.osversion", "kern.secure_kernel", "kern.tcsm_available",
    "kern.tcsm_enable", "kern.usrstack64", "kern.version", "kern.willshutdown",
    "machdep.cpu.brand_string", "machdep.ptrauth_enabled", "security.mac.lockdown_mode_state",
    "sysctl.proc_cputype", "vm.loadavg",
)
SYSCTL_READ_PREFIXES: tuple[str, ...] = (
    "hw.optional.", "hw.perflevel", "kern.proc.pgrp.", "kern.proc.pid.", "machdep.cpu.",
    "net.routetable.",
)
#: Reads that the kernel classifies as writes because the caller passes a buffer.
SYSCTL_WRITE_NAMES: tuple[str, ...] = ("kern.grade_cputype", "kern.tcsm_enable")

HEAD: tuple[Group, ...] = (
    Group("process", "run programs, fork, and signal or inspect only processes of this sandbox", (
        sexp("allow", "process-exec"),
        sexp("allow", "process-fork"),
        sexp("allow", "signal", _SAME_SANDBOX),
        sexp("allow", "process-info*", _SAME_SANDBOX),
    )),
    Group("sysctl", "an allowlist of sysctls (CPU, memory, OS version); Java and V8 read two "
          "through sysctl writes", (
        sexp("allow", "sysctl-read", *(sysctl_name(n) for n in SYSCTL_READ_NAMES),
             *(sysctl_prefix(p) for p in SYSCTL_READ_PREFIXES)),
        sexp("allow", "sysctl-write", *(sysctl_name(n) for n in SYSCTL_WRITE_NAMES)),
    )),
    Group("mach-host", "host_processor_info(): Node's os.cpus() is empty without it", (
        sexp("allow", "mach-host*"),
    )),
    Group("posix-ipc", "POSIX semaphores (Python multiprocessing's SemLock) and shared memory", (
        sexp("allow", "ipc-posix-sem"),
        sexp("allow", "ipc-posix-shm*"),
    )),
    Group("preferences", "read user defaults (CFPreferences) through cfprefsd", (
        sexp("allow", "user-preference-read"),
        _mach("com.apple.cfprefsd.daemon", "com.apple.cfprefsd.agent"),
        sexp("allow", "mach-lookup", sexp("local-name", Str("com.apple.cfprefsd.agent"))),
    )),
    Group("system-services", "user and group lookup, logging, notifications, power "
          "assertions, the per-user temp and cache directories", (
        _mach("com.apple.system.opendirectoryd.libinfo",
              "com.apple.system.opendirectoryd.membership",
              "com.apple.system.DirectoryService.libinfo_v1",
              "com.apple.system.logger", "com.apple.logd",
              "com.apple.system.notification_center",
              "com.apple.PowerManagement.control",
              "com.apple.bsd.dirhelper"),
        sexp("allow", "iokit-open", sexp("iokit-registry-entry-class", Str("RootDomainUserClient"))),
        sexp("allow", "network-outbound",
             sexp("remote", "unix-socket", sexp("path-literal", Str("/private/var/run/syslog")))),
    )),
    Group("unix-socket-create", "create AF_UNIX sockets (connect and bind are decided by the "
          "socket rules)", (
        sexp("allow", "system-socket", sexp("socket-domain", "AF_UNIX")),
    )),
)

#: Device files with the operations a program performs on them.
_DEV_RW_IOCTL = ("file-read*", "file-write-data", "file-ioctl")
_TTYS = Regex(r"^/dev/ttys[0-9]+$")


def devices() -> Group:
    return Group("devices", "the device files every program uses (these exist on macOS; "
                 "/dev/pts and /dev/full do not)", (
        sexp("allow", *_DEV_RW_IOCTL, literal("/dev/null"), literal("/dev/zero"),
             literal("/dev/random"), literal("/dev/urandom"), literal("/dev/dtracehelper")),
        sexp("allow", "file-read*", literal("/dev/autofs_nowait")),
        sexp("allow", "file-read-data", "file-write-data", "file-read-metadata", subpath("/dev/fd")),
        sexp("allow", "file-read*", "file-write-data", literal("/dev/stdin"), literal("/dev/stdout"),
             literal("/dev/stderr")),
        sexp("allow", "file-read-metadata", literal("/dev"), subpath("/dev")),
    ))


def terminals(own_ttys: tuple[str, ...] = (), deny_tail: tuple[List, ...] = ()) -> Group:
    """Pseudo-terminals opened inside the sandbox carry Seatbelt's pty extension; the
    caller's own terminal (``own_ttys``, found by the runner) is allowed by name. Other
    terminals of the same user are closed even where the policy reads everything (no reading
    another session's keystrokes; the Linux backend mounts a private devpts for the same
    reason). ``deny_tail``: the run's ``(with message ...)`` modifier for the deny."""
    rules = [
        # every terminal first (the policy may read everything), then the allows below
        sexp("deny", "file-read*", "file-write*", sexp("regex", _TTYS), *deny_tail),
        sexp("allow", "pseudo-tty"),
        sexp("allow", "file-read*", "file-write*", "file-ioctl", literal("/dev/ptmx")),
        sexp("allow", "file-read*", "file-write-data", "file-ioctl",
             sexp("require-all", sexp("regex", _TTYS), sexp("extension", Str("com.apple.sandbox.pty")))),
        sexp("allow", *_DEV_RW_IOCTL, literal("/dev/tty")),
    ]
    if own_ttys:
        rules.append(sexp("allow", *_DEV_RW_IOCTL, *(literal(t) for t in own_ttys)))
    return Group("terminals", "openpty(), /dev/tty, the caller's own terminal", tuple(rules))


def stdio_files(files: tuple[tuple[str, bool], ...]) -> Group:
    """Files behind the descriptors the caller gives the command (``cmd > build.log``)."""
    rules = []
    for path, writable in files:
        ops = ("file-read*", "file-write-data") if writable else ("file-read*",)
        rules.append(sexp("allow", *ops, literal(path)))
    return Group("stdio-files", "the files the caller redirected the command's descriptors to",
                 tuple(rules))


def network() -> tuple[Group, ...]:
    """What ``network.enabled`` adds: IP sockets, name resolution and TLS."""
    return (
        Group("ip", "TCP and UDP to and from any address", (
            sexp("allow", "network-outbound", sexp("remote", "ip")),
            sexp("allow", "network-inbound", sexp("local", "ip")),
            sexp("allow", "network-bind", sexp("local", "ip")),
            sexp("allow", "system-socket"),
        )),
        Group("dns", "getaddrinfo() asks mDNSResponder over its socket; resolver settings "
              "come from configd", (
            sexp("allow", "network-outbound",
                 sexp("remote", "unix-socket", sexp("path-literal", Str("/private/var/run/mDNSResponder")))),
            _mach("com.apple.SystemConfiguration.DNSConfiguration",
                  "com.apple.SystemConfiguration.configd", "com.apple.networkd"),
        )),
        Group("tls", "certificate trust evaluation (Security.framework): trustd, ocspd, "
              "SecurityServer", (
            _mach("com.apple.trustd", "com.apple.trustd.agent", "com.apple.ocspd",
                  "com.apple.SecurityServer"),
        )),
    )


def explain_lines(policy: object) -> list[str]:
    """What ``lsandbox explain --backend macos`` adds below the filesystem rules: what every
    profile allows besides the policy, and how carve-outs are kept in place."""
    return [
        "  rw    /dev/null, /dev/zero, /dev/random, /dev/urandom, /dev/dtracehelper, /dev/fd, "
        "/dev/tty, /dev/ptmx, ptys opened in the sandbox, the caller's own terminal    [always] "
        "-> device files programs need (other sessions' terminals denied)",
        "  base  " + ", ".join(g.name for g in HEAD) + "    [always] -> see docs/macos.md",
        "  note  read-only and denied paths: denied as literal and subpath (cannot be created), "
        "the directories above them cannot be renamed or removed",
    ]
