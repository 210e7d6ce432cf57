"""Syscall name <-> number tables per architecture.

The numbers are the generated modules ``_syscalls_<arch>`` (``tools/gen_tables.py``, from the
kernel's UAPI tables via ``syscalls.json``; cross-checked against libseccomp in the tests),
one per architecture, each imported when a table of its architecture is first asked for.
"""

from __future__ import annotations

import os
from functools import cache

from ._consts import ARCHES

_TABLES: dict[str, dict[str, int]] = {}


def native_arch() -> str:
    """This machine's architecture name as our tables spell it."""
    m = os.uname().machine
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def _table(arch: str) -> dict[str, int]:
    table = _TABLES.get(arch)
    if table is None:
        if arch not in ARCHES:
            raise ValueError(f"unsupported architecture {arch!r}; supported: {', '.join(ARCHES)}")
        module = __import__(f"{__package__}._syscalls_{arch}", fromlist=["TABLE"])
        table = _TABLES[arch] = module.TABLE
    return table


def syscall_number(name: str, arch: str | None = None) -> int:
    """Number of syscall ``name`` on ``arch`` (default: native); KeyError if it has none."""
    table = _table(arch or native_arch())
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no syscall {name!r} on {arch or native_arch()}") from None


def has_syscall(name: str, arch: str | None = None) -> bool:
    return name in _table(arch or native_arch())


def syscall_names(arch: str | None = None) -> list[str]:
    return list(_table(arch or native_arch()))


@cache
def syscall_name(nr: int, arch: str | None = None) -> str | None:
    for name, n in _table(arch or native_arch()).items():
        if n == nr:
            return name
    return None
