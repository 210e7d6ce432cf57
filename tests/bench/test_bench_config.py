"""Loading a 200-profile config with extends chains (target < 50 ms). `make bench`."""

from __future__ import annotations

import time

import pytest

from lsandbox import load_policy

pytestmark = pytest.mark.bench


def test_bench_load_200_profiles(tmp_path):
    lines = ['default_permissions = "p199"']
    for i in range(200):
        parent = '":workspace"' if i % 10 == 0 else f'"p{i - 1}"'
        lines += [f"[permissions.p{i}]", f"extends = {parent}",
                  f'filesystem = {{ "/srv/p{i}" = "read" }}',
                  f'network.unix_sockets = {{ "/run/p{i}.sock" = "allow" }}']
    cfg = tmp_path / "big.toml"
    cfg.write_text("\n".join(lines) + "\n")
    load_policy(str(cfg), cwd=str(tmp_path), requirements=None)  # warm imports
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        load_policy(str(cfg), cwd=str(tmp_path), requirements=None)
        runs.append(time.perf_counter() - t)
    best = min(runs) * 1000
    print(f"\nconfig: 200 profiles, extends chains of 10: load {best:.1f} ms (best of 5; target < 50 ms)")
