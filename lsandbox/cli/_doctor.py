"""``lsandbox doctor [--json]``: machine features and per-field enforcement of the profile,
as the platform's backend reports them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import add_policy_options, policy_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what this machine supports and what enforces each policy field")
    add_policy_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .._backend import backend

    policy = policy_from_args(args)
    report = backend().doctor(policy)
    rows = [f.to_dict() for f in report.fields]
    if args.json:
        print(json.dumps({"machine": report.machine, "fields": rows,
                          "fully_enforced": report.fully_enforced}, indent=2))
        return 0 if report.fully_enforced else 1
    if report.backend == "linux":
        _print_linux_machine(report.machine)
    else:
        for key, value in report.machine.items():
            if key != "run_refused":
                print(f"{key.replace('_', ' ')}: {_yes_no(value)}")
    if report.machine.get("run_refused"):
        print(f"run: REFUSES to start here: {report.machine['run_refused']}")
    print(f"profile {policy.name or '(default)'}:")
    for r in rows:
        print(f"  {r['state']:<13} {r['field']:<41} {r['by']}")
    open_ = [r["field"] for r in rows if r["state"] == "open"]
    degraded = [r["field"] for r in rows if r["state"] == "degraded"]
    print("verdict: " + ("some fields are NOT enforced here" if not report.fully_enforced
                         else "every field is enforced here" if not degraded
                         else "no field is left unenforced here, but these hold only as their row says: "
                         + "; ".join(degraded))
          + (f"; open in this mode: {', '.join(open_)}" if open_ else ""))
    return 0 if report.fully_enforced else 1


def _yes_no(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _print_linux_machine(machine: dict[str, Any]) -> None:
    s = machine["seccomp"]
    ns = machine["namespaces"]
    print(f"kernel {machine['kernel']} ({machine['arch']})")
    print(f"landlock: ABI {machine['landlock_abi']} (kernel {machine['landlock_abi_kernel']}), "
          f"errata {machine['landlock_errata']:#x}")
    print("seccomp: " + ", ".join(f"{k}={_yes_no(v)}" for k, v in s.items()))
    print(f"pidfd_getfd: {_yes_no(machine['pidfd_getfd'])}")
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
