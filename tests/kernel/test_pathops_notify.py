"""Filter B's path rules (``_split.notify_rules``, only without namespaces and with a split
directory): an open without O_CREAT never reaches the broker, an O_CREAT open always does.
Counted on the real kernel: a child under filter B makes thousands of plain opens and a few
creating ones while the real broker serves it and counts its notifications.

Shown to fail without the fix: with the open/openat rules unconditional (no
``masked_eq(O_CREAT, O_CREAT)``), the count is 3,000 + 10 instead of 10.
"""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest

import lsandbox
import seccomp_bpf as sb
from lsandbox.linux._broker import Broker
from lsandbox.linux._features import Features, features
from lsandbox.linux._plan import build_plan
from lsandbox.linux._unix_filter import install_and_hand_over
from tests._sandbox import world_dir
from tests.security._broker_cases import no_caps

pytestmark = [pytest.mark.kernel]


@pytest.fixture(autouse=True)
def _landlock() -> None:
    """Split directories exist only without namespaces, a mode that needs Landlock: without
    it (5.10) lsandbox refuses to start there (tests/kernel/test_no_landlock.py)."""
    if not features().landlock_abi:
        pytest.skip("no Landlock (Linux 5.13) and no namespaces: lsandbox refuses to start, no split directories")


def test_plan_traps_creation_only_without_namespaces_and_with_a_split():
    ws = world_dir("lsb-pn-")
    os.mkdir(os.path.join(ws, ".git"))
    try:
        pol = lsandbox.load_policy(None, ":workspace", cwd=ws, search=False, requirements=None)
        f = features()
        nons = build_plan(pol, "/tmp", Features(f.landlock_abi, True, False, f.root), filter_a=False)
        assert nons.split == (ws,)
        ns = build_plan(pol, "/tmp", Features(f.landlock_abi, True, True, f.root), filter_a=False)
        assert ns.split == ()
        arch, x = sb.native_arch(), sb.ARCHES[sb.native_arch()]
        at = sb.syscall_number("openat")
        notif = 0x7FC00000
        for flags, want in ((os.O_RDONLY, False), (os.O_RDWR | os.O_TRUNC, False), (os.O_CREAT | os.O_WRONLY, True),
                            (os.O_CREAT | os.O_EXCL | os.O_RDWR | (0xFFFF << 32), True)):
            got = sb.simulate(nons.filter_b, sb.SeccompData(at, x, 0, (0, 0, flags, 0, 0, 0)))
            assert (got == notif) is want, (flags, hex(got))
            assert sb.simulate(ns.filter_b, sb.SeccompData(at, x, 0, (0, 0, flags, 0, 0, 0))) != notif
        mk = sb.syscall_number("mkdirat", arch)
        assert sb.simulate(nons.filter_b, sb.SeccompData(mk, x, 0, (0,) * 6)) == notif
    finally:
        shutil.rmtree(ws, ignore_errors=True)


def test_opens_without_o_creat_never_notify():
    ws = world_dir("lsb-pn-")
    os.mkdir(os.path.join(ws, ".git"))
    existing = os.path.join(ws, "existing")
    with open(existing, "w") as f:
        f.write("x")
    try:
        pol = lsandbox.load_policy(None, ":workspace", cwd=ws, search=False, requirements=None)
        f = features()
        plan = build_plan(pol, "/tmp", Features(f.landlock_abi, True, False, f.root), filter_a=False)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                parent.close()
                no_caps()  # as the launcher's command: no capability (the broker threads have none)
                sb.set_no_new_privs()
                install_and_hand_over(plan.filter_b, child, brokers_sendmsg=False)
                for _ in range(1000):
                    os.close(os.open(existing, os.O_RDONLY))
                    os.close(os.open(existing, os.O_WRONLY | os.O_APPEND))
                    os.close(os.open(existing, os.O_RDWR | os.O_TRUNC))
                for i in range(10):
                    os.close(os.open(os.path.join(ws, f"new{i}"), os.O_CREAT | os.O_WRONLY, 0o644))
                code = 0
            finally:
                os._exit(code)
        child.close()
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
        events: list[dict] = []
        broker = Broker(fds[0], pol, "/tmp", events.append)
        broker.start()
        _, status = os.waitpid(pid, 0)
        deadline = time.monotonic() + 10
        while not broker.finished.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = dict(broker.stats)
        ops = broker._path_ops_state.stats  # type: ignore[attr-defined]
        broker.close()
        parent.close()
        assert os.waitstatus_to_exitcode(status) == 0
        assert stats["fast"] + stats["slow"] == 10, stats
        assert ops["continued"] + ops["performed"] == 10, ops
        assert all(os.path.exists(os.path.join(ws, f"new{i}")) for i in range(10))
    finally:
        shutil.rmtree(ws, ignore_errors=True)
