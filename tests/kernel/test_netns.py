"""The sandbox's own network namespace when the network is off (lsandbox.linux._netns),
checked from outside with pyroute2, an independent netlink implementation."""

from __future__ import annotations

import os

import pytest

import lsandbox
from tests._sandbox import as_nobody_setup, policy
from tests._util import run_in_child

pytestmark = pytest.mark.kernel


def _links_of(pid: int) -> list[tuple[str, bool]]:
    from pyroute2 import IPRoute

    with IPRoute(netns=f"/proc/{pid}/ns/net") as ipr:
        return [(link.get_attr("IFLA_IFNAME"), bool(link["flags"] & 1)) for link in ipr.get_links()]


def _netns_of_sandbox(pol: lsandbox.Policy) -> str:
    """The command's own answer: the process the caller holds is init, which makes itself
    non-dumpable (its /proc/<pid>/ns is then root's to read, not an unprivileged caller's)."""
    r = lsandbox.run(["readlink", "/proc/self/ns/net"], policy=pol, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="pyroute2 enters the sandbox's network namespace: "
                    "needs CAP_SYS_ADMIN over its user namespace (root); the unprivileged case is "
                    "test_unprivileged_user_gets_its_own_namespace_too")
def test_network_off_gets_loopback_only():
    sbx = lsandbox.Sandbox(["sleep", "30"], policy=policy(":workspace"))
    try:
        assert os.readlink(f"/proc/{sbx.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert _links_of(sbx.pid) == [("lo", True)]
    finally:
        sbx.kill()
        sbx.wait()


def test_network_on_and_allow_all_unix_keep_the_host_namespace():
    host = os.readlink("/proc/self/ns/net")
    assert _netns_of_sandbox(policy(":workspace", network=True)) == host
    allow_all = policy(":workspace").replace(network=lsandbox.NetworkPolicy(False, (), True))
    assert _netns_of_sandbox(allow_all) == host  # abstract names outside must stay reachable


def _inside_as_nobody() -> tuple[str, str, str]:
    as_nobody_setup()
    res = lsandbox.run(["sh", "-c", "readlink /proc/self/ns/net; tail -n +3 /proc/net/dev"],
                       policy=policy(":read-only"), capture_output=True, text=True)
    return os.readlink("/proc/self/ns/net"), res.stdout, res.stderr


def test_unprivileged_user_gets_its_own_namespace_too():
    host, out, err = run_in_child(_inside_as_nobody, as_nobody=True, timeout=60).unwrap()
    ns, *devs = out.strip().split("\n")
    assert ns != host, err
    assert [d.split(":")[0].strip() for d in devs] == ["lo"]
