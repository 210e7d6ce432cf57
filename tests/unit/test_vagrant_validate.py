"""`vagrant validate` of vagrant/Vagrantfile (no provider needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

VAGRANT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "vagrant")


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant not installed (Debian package vagrant)")
def test_vagrantfile_validates():
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=VAGRANT_DIR, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "validated successfully" in r.stdout
    for box in ("ubuntu2204", "ubuntu2404", "debian12", "fedora41"):
        assert box in r.stdout
