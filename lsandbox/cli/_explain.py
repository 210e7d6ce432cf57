"""``lsandbox explain``: the effective policy, rule by rule, and what enforces each rule.

Formats: ``text`` (for people), ``json``, ``sbpl`` (the macOS profile) and ``bpf`` (the Linux
seccomp filter, disassembled). In ``json`` the keys ``filesystem``, ``network`` (and
``environment`` when set) are the policy alone: two ways of asking for the same policy print
the same values there. ``profile``, ``origins`` (where each rule came from) and ``always``
(what every sandbox gets whatever the policy says) are beside them.
"""

from __future__ import annotations

import argparse
import json
import sys

from .._errors import SandboxError
from ._common import add_policy_options, policy_from_args

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    from ..policy import Policy

LINUX_FS = {"read": "Landlock (read rights)", "write": "Landlock (read+write rights)",
            "deny": "Landlock (no rights; siblings enumerated)"}
MACOS_FS = {"read": "SBPL (allow file-read*)", "write": "SBPL (allow file-read* file-write*)",
            "deny": "SBPL (deny file-read* file-write*)"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="show the effective policy and what enforces it")
    add_policy_options(p)
    p.add_argument("--backend", choices=("linux", "macos"),
                   default="macos" if sys.platform == "darwin" else "linux")
    p.add_argument("--format", choices=("text", "json", "sbpl", "bpf"), default="text")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    policy = policy_from_args(args)
    if args.format == "json":
        print(json.dumps(render_json(policy), indent=2, sort_keys=True))
    elif args.format == "sbpl":
        print(_render_sbpl(policy), end="")
    elif args.format == "bpf":
        print(_render_bpf(policy), end="")
    else:
        text = render_text(policy, args.backend, args.profile)
        if getattr(args, "network", None) is not None and policy.description:
            flag = "--network" if args.network else "--no-network"
            text = text.replace(f"  {policy.description}\n", f"  {policy.description}\n"
                                f"  note: {flag} overrides the profile's network setting\n", 1)
        print(text, end="")
    return 0


def render_json(policy: Policy) -> dict:
    from ..policy import DEVICE_FILES_RW

    out = policy.to_dict()
    out["profile"] = policy.name or None
    out["origins"] = {
        "filesystem": {r.path: r.origin for r in policy.filesystem.rules},
        "unix_sockets": {r.path: r.origin for r in policy.network.unix_sockets},
    }
    out["always"] = {"filesystem": {p: "write" for p in DEVICE_FILES_RW},
                     "unix_sockets": {"$LSANDBOX_SOCKET_DIR": "allow"}}
    return out


def _render_sbpl(policy: Policy) -> str:
    try:
        from macos import render_sbpl
    except ImportError as e:
        raise SandboxError(f"the macOS SBPL writer is not available: {e}") from None
    return render_sbpl(policy)


def _render_bpf(policy: Policy) -> str:
    try:
        from ..linux import render_bpf
    except ImportError as e:
        raise SandboxError(f"the Linux seccomp filter is not available: {e}") from None
    return render_bpf(policy)


def _exposed(policy: Policy):  # noqa: ANN202 - a predicate
    """Which allowlisted socket paths the planted-socket checks apply to (Linux broker)."""
    try:
        from ..linux._provenance import Provenance
    except ImportError:
        return lambda _p: False
    prov = Provenance(policy, "", 0, snapshot=False)
    return lambda p: prov.exposed(p) or prov._writable(p)  # noqa: SLF001


