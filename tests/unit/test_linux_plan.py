"""Policy -> LinuxPlan without the kernel: Landlock rights per ABI, RESOLVE_UNIX on ABI 9."""

from __future__ import annotations

import os

import landlock as ll
from lsandbox import load_policy
from lsandbox.linux._features import Features
from lsandbox.linux._plan import build_plan


def _plan(tmp_path, abi: int, ns: bool = True, **kw):
    sock = tmp_path / "sockdir"
    sock.mkdir(exist_ok=True)
    pol = load_policy(None, ":workspace", cwd=str(tmp_path), search=False, requirements=None, **kw)
    return build_plan(pol, str(sock), Features(abi, True, ns, True)), str(sock)


def test_abi_7_plan(tmp_path):
    (tmp_path / ".git").mkdir()
    plan, sock = _plan(tmp_path, 7)
    rules = dict(plan.landlock_rules)
    assert not plan.handled_fs & ll.AccessFs.RESOLVE_UNIX
    assert rules[os.path.realpath(tmp_path)] & ll.AccessFs.MAKE_REG
    assert plan.ro_binds == [os.path.realpath(tmp_path / ".git")]
    assert plan.handled_net == ll.AccessNet.from_all(7)


def test_without_namespaces_the_carve_out_splits(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    plan, _ = _plan(tmp_path, 7, ns=False)
    rules = dict(plan.landlock_rules)
    root = os.path.realpath(tmp_path)
    assert plan.ro_binds == []
    assert not rules[root] & ll.AccessFs.MAKE_REG  # fails closed at the top level
    assert rules[root + "/src"] & ll.AccessFs.MAKE_REG
    assert not rules[root + "/.git"] & ll.AccessFs.WRITE_FILE


def test_abi_9_adds_resolve_unix_layer(tmp_path):
    allowed = tmp_path / "x11"
    allowed.mkdir()
    (allowed / "X9").mkdir()
    plan, sock = _plan(tmp_path, 9, allow_unix_sockets=[str(allowed)])
    rules = dict(plan.landlock_rules)
    assert plan.handled_fs & ll.AccessFs.RESOLVE_UNIX
    assert rules[sock] & ll.AccessFs.RESOLVE_UNIX
    assert rules[os.path.realpath(allowed)] & ll.AccessFs.RESOLVE_UNIX
    assert not any(r & ll.AccessFs.RESOLVE_UNIX for p, r in rules.items() if p in ("/", "/usr"))
    # the filesystem rights there survive the merge
    assert rules[os.path.realpath(allowed)] & ll.AccessFs.READ_FILE
