"""End to end through ``lsandbox run``: the AF_UNIX allowlist from a config profile and from
``--allow-unix-socket`` behave the same, and denials reach ``--log-denials``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.security._unix_helpers import Server, shared_dir

pytestmark = [pytest.mark.kernel, pytest.mark.security]
LSANDBOX = [sys.executable, "-c", "import sys; from lsandbox.cli import main; sys.exit(main())"]
PROBE = """
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p); print("ok")
    except OSError as e:
        print(e.errno)
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LSANDBOX, "run", *args], capture_output=True, text=True, timeout=60)


def test_profile_equals_flag_and_denials_logged(tmp_path):
    d = shared_dir()
    ok, bad = Server(f"{d}/ok"), Server(f"{d}/bad")
    try:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'default_permissions = "t"\n[permissions.t]\nextends = ":read-only"\n'
                       f'[permissions.t.network.unix_sockets]\n"{ok.path}" = "allow"\n')
        probe = ["--", sys.executable, "-c", PROBE, ok.path, bad.path]
        by_flag = _run("-p", ":read-only", "--allow-unix-socket", ok.path, "--log-denials", *probe)
        by_cfg = _run("-c", str(cfg), "--log-denials", *probe)
        assert by_flag.returncode == 0, by_flag.stderr
        assert by_flag.stdout.split() == by_cfg.stdout.split() == ["ok", "13"], (by_flag, by_cfg)
        assert bad.path in by_flag.stderr and "no rule" in by_flag.stderr
        assert ok.settle() == 2 and bad.settle() == 0
    finally:
        ok.close()
        bad.close()
        os.rmdir(d)
