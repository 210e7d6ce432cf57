"""Seatbelt's precedence, measured: the evaluator's precedence profile under real
``sandbox-exec`` (macOS CI job only).

The parity tests accept a verdict only when every model in ``macos.MODELS`` agrees, so the
product does not depend on which model is right; this test says which ones are. It fails
when the cases all models agree on disagree with Seatbelt, or when no model explains every
measurement (then the evaluator is wrong about Seatbelt, not just undecided). The table goes
to the job summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import macos
from macos._evaluator import PRECEDENCE_CASES, PRECEDENCE_PROFILE
from macos._runner import sandbox_exec_argv

pytestmark = [pytest.mark.parity, pytest.mark.macos,
              pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS sandbox-exec")]

PROBE = r"""
import json, sys
out = []
for op, path in json.loads(sys.argv[1]):
    try:
        if op == "file-read-data":
            open(path).read()
        else:
            open(path, "x").close()
        out.append("allow")
    except PermissionError:
        out.append("deny")
print(json.dumps(out))
"""


def test_precedence_measured():
    root = os.path.realpath(tempfile.mkdtemp(prefix="lsb-prec-", dir="/private/var/tmp"))
    try:
        _measure(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _measure(root: str) -> None:
    for d in ("a/b/c", "a/keep", "m", "x", "y/z", "w"):
        os.makedirs(os.path.join(root, d))
    for f in ("a/f", "a/b/f", "a/b/c/f"):
        with open(os.path.join(root, f), "w") as fh:
            fh.write("x")
    text = PRECEDENCE_PROFILE.replace("@", root)
    cases = [(op, p.replace("@", root)) for op, p in PRECEDENCE_CASES]
    r = subprocess.run(sandbox_exec_argv(text, [sys.executable, "-S", "-c", PROBE, json.dumps(cases)]),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    real = json.loads(r.stdout.splitlines()[-1])
    models = {m.name: [macos.evaluate(text, op, p, model=m) for op, p in cases] for m in macos.MODELS}
    rows = ["| case | Seatbelt | " + " | ".join(models) + " |", "|---" * (2 + len(models)) + "|"]
    for k, (op, p) in enumerate(PRECEDENCE_CASES):
        rows.append(f"| {op} {p} | {real[k]} | " + " | ".join(v[k] for v in models.values()) + " |")
    consistent = [name for name, v in models.items() if v == real]
    report = "\n".join(["### Seatbelt precedence, measured", *rows, "",
                        f"models consistent with every measurement: {consistent or 'none'}"])
    print(report)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(report + "\n")
    for k, case in enumerate(PRECEDENCE_CASES):
        agreed = {v[k] for v in models.values()}
        if len(agreed) == 1:
            assert real[k] in agreed, (case, real[k], report)
    assert consistent, report
