"""Landlock RESOLVE_UNIX rules and explain rows built for the broker's policy (ABI 9 is
not on this kernel: the ruleset is checked as data, and through the longest-match planner)."""

from __future__ import annotations

import landlock as ll
from lsandbox.linux._unix_rules import explain_unix, resolve_unix_rules
from tests.security._unix_helpers import policy

POL = policy({"/tmp/.X11-unix": "allow", "/tmp/.X11-unix/X9": "none", "/run/docker.sock": "none"})


def test_no_rules_below_abi_9():
    assert resolve_unix_rules(POL, "/run/lsb", 7) == {}
    assert all("RESOLVE_UNIX" not in r["enforced_by"] for r in explain_unix(POL, "/run/lsb", 7))


def test_abi_9_rules_and_carve_outs():
    rules = resolve_unix_rules(POL, "/run/lsb", 9)
    R = ll.AccessFs.RESOLVE_UNIX
    assert rules == {"/tmp/.X11-unix": R, "/tmp/.X11-unix/X9": ll.AccessFs(0),
                     "/run/docker.sock": ll.AccessFs(0), "/run/lsb": R}
    assert resolve_unix_rules(policy(allow_all=True), "", 9) == {"/": R}
    rows = explain_unix(POL, "/run/lsb", 9)
    assert {r["path"] for r in rows} >= {"/tmp/.X11-unix", "/tmp/.X11-unix/X9", "/run/lsb"}
    assert all("broker" in r["enforced_by"] for r in rows)
