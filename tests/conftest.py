"""Shared pytest configuration.

Kernel tests never install a filter or a Landlock ruleset in the pytest process itself:
they fork (see ``tests/helpers``) and observe the child from outside.
"""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if sys.platform != "linux":
        skip = pytest.mark.skip(reason="Linux kernel test")
        for item in items:
            if "kernel" in item.keywords or "security" in item.keywords:
                item.add_marker(skip)
