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

from .._errors import SandboxError, one_line
from ._common import add_policy_options, policy_from_args

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    from ..policy import Policy


def register(sub: argparse._SubParsersAction) -> None:
    from .._backend import BACKENDS

    p = sub.add_parser("explain", help="show the effective policy and what enforces it")
    add_policy_options(p)
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="the backend to explain (default: this platform's)")
    p.add_argument("--format", choices=("text", "json", "sbpl", "bpf"), default="text")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    policy = policy_from_args(args)
    if args.format == "json":
        print(json.dumps(render_json(policy), indent=2, sort_keys=True))
    elif args.format in ("sbpl", "bpf"):
        print(_compiled(policy, "macos" if args.format == "sbpl" else "linux"), end="")
    else:
        text = render_text(policy, args.backend, args.profile)
        if getattr(args, "network", None) is not None and policy.description:
            flag = "--network" if args.network else "--no-network"
            text = text.replace(f"  {policy.description}\n", f"  {policy.description}\n"
                                f"  note: {flag} overrides the profile's network setting\n", 1)
        print("\n".join(one_line(line) for line in text.split("\n")), end="")
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


def _compiled(policy: Policy, name: str) -> str:
    """The SBPL profile or the seccomp filters, whichever platform this is."""
    from .._backend import backend

    what = {"macos": "the macOS SBPL writer", "linux": "the Linux seccomp filter"}[name]
    try:
        return backend(name).compiled(policy)
    except ImportError as e:
        raise SandboxError(f"{what} is not available: {e}") from None


def render_text(policy: Policy, backend_name: str | None, asked: str | None) -> str:
    from .._backend import backend
    from ..policy._builtins import ALIASES

    how = backend(backend_name).explain(policy)
    out = [f"profile: {policy.name or '(default)'}"]
    if asked in ALIASES:
        out.append(f"  note: '{asked}' is an alias of '{ALIASES[asked]}' (not a Codex built-in)")
    if policy.description:
        out.append(f"  {policy.description}")
    out.append(f"backend: {how.backend}")
    out.append("filesystem (longest match wins; nothing matched = no access):")
    carve = set(policy.filesystem.read_only)
    for r in policy.filesystem.rules:
        fs_how = how.filesystem[r.access.value]
        if how.read_only is not None and r.path in carve:
            fs_how = how.read_only
        out.append(f"  {r.access.value:<5} {r.path}    [{r.origin}] -> {fs_how}")
    out.extend(how.filesystem_always)
    net = policy.network
    if net.proxied:
        out.append(f"network: proxied, mode {net.mode.value}, allow_local_binding = "
                   f"{str(net.allow_local_binding).lower()} -> {how.network}")
        out.append("  domains (most specific pattern wins, deny at a tie, no match = refused; "
                   "names resolving to loopback/private/link-local refused unless "
                   "allow_local_binding):")
        out.extend(f"  {r.access.value:<5} {r.pattern}    [{r.origin}]" for r in net.domains)
    else:
        out.append(f"network: {'on' if net.enabled else 'off'} -> {how.network}")
    out.append(f"unix sockets (longest match wins; -> {how.unix_sockets}):")
    for u in net.unix_sockets:
        note = ""
        if u.access.value == "allow" and u.path in how.exposed:
            note = (" -> in a place the sandbox can write: sockets created, moved or linked there "
                    "after launch are refused unless the sandbox bound them itself")
        out.append(f"  {u.access.value:<5} {u.path}    [{u.origin}]{note}")
    out.append("  allow $LSANDBOX_SOCKET_DIR    [always] -> the sandbox-local socket directory")
    default = "allow" if net.dangerously_allow_all_unix_sockets else "none"
    out.append(f"  {default:<5} everything else" +
               ("    [dangerously_allow_all_unix_sockets]" if default == "allow" else ""))
    out.append(_render_environment(policy))
    out += how.process
    return "\n".join(out) + "\n"


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
