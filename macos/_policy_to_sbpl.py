"""Policy -> SBPL for ``sandbox-exec``.

Longest match becomes "last match wins": filesystem and AF_UNIX rules are emitted from the
shortest path to the longest, each one saying everything about its subtree (a READ rule
allows reading *and* denies writing), so the most specific rule is the last to match, which
is how Seatbelt decides among filtered rules on one operation.

The profile is written so that its verdicts do not depend on the two precedence rules others
report but nobody has shown us measured (an unfiltered rule never overriding a filtered one;
a specific operation beating its wildcard parent, see ``_evaluator``): no unfiltered allow
shares an operation with a filtered deny, and every filesystem rule names the specific
operation (``file-read-metadata``) that an earlier rule allows by name. The parity tests
evaluate every case under each precedence model and require one answer.

Carve-outs survive renames and creation (a read-only ``.git`` or a denied path inside a
writable root): a deny names the path both as ``literal`` and as ``subpath`` (so a missing
``.codex`` cannot be made), and every ancestor of such a path gets a ``file-write-unlink``
deny on its literal name, so ``mv`` of a parent cannot carry the carve-out out from under
its rule (Seatbelt matches paths, not inodes).

Paths are canonicalized the macOS way (``/tmp``, ``/var``, ``/etc`` live under ``/private``);
a path with ``..`` is refused. Everything is inlined rather than passed with ``-D``: the
profile ``explain`` prints is exactly the one that runs. Policy values reach the text only
through ``_sbpl.quote`` and ``_sbpl.comment``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lsandbox._errors import PolicyError
from lsandbox.policy import FsAccess, FsRule, Policy, SocketAccess

from . import _baseline
from ._sbpl import List, Profile, Str, literal, sexp, subpath, with_message

_PRIVATE = ("/tmp", "/var", "/etc")


def macos_path(path: str) -> str:
    """Canonical macOS spelling of an absolute path."""
    if not path.startswith("/"):
        raise PolicyError(f"{path}: not an absolute path")
    if any(part == ".." for part in path.split("/")):
        raise PolicyError(f"{path}: paths with '..' are refused (SBPL matches paths literally)")
    if "\0" in path:
        raise PolicyError(f"{path!r}: a path cannot contain NUL")
    for p in _PRIVATE:
        if path == p or path.startswith(p + "/"):
            return "/private" + path
    return path


@dataclass(frozen=True)
class Context:
    """What the runner knows at launch and the profile needs (all optional: ``explain``
    and the parity tests render without them).

    ``own_ttys``: the caller's terminal device(s), reachable by name. ``own_files``: files
    the caller opened for the command (standard streams redirected to a file, passed
    descriptors) as ``(path, writable)``: Seatbelt checks reads and writes on descriptors
    that name files, so ``cmd > /some/log`` needs its file allowed. ``user_cache_dir``:
    ``DARWIN_USER_CACHE_DIR`` (clang's module cache), writable when the per-user temp
    directory beside it is. ``tag``: appended to every deny's log line by
    ``(with message TAG)``, so the denial reader keeps this run's denials only. ``home``:
    the user's home directory, whose ``Library/Keychains`` no profile can read.
    """

    own_ttys: tuple[str, ...] = ()
    own_files: tuple[tuple[str, bool], ...] = ()
    user_cache_dir: str | None = None
    user_temp_dir: str | None = None
    tag: str | None = None
    home: str | None = None


def _depth(path: str) -> tuple[int, str]:
    return (0 if path == "/" else path.count("/"), path)


def ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/a/b", "/a", "/"]``."""
    out = []
    while path != "/":
        path = os.path.dirname(path)
        out.append(path)
    return out


def _cache_rule(policy: Policy, ctx: Context) -> FsRule | None:
    """The per-user cache directory, writable only when the per-user temp directory (its
    sibling under ``/var/folders/..``) is writable by the policy."""
    if not (ctx.user_cache_dir and ctx.user_temp_dir):
        return None
    if any(r.path == ctx.user_cache_dir for r in policy.filesystem.rules):
        return None  # the policy says something about this directory itself
    rule = policy.filesystem.rule_for(ctx.user_temp_dir)
    if rule is None or rule.access is not FsAccess.WRITE:
        return None
    return FsRule(ctx.user_cache_dir, FsAccess.WRITE, "DARWIN_USER_CACHE_DIR")


def _keychain_rule(policy: Policy, ctx: Context) -> FsRule | None:
    """The user's keychain files, unreadable unless the policy names them: with the network on
    the profile grants ``com.apple.SecurityServer`` (trust evaluation), and securityd hands
    items whose access list trusts the calling tool (``security add-generic-password``,
    git's osxkeychain helper) to a process that can read the keychain file. Trust evaluation
    itself runs in trustd, outside the sandbox. Only a rule at the directory itself replaces
    this one (a ``deny`` of one file inside dropped the whole deny)."""
    if not ctx.home or not ctx.home.startswith("/"):
        return None
    path = os.path.join(os.path.realpath(ctx.home), "Library", "Keychains")
    if any(r.path == path for r in policy.filesystem.rules):
        return None  # the policy says what it wants there; a rule deeper decides only its own path
    return FsRule(path, FsAccess.DENY, "the keychain: items are secrets (docs/macos.md)")


class _Writer:
    def __init__(self, ctx: Context) -> None:
        self.rules: list[List] = []
        self.comments: dict[int, str] = {}
        self.msg = (with_message(ctx.tag),) if ctx.tag else ()

    def section(self, text: str) -> None:
        self.comments[len(self.rules)] = text

    def add(self, rule: List) -> None:
        self.rules.append(rule)

    def deny(self, *items: object) -> None:
        """Every deny carries the run's tag, so its log line names this run."""
        self.rules.append(sexp("deny", *items, *self.msg))

    def group(self, g: _baseline.Group) -> None:
        self.section(f"[{g.name}] {g.purpose}")
        for r in g.rules:
            self.add(r)


def render_sbpl(policy: Policy, *, socket_dir: str | None = None, context: Context | None = None) -> str:
    ctx = context or Context()
    w = _Writer(ctx)
    w.section(f"lsandbox policy {policy.name or '(default)'}")
    w.add(sexp("version", "1"))
    w.deny("default")
    for g in _baseline.HEAD:
        w.group(g)

    fs_rules = list(policy.filesystem.rules)
    for extra in (_cache_rule(policy, ctx), _keychain_rule(policy, ctx)):
        if extra is not None:
            fs_rules.append(extra)
    fs_rules = [FsRule(macos_path(r.path), r.access, r.origin) for r in fs_rules]
    fs_rules.sort(key=lambda r: _depth(r.path))
    extra_roots = [macos_path(socket_dir)] if socket_dir else []

    roots = [r.path for r in fs_rules if r.access is not FsAccess.DENY] + extra_roots
    ancestor_set = sorted({a for p in roots for a in ancestors(p)}, key=_depth)
    if ancestor_set:
        w.section("[path-ancestors] stat() the directories above every readable or writable "
                  "root (getcwd, realpath)")
        w.add(sexp("allow", "file-read-metadata", *(literal(a) for a in ancestor_set)))

    w.section("[filesystem] shortest path first: the last matching rule wins")
    for r in fs_rules:
        p = subpath(r.path)
        if r.access is FsAccess.WRITE:
            w.add(sexp("allow", "file-read*", "file-read-metadata", "file-write*", p))
        elif r.access is FsAccess.READ:
            w.add(sexp("allow", "file-read*", "file-read-metadata", p))
            w.deny("file-write*", literal(r.path), p)
        else:
            w.deny("file-read*", "file-read-metadata", "file-write*", literal(r.path), p)

    w.group(_baseline.devices())
    w.group(_baseline.terminals(ctx.own_ttys, w.msg))
    if ctx.own_files:
        w.group(_baseline.stdio_files(ctx.own_files))

    net = policy.network
    if net.proxied:
        # network.domains: TCP only to the filtering proxy on the host's loopback (the same
        # proxy code as on Linux, run by lsandbox outside the sandbox; it resolves names, so
        # no DNS here); TLS through the tunnel still needs trust evaluation. allow_local_binding
        # adds loopback listeners and loopback connections, as Codex's Seatbelt profile does.
        w.section(f"[network-proxy] TCP only to the filtering proxy on localhost:{net.proxy_port}")
        w.add(sexp("allow", "network-outbound", sexp("remote", "ip", Str(f"localhost:{net.proxy_port}"))))
        if net.allow_local_binding:
            w.add(sexp("allow", "network-outbound", sexp("remote", "ip", Str("localhost:*"))))
            w.add(sexp("allow", "network-inbound", sexp("local", "ip", Str("localhost:*"))))
            w.add(sexp("allow", "network-bind", sexp("local", "ip", Str("localhost:*"))))
        for g in _baseline.network():
            if g.name == "tls":
                w.group(g)
    elif net.enabled:
        for g in _baseline.network():
            w.group(g)
    if net.dangerously_allow_all_unix_sockets:
        w.section("[unix-sockets] every AF_UNIX socket (dangerously_allow_all_unix_sockets)")
        w.add(sexp("allow", "network-outbound", sexp("remote", "unix-socket")))
        w.add(sexp("allow", "network-bind", sexp("local", "unix-socket")))
    if net.unix_sockets:
        w.section("[unix-sockets] connect (remote) and bind (local), shortest path first")
    for u in sorted(net.unix_sockets, key=lambda r: _depth(r.path)):
        p = subpath(macos_path(u.path))
        if u.access is SocketAccess.ALLOW:
            w.add(sexp("allow", "network-outbound", sexp("remote", "unix-socket", p)))
            w.add(sexp("allow", "network-bind", sexp("local", "unix-socket", p)))
        else:
            w.deny("network-outbound", sexp("remote", "unix-socket", p))
            w.deny("network-bind", sexp("local", "unix-socket", p))

    if socket_dir:
        w.section("[socket-dir] the sandbox-local socket directory")
        p = subpath(macos_path(socket_dir))
        w.add(sexp("allow", "file-read*", "file-read-metadata", "file-write*", p))
        w.add(sexp("allow", "network-outbound", sexp("remote", "unix-socket", p)))
        w.add(sexp("allow", "network-bind", sexp("local", "unix-socket", p)))

    guarded = _restricted_paths(policy)
    keychain = _keychain_rule(policy, ctx)
    if keychain is not None:
        guarded.append(macos_path(keychain.path))
    pinned = {a for p in guarded for a in ancestors(p)}
    if socket_dir:
        pinned.add(macos_path(socket_dir))  # cleanup removes the directory that was made
    if pinned:
        pinned_list = sorted(pinned, key=_depth)
        w.section("[move-blocking] the directories above a read-only or denied path (and the "
                  "socket directory) cannot be renamed or removed, so no path leaves its rule")
        w.deny("file-write-unlink", *(literal(a) for a in pinned_list))
    return Profile(w.rules, w.comments).render()


def _restricted_paths(policy: Policy) -> list[str]:
    """Paths more restricted than what encloses them: DENY anywhere, READ inside WRITE (the
    model's read-only carve-outs)."""
    fs = policy.filesystem
    out = [*fs.read_only, *(r.path for r in fs.rules if r.access is FsAccess.DENY)]
    return [macos_path(p) for p in out]
