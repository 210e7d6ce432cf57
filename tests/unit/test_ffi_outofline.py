"""The pre-parsed cffi modules are used only when they match the declarations exactly."""

from __future__ import annotations

import importlib
import sys

import seccomp_bpf._ffi as sbffi


def test_emitted_module_matches_and_is_used(tmp_path, monkeypatch):
    cdef = "long syscall(long number, ...);"
    path = tmp_path / "_probe_abi.py"
    sbffi.emit(cdef, "_probe_abi", str(path))
    text = path.read_text()
    assert "import _cffi_backend" in text and "CDEF_CRC" in text
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("_probe_abi")
    assert mod.ffi.dlopen(None).syscall is not None
    # a stale module (different declarations) is ignored: parsing happens instead
    ffi = sbffi._load(cdef + "\nint getpid(void);", "_ffi_abi")
    assert ffi.dlopen(None).getpid() > 0
    sys.modules.pop("_probe_abi", None)
