"""Policy -> LinuxPlan without the kernel: Landlock rights per ABI, RESOLVE_UNIX on ABI 9."""

from __future__ import annotations

import os

import pytest

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
    assert plan.ro_binds == (os.path.realpath(tmp_path / ".git"),)
    assert plan.handled_net == ll.AccessNet.from_all(7)


def test_without_namespaces_the_carve_out_splits(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    plan, _ = _plan(tmp_path, 7, ns=False)
    rules = dict(plan.landlock_rules)
    root = os.path.realpath(tmp_path)
    assert plan.ro_binds == ()
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


def test_filter_a_compiled_after_fork_is_the_same_program():
    """The launcher builds the plan without filter A and sends `filter_a_bytes` to the child
    after the fork: the bytes must be exactly the plan's own filter A."""
    import lsandbox.linux._plan as lp
    from lsandbox.linux._features import features

    pol = load_policy(None, ":workspace", cwd="/tmp", search=False, requirements=None)
    full = lp.build_plan(pol, "/tmp", features())
    deferred = lp.build_plan(pol, "/tmp", features(), filter_a=False)
    assert deferred.filter_a is None and full.filter_a is not None
    assert lp.filter_a_bytes(deferred) == full.filter_a


def test_deferred_filter_b_is_the_plans_own():
    """The launcher leaves filter B out of the plan too and sends it after the fork, before A:
    the bytes must be exactly the plan's own filter B."""
    import lsandbox.linux._plan as lp
    from lsandbox.linux._features import features

    pol = load_policy(None, ":workspace", cwd="/tmp", search=False, requirements=None)
    for report in (False, True):
        full = lp.build_plan(pol, "/tmp", features(), report_refusals=report)
        deferred = lp.build_plan(pol, "/tmp", features(), filter_a=False, filter_b=False, report_refusals=report)
        assert deferred.filter_b is None and full.filter_b is not None
        assert lp.filter_b_bytes(deferred) == full.filter_b
        assert deferred.replace(filter_b=full.filter_b, filter_a=full.filter_a) == full


@pytest.mark.parametrize("kind", [b"A", b"B"])
def test_child_refuses_a_malformed_filter_message(kind):
    import _socket

    from lsandbox.linux._child import _receive_filter

    other = b"B" if kind == b"A" else b"A"
    for msg in (b"", other + bytes(8), kind, kind + bytes(7), kind + bytes(12)):
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            if msg:
                a.send(msg)
            a.close()
            with pytest.raises(OSError, match=f"filter {kind.decode()} was not received"):
                _receive_filter(b, kind)
        finally:
            b.close()
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    a.send(kind + bytes(range(16)))
    assert _receive_filter(b, kind) == bytes(range(16))
    a.close()
    b.close()


def test_install_filter_refuses_bytes_that_are_not_instructions():
    """Checked before any syscall (so this runs in the test process without installing)."""
    import seccomp_bpf as sb

    for code in (b"", b"\0" * 7, b"\0" * 12):
        with pytest.raises(ValueError):
            sb.install_filter(code)
