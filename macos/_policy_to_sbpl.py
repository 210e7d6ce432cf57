"""Policy -> SBPL for ``sandbox-exec``.

Longest match becomes "last match wins": filesystem and AF_UNIX rules are emitted from the
shortest path to the longest, each one saying everything about its subtree (a READ rule
allows reading *and* denies writing), so the most specific rule is the last to match —
which is how Seatbelt decides among filtered rules on one operation. Device files and the
sandbox-local socket directory come last (always allowed). Paths are canonicalized the macOS
way (``/tmp``, ``/var``, ``/etc`` live under ``/private``); a path with ``..`` is refused.

Everything is inlined rather than passed with ``-D``: the profile printed by ``explain`` is
then exactly the one that runs, with no parameters to substitute by hand.
"""

from __future__ import annotations

from lsandbox._errors import PolicyError
from lsandbox.policy import DEVICE_FILES_RW, FsAccess, Policy, SocketAccess

from ._sbpl import List, Profile, Str, literal, sexp, subpath

_PRIVATE = ("/tmp", "/var", "/etc")


def macos_path(path: str) -> str:
    """Canonical macOS spelling of an absolute path."""
    if not path.startswith("/"):
        raise PolicyError(f"{path}: not an absolute path")
    if any(part == ".." for part in path.split("/")):
        raise PolicyError(f"{path}: paths with '..' are refused (SBPL matches paths literally)")
    for p in _PRIVATE:
        if path == p or path.startswith(p + "/"):
            return "/private" + path
    return path


def _depth(path: str) -> tuple[int, str]:
    return (0 if path == "/" else path.count("/"), path)


BASELINE: list[tuple[str, List]] = [
    ("a process may run programs, fork and signal its own sandbox", sexp("allow", "process-exec")),
    ("", sexp("allow", "process-fork")),
    ("", sexp("allow", "signal", sexp("target", "same-sandbox"))),
    ("system information programs read at start", sexp("allow", "sysctl-read")),
    ("", sexp("allow", "file-read-metadata")),
    ("", sexp("allow", "mach-lookup", sexp("global-name", Str("com.apple.system.logger")))),
    ("", sexp("allow", "mach-lookup", sexp("global-name", Str("com.apple.system.opendirectoryd.libinfo")))),
    ("", sexp("allow", "ipc-posix-shm*")),
    ("", sexp("allow", "process-info*", sexp("target", "same-sandbox"))),
]


def render_sbpl(policy: Policy, *, socket_dir: str | None = None) -> str:
    rules: list[List] = [sexp("version", "1"), sexp("deny", "default")]
    comments: dict[int, str] = {0: f"lsandbox policy {policy.name or '(default)'}"}
    for comment, rule in BASELINE:
        if comment:
            comments[len(rules)] = comment
        rules.append(rule)
    comments[len(rules)] = "filesystem, shortest path first: the last matching rule wins"
    for r in sorted(policy.filesystem.rules, key=lambda r: _depth(r.path)):
        p = subpath(macos_path(r.path))
        if r.access is FsAccess.WRITE:
            rules.append(sexp("allow", "file-read*", "file-write*", p))
        elif r.access is FsAccess.READ:
            rules.append(sexp("allow", "file-read*", p))
            rules.append(sexp("deny", "file-write*", p))
        else:
            rules.append(sexp("deny", "file-read*", "file-write*", p))
    comments[len(rules)] = "device files every program needs"
    for dev in DEVICE_FILES_RW:
        f = subpath(dev) if dev == "/dev/pts" else literal(dev)
        rules.append(sexp("allow", "file-read*", "file-write*", f))
    net = policy.network
    comments[len(rules)] = "network"
    if net.proxied:
        # network.domains: TCP only to the filtering proxy on the host's loopback (the same
        # proxy code as on Linux, run by lsandbox outside the sandbox); allow_local_binding
        # adds loopback listeners and loopback connections, as Codex's Seatbelt profile does.
        rules.append(sexp("allow", "network-outbound", sexp("remote", "ip", Str(f"localhost:{net.proxy_port}"))))
        if net.allow_local_binding:
            rules.append(sexp("allow", "network-outbound", sexp("remote", "ip", Str("localhost:*"))))
            rules.append(sexp("allow", "network-inbound", sexp("local", "ip", Str("localhost:*"))))
            rules.append(sexp("allow", "network-bind", sexp("local", "ip", Str("localhost:*"))))
    elif net.enabled:
        rules.append(sexp("allow", "network-outbound", sexp("remote", "ip")))
        rules.append(sexp("allow", "network-inbound", sexp("local", "ip")))
        rules.append(sexp("allow", "network-bind", sexp("local", "ip")))
    if net.dangerously_allow_all_unix_sockets:
        rules.append(sexp("allow", "network-outbound", sexp("remote", "unix-socket")))
        rules.append(sexp("allow", "network-bind", sexp("local", "unix-socket")))
    comments[len(rules)] = "AF_UNIX sockets, shortest path first"
    for u in sorted(net.unix_sockets, key=lambda r: _depth(r.path)):
        verb = "allow" if u.access is SocketAccess.ALLOW else "deny"
        p = macos_path(u.path)
        rules.append(sexp(verb, "network-outbound", sexp("remote", "unix-socket", subpath(p))))
        rules.append(sexp(verb, "network-bind", sexp("local", "unix-socket", subpath(p))))
    if socket_dir:
        comments[len(rules)] = "the sandbox-local socket directory"
        p = macos_path(socket_dir)
        rules.append(sexp("allow", "file-read*", "file-write*", subpath(p)))
        rules.append(sexp("allow", "network-outbound", sexp("remote", "unix-socket", subpath(p))))
        rules.append(sexp("allow", "network-bind", sexp("local", "unix-socket", subpath(p))))
    return Profile(rules, comments).render()
