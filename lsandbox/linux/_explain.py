"""What enforces each part of a policy on Linux, for ``lsandbox explain`` (the CLI lays it
out; ``--backend linux`` works on any platform, the machine-specific lines only here)."""

from __future__ import annotations

from .._backend import Explanation
from ..policy import DEVICE_FILES_RW, Policy

FILESYSTEM = {"read": "Landlock (read rights)", "write": "Landlock (read+write rights)",
              "deny": "Landlock (no rights; siblings enumerated: inside a writable root, nothing can "
                      "be created or removed directly in the directories above it, but through the "
                      "path-operation broker without namespaces)"}
READ_ONLY = ("read-only bind mount in the sandbox's mount namespace (without namespaces: "
             "Landlock split, new entries in the parent created by the path-operation broker, "
             "which never creates this name); with or without namespaces, not protected if it "
             "does not exist at launch (nothing is mounted or split for it: the command may create it)")
UNIX_SOCKETS = ("seccomp user notification -> broker (connect/bind/sendto decided on the "
                "canonical path; on ABI >= 9 Landlock RESOLVE_UNIX also refuses the command's own "
                "pathname connects outside the rules, which the broker performs as the supervisor)")


def explanation(policy: Policy) -> Explanation:
    return Explanation("linux", FILESYSTEM, READ_ONLY, _filesystem_always(), _network(policy),
                       UNIX_SOCKETS, _exposed(policy), _hardening())


def _filesystem_always() -> list[str]:
    return [
        f"  rw    {', '.join(DEVICE_FILES_RW)}    [always] -> device files programs need",
        "  none  other device nodes under /dev, unless a rule names /dev or below    [always] -> "
        "Landlock (read rights on an ancestor reach /dev's listing, not its devices)",
        # the layer under Landlock that closes what Landlock has no right for (_mount_view)
        "mount view (in the sandbox's mount namespace, under Landlock; `doctor` says whether "
        "namespaces are available here):",
        "  everything not writable -> read-only mounts: chmod, chown, utimes, xattrs, inode flags, "
        "truncate, mknod, rename refused (EROFS) on every Landlock ABI (and without Landlock)",
        "  writable roots, socket directory -> nodev,nosuid; /dev/shm -> a private tmpfs",
        "  deny paths -> masked: an empty read-only directory or file of mode 0000",
        "  /proc -> a fresh procfs of the sandbox's PID namespace (its own processes only), read-only",
        "  /dev/pts -> a private devpts (its own ptys only; the inherited terminal shows as /dev/console)",
    ]


def _network(policy: Policy) -> str:
    net = policy.network
    if net.proxied:
        return (f"through the filtering proxy only (127.0.0.1:{net.proxy_port} in the sandbox's own "
                "network namespace; the broker refuses every other TCP/IP connect"
                + ("" if net.allow_local_binding else " and bind") + "; Landlock TCP connect to "
                "that port on ABI >= 4; needs namespaces)")
    if net.enabled:
        return "allowed"
    return ("denied: socket(AF_INET/AF_INET6) refused by seccomp; TCP bind/connect by Landlock; "
            "and, where namespaces are available, the sandbox's own network namespace (lo only)")


def _exposed(policy: Policy) -> tuple[str, ...]:
    """The allowed socket paths in a place the sandbox can write, where the planted-socket
    checks of the broker apply."""
    allowed = [r.path for r in policy.network.unix_sockets if r.access.value == "allow"]
    if not allowed:
        return ()
    try:
        from ._provenance import Provenance
    except ImportError:  # pragma: no cover - explaining the Linux backend on another platform
        return ()
    prov = Provenance(policy, "", 0, snapshot=False)
    return tuple(p for p in allowed if prov.exposed(p) or prov._writable(p))  # noqa: SLF001


def _hardening() -> list[str]:
    """What holds whatever the profile says, on this machine, and what the mode leaves open."""
    try:
        from ._caps import describe_kept, kept_here
        from ._features import features
        from ._without_namespaces import BROKERED, OPEN
    except ImportError:  # pragma: no cover - explaining the Linux backend on another platform
        return []

    f = features()
    kept = kept_here(f.namespaces, f.root)
    out = ["process (whatever the profile says; this machine: "
           + (f"Landlock ABI {f.landlock_abi}, " if f.landlock_abi else "no Landlock, ")
           + ("namespaces" if f.namespaces else "no namespaces") + "):",
           "  capabilities: none in the command, even as root -> all sets cleared in the sandboxed "
           "child before exec, " + (describe_kept(kept) if kept else "bounding set dropped, securebits locked"),
           "  set-id bits, device nodes: refused -> seccomp filter A (chmod/open/creat/mknod modes; "
           "openat2 answers ENOSYS), Landlock (no MAKE_CHAR/MAKE_BLOCK), no CAP_MKNOD",
           "  inode flags: refused -> seccomp filter A (FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR, file_setattr)"]
    if f.landlock_abi >= 3:
        out.append("  truncate outside the writable roots: refused -> Landlock TRUNCATE")
    else:
        out.append(f"  truncate outside the writable roots: refused -> seccomp filter A (Landlock ABI "
                   f"{f.landlock_abi} has no TRUNCATE): truncate(2) refused everywhere, O_TRUNC only "
                   "with write access")
    if not f.namespaces:
        out.append("  open without namespaces (no read-only mount view, private devpts or fresh procfs):")
        out += [f"    {what}: {detail}" for what, detail in OPEN]
        out.append("  brokered without namespaces (where Landlock had to split a writable root):")
        out += [f"    {what}: {detail}" for what, detail in BROKERED]
    return out
