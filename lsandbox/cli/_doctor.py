"""``lsandbox doctor [--json]``: machine features and per-field enforcement of the profile."""

from __future__ import annotations

import argparse
import json

from ._common import add_policy_options, policy_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what this machine supports and what enforces each policy field")
    add_policy_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._doctor import doctor

    policy = policy_from_args(args)
    machine, rows, ok = doctor(policy)
    if args.json:
        print(json.dumps({"machine": machine, "fields": rows, "fully_enforced": ok}, indent=2))
    else:
        s = machine["seccomp"]
        ns = machine["namespaces"]
        print(f"kernel {machine['kernel']} ({machine['arch']})")
        print(f"landlock: ABI {machine['landlock_abi']} (kernel {machine['landlock_abi_kernel']}), "
              f"errata {machine['landlock_errata']:#x}")
        print("seccomp: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in s.items()))
        print(f"pidfd_getfd: {'yes' if machine['pidfd_getfd'] else 'no'}")
        fast = machine["broker_fastpath"]
        print("broker fast path: " + ("compiled (C, cffi)" if fast == "compiled" else f"pure Python: {fast}"))
        print(f"namespaces: {'usable' if ns['usable'] and not ns['disabled_by_env'] else 'unavailable'}"
              + (f" ({ns['why_not']})" if ns["why_not"] else "") + (" (root)" if ns["root"] else ""))
        if machine["audit_readable"]:
            print(f"audit log: readable from {machine['audit_source']} (Landlock denials are reported "
                  "by --log-denials/--events)")
        else:
            print(f"audit log: not read: {machine['audit_why_not']} "
                  "(filesystem denials are enforced, not reported)")
        if machine.get("run_refused"):
            print(f"run: REFUSES to start here: {machine['run_refused']}")
        print(f"profile {policy.name or '(default)'}:")
        for r in rows:
            print(f"  {r['state']:<13} {r['field']:<41} {r['by']}")
        open_ = [r["field"] for r in rows if r["state"] == "open"]
        print("verdict: " + ("every field is enforced here" if ok else "some fields are NOT enforced here")
              + (f"; open in this mode: {', '.join(open_)}" if open_ else ""))
    return 0 if ok else 1
