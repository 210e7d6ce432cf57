"""Committed generated modules (``scripts/generate.py``): regenerating each gives the same
bytes, so the committed file is what its generator makes of its source and nobody edited it
by hand."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("_generate", os.path.join(ROOT, "scripts", "generate.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


@pytest.mark.parametrize("rel", sorted(GEN.generated()))  # type: ignore[attr-defined]
def test_regenerating_gives_the_same_bytes(rel):
    with open(os.path.join(ROOT, rel)) as f:
        committed = f.read()
    assert GEN.generated()[rel]() == committed, f"{rel}: run `make generate`"  # type: ignore[attr-defined]


def test_the_committed_ffi_modules_declare_the_uapi_layouts():
    from landlock._ffi import ffi as ll
    from landlock._ffi import ffi_packed
    from seccomp_bpf._ffi import ffi as sb

    assert ffi_packed.sizeof("struct landlock_path_beneath_attr") == 12
    assert ll.sizeof("struct landlock_ruleset_attr") == 24
    assert sb.sizeof("struct sock_filter") == 8