def render_text(policy: Policy, backend: str, asked: str | None) -> str:
    from ..policy import DEVICE_FILES_RW
    from ..policy._builtins import ALIASES

    fs_how = LINUX_FS if backend == "linux" else MACOS_FS
    out = [f"profile: {policy.name or '(default)'}"]
    if asked in ALIASES:
        out.append(f"  note: '{asked}' is an alias of '{ALIASES[asked]}' (not a Codex built-in)")
    if policy.description:
        out.append(f"  {policy.description}")
    out.append(f"backend: {backend}")
    out.append("filesystem (longest match wins; nothing matched = no access):")
    carve = set(policy.filesystem.read_only)
    for r in policy.filesystem.rules:
        how = fs_how[r.access.value]
        if backend == "linux" and r.path in carve:
            how = ("read-only bind mount in the sandbox's mount namespace (without namespaces: "
                   "Landlock split, new entries in the parent created by the path-operation broker, "
                   "which never creates this name); with namespaces, not protected if it does not "
                   "exist at launch")
        out.append(f"  {r.access.value:<5} {r.path}    [{r.origin}] -> {how}")
    if backend == "macos":
        from macos import explain_lines

        out.extend(explain_lines(policy))
    else:
        out.append(f"  rw    {', '.join(DEVICE_FILES_RW)}    [always] -> device files programs need")
        out.append("  none  other device nodes under /dev, unless a rule names /dev or below    [always] -> "
                   "Landlock (read rights on an ancestor reach /dev's listing, not its devices)")
        out.extend(_mount_view_lines())
    net = policy.network
    if backend == "linux":
        how = ("allowed" if net.enabled else
               "denied: socket(AF_INET/AF_INET6) refused by seccomp; TCP bind/connect by Landlock; "
               "and, where namespaces are available, the sandbox's own network namespace (lo only)")
    else:
        how = ("allowed (IP sockets; name resolution through mDNSResponder and configd; TLS "
               "trust through trustd)" if net.enabled else "denied (no IP rules; no name resolution)")
    if net.proxied:
        how = (f"through the filtering proxy only (127.0.0.1:{net.proxy_port} in the sandbox's own "
               "network namespace; the broker refuses every other TCP/IP connect"
               + ("" if net.allow_local_binding else " and bind") + "; Landlock TCP connect to "
               "that port on ABI >= 4; needs namespaces)" if backend == "linux" else
               f"SBPL network-outbound to localhost:{net.proxy_port} only (the proxy runs outside)")
        out.append(f"network: proxied, mode {net.mode.value}, allow_local_binding = "
                   f"{str(net.allow_local_binding).lower()} -> {how}")
        out.append("  domains (most specific pattern wins, deny at a tie, no match = refused; "
                   "names resolving to loopback/private/link-local refused unless "
                   "allow_local_binding):")
        out.extend(f"  {r.access.value:<5} {r.pattern}    [{r.origin}]" for r in net.domains)
    else:
        out.append(f"network: {'on' if net.enabled else 'off'} -> {how}")
    unix_how = ("seccomp user notification -> broker (connect/bind/sendto decided on the "
                "canonical path; on ABI >= 9 Landlock RESOLVE_UNIX also refuses the command's own "
                "pathname connects outside the rules, which the broker performs as the supervisor)" if backend == "linux"
                else "SBPL network-outbound (remote unix-socket) / network-bind (local unix-socket)")
    out.append(f"unix sockets (longest match wins; -> {unix_how}):")
    exposed = _exposed(policy) if backend == "linux" else (lambda _p: False)
    for r in net.unix_sockets:
        note = ""
        if r.access.value == "allow" and exposed(r.path):
            note = (" -> in a place the sandbox can write: sockets created, moved or linked there "
                    "after launch are refused unless the sandbox bound them itself")
        out.append(f"  {r.access.value:<5} {r.path}    [{r.origin}]{note}")
    out.append("  allow $LSANDBOX_SOCKET_DIR    [always] -> the sandbox-local socket directory")
    default = "allow" if net.dangerously_allow_all_unix_sockets else "none"
    out_env = _render_environment(policy)
    out.append(f"  {default:<5} everything else" +
               ("    [dangerously_allow_all_unix_sockets]" if default == "allow" else ""))
    out.append(out_env)
    if backend == "linux":
        out += _linux_hardening()
    return "\n".join(out) + "\n"


def _mount_view_lines() -> list[str]:
    """The layer under Landlock that closes what Landlock has no right for (lsandbox.linux.
    _mount_view), where a mount namespace is available."""
    return [
        "mount view (in the sandbox's mount namespace, under Landlock; `doctor` says whether "
        "namespaces are available here):",
        "  everything not writable -> read-only mounts: chmod, chown, utimes, xattrs, inode flags, "
        "truncate, mknod, rename refused (EROFS) on every Landlock ABI (and without Landlock)",
        "  writable roots, socket directory -> nodev,nosuid; /dev/shm -> a private tmpfs",
        "  deny paths -> masked: an empty read-only directory or file of mode 0000",
        "  /proc -> a fresh procfs of the sandbox's PID namespace (its own processes only), read-only",
        "  /dev/pts -> a private devpts (its own ptys only; the inherited terminal shows as /dev/console)",
    ]


def _render_environment(policy: Policy) -> str:
    e = policy.environment
    if e.is_default:
        return "environment: the caller's, unchanged (plus LSANDBOX_SOCKET_DIR)"
    parts = [f"inherit {e.inherit}"]
    if not e.ignore_default_excludes:
        parts.append("without *KEY*, *SECRET*, *TOKEN*")
    if e.exclude:
        parts.append("without " + ", ".join(e.exclude))
    if e.set:
        parts.append("set " + ", ".join(k for k, _ in e.set))
    if e.include_only:
        parts.append("only " + ", ".join(e.include_only))
    return "environment: " + "; ".join(parts) + " (plus LSANDBOX_SOCKET_DIR)"


def _linux_hardening() -> list[str]:
    """What holds whatever the profile says, on this machine, and what the mode leaves open."""
    try:
        from ..linux._caps import describe_kept, kept_here
        from ..linux._features import features
        from ..linux._without_namespaces import BROKERED, OPEN
    except ImportError:  # pragma: no cover - explaining the Linux backend elsewhere
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
