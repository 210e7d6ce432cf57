"""(c) The parity corpus against real ``sandbox-exec`` (macOS CI job only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

import macos
from tests.parity.test_parity import CASES, PROBE, _policy, base  # noqa: F401 - fixture

pytestmark = [pytest.mark.parity, pytest.mark.macos,
              pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS sandbox-exec")]


def test_sandbox_exec(base, tmp_path):  # noqa: F811
    b, port = base
    by_policy = defaultdict(list)
    for i, c in enumerate(CASES):
        by_policy[c["policy"]].append(i)
    failures = []
    for name, idxs in by_policy.items():
        profile = macos.render_sbpl(_policy(name, b, str(tmp_path)))
        probes = [(CASES[i]["probe"], CASES[i]["path"].replace("$BASE", b)) for i in idxs]
        r = subprocess.run(["/usr/bin/sandbox-exec", "-p", profile, sys.executable, "-c", PROBE,
                            json.dumps(probes), str(port)], capture_output=True, text=True,
                           cwd=os.path.join(b, "ws"), timeout=120)
        assert r.returncode == 0, (name, r.stderr)
        for i, got in zip(idxs, json.loads(r.stdout.splitlines()[-1]), strict=True):
            if got != CASES[i]["expect"]:
                failures.append((CASES[i], got))
    assert not failures, failures
