"""Committed generated modules: regenerating each gives the same bytes (so the committed
file is what its generator makes of its source, and nobody edited it by hand)."""

from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(path: str, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read(path: str) -> str:
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def test_syscall_tables_regenerate_identically():
    gen = _load("seccomp_bpf/tools/gen_tables.py", "_gen_tables")
    assert gen.module_text() == _read("seccomp_bpf/_syscalls.py")  # type: ignore[attr-defined]
