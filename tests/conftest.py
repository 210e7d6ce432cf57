"""Shared pytest configuration.

Kernel tests never install a filter or a Landlock ruleset in the pytest process itself:
they fork (see ``tests/helpers``) and observe the child from outside.
"""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Modules that run their own unprivileged variants from root (setpriv, unshare, chown of
# their fixtures): an unprivileged pytest run (``make test-kernels``' second pass) skips them.
ROOT_DRIVEN = tuple(f"tests/{m}.py" for m in (
    "security/test_hardening_view", "security/test_hardening_proc_tty", "security/test_hardening_caps",
    "security/test_hardening_truncate", "security/test_hardening_filter", "security/test_hardening_no_namespaces",
    "security/test_redteam", "security/test_pathops_split", "security/test_pathops_metadata",
    "security/test_broker_identity", "security/test_broker_signals", "security/test_network_domains_e2e",
    "security/test_unix_bind_umask", "security/test_unix_socket_dir", "security/test_x11_e2e",
    "kernel/test_pathops_docker", "kernel/test_refusal_reports", "kernel/test_input_errors",
    "kernel/test_flags_e2e"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if sys.platform == "linux" and os.geteuid() != 0:
        skip = pytest.mark.skip(reason="drives its own nobody variants from root (setpriv/unshare): needs root")
        for item in items:
            if item.nodeid.startswith(ROOT_DRIVEN):
                item.add_marker(skip)
    if sys.platform != "linux":
        skip = pytest.mark.skip(reason="Linux kernel test")
        for item in items:
            if "kernel" in item.keywords or "security" in item.keywords:
                item.add_marker(skip)


def _run_refused() -> str:
    """Why ``lsandbox run`` refuses to start on this kernel ('' when it starts): a real kernel
    without Landlock (5.10 in ``make test-kernels``) where nothing else carries the policy."""
    if sys.platform != "linux":
        return ""
    import landlock

    if landlock.kernel_abi() != 0:
        return ""
    from lsandbox.linux._features import features, filesystem_unenforced, mount_view_built

    return filesystem_unenforced(0, features().namespaces, True if mount_view_built() else None) or ""


RUN_REFUSED = _run_refused()
NO_LANDLOCK = sys.platform == "linux" and __import__("landlock").kernel_abi() == 0
REFUSAL = "Landlock is not available in this kernel"
REFUSAL_END = "the filesystem policy cannot be enforced"  # what survives pytest's truncation


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """On a real kernel without Landlock (5.10), a test whose sandbox was refused with exactly
    that error (no mount namespace to carry the policy either: the container modes) is
    reported as skipped with the reason (tests/kernel/test_no_landlock.py checks the refusal
    itself); any other failure stays a failure."""
    outcome = yield
    rep = outcome.get_result()
    text = str(rep.longrepr)
    if (NO_LANDLOCK and rep.failed and call.when == "call" and (REFUSAL in text or REFUSAL_END in text)
            and not item.nodeid.startswith("tests/kernel/test_no_landlock.py")):
        rep.outcome = "skipped"
        why = text.split(REFUSAL, 1)[1].split("\n", 1)[0].split("'", 1)[0] if REFUSAL in text else \
            " (and no mount namespace): " + REFUSAL_END
        rep.longrepr = (str(item.path), item.location[1] or 0,
                        f"Skipped: lsandbox run refuses to start here: {REFUSAL}{why}")
    return None
