"""(c) The parity corpus against real ``sandbox-exec`` (macOS CI job only), with the profile
the runner would write (socket directory, the per-user directories of this machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

import pytest

import macos
from lsandbox.policy import FilesystemPolicy, FsAccess, FsRule, Policy
from macos._runner import context, sandbox_exec_argv
from tests.parity.test_parity import CASES, PROBE, _policy, base, probes_for  # noqa: F401 - fixture

pytestmark = [pytest.mark.parity, pytest.mark.macos,
              pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS sandbox-exec")]


def with_python(pol: Policy) -> Policy:
    """The probe runs the CI's Python (under the runner's tool cache, not in ``:minimal``):
    make its installation readable when the policy does not already."""
    dirs = {os.path.realpath(d) for d in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                          os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))}
    extra = []
    for d in sorted(dirs):
        rule = pol.filesystem.rule_for(d)
        if rule is None or rule.access is FsAccess.DENY:
            extra.append(FsRule(d, FsAccess.READ, "the CI's Python"))
    if not extra:
        return pol
    have = {r.path for r in pol.filesystem.rules}
    rules = sorted([*pol.filesystem.rules, *(r for r in extra if r.path not in have)], key=lambda r: r.path)
    return Policy(filesystem=FilesystemPolicy(tuple(rules)), network=pol.network, name=pol.name)


def test_sandbox_exec(base, tmp_path):  # noqa: F811
    b, port = base
    by_policy = defaultdict(list)
    for i, c in enumerate(CASES):
        by_policy[c["policy"]].append(i)
    failures = []
    for name, idxs in by_policy.items():
        sock = os.path.realpath(tempfile.mkdtemp(prefix="lsandbox-sock-"))
        profile = macos.render_sbpl(with_python(_policy(name, b, str(tmp_path))), socket_dir=sock,
                                    context=context(dict(os.environ), None))
        cmd = [sys.executable, "-S", "-c", PROBE, json.dumps(probes_for(idxs, b)), str(port)]
        r = subprocess.run(sandbox_exec_argv(profile, cmd), capture_output=True, text=True,
                           cwd=os.path.join(b, "ws"), timeout=120)
        os.rmdir(sock)
        assert r.returncode == 0, (name, r.stderr, profile)
        for i, got in zip(idxs, json.loads(r.stdout.splitlines()[-1]), strict=True):
            if got != CASES[i]["expect"]:
                failures.append((CASES[i], got))
    assert not failures, failures
