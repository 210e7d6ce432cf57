"""The one build step for generated code: ``make generate`` (everything) and ``make speedups``
(``--ffi``: the FFI modules only, run by ``make setup``).

Committed (Python modules and one data file per architecture), regenerated here
(``tests/unit/test_generated.py`` checks that regenerating gives the same bytes):

* ``seccomp_bpf/_syscalls_<arch>.py``: the syscall tables, from ``seccomp_bpf/syscalls.json``;
* ``lsandbox/linux/_filters_<arch>.bin``: filters A and B for every parameter combination,
  compiled from their rules (``lsandbox.linux._filters``: the format, and why a data file);
* the cffi out-of-line ABI modules ``_ffi_abi.py`` (and landlock's ``_ffi_packed_abi.py``)
  next to each ``_cdef.py``: the C declarations pre-parsed.

Built, not committed: the broker's C fast path (cffi API mode, ``lsandbox/linux/_fastpath.h``;
needs a C compiler and the Python headers). Its absence only costs speed.

``--check``: write nothing, exit 1 naming every committed file that would change.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import os
import sys
import tempfile
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: (package, module, cdef attribute of the package's _cdef, packed)
FFI_MODULES = (
    ("seccomp_bpf", "_ffi_abi", "CDEF", False),
    ("landlock", "_ffi_abi", "CDEF", False),
    ("landlock", "_ffi_packed_abi", "CDEF_PACKED", True),
    ("lsandbox.linux", "_ffi_abi", "CDEF", False),
)
ARCHES = ("x86_64", "aarch64")


def _path(module: str) -> str:
    return os.path.join(ROOT, *module.split(".")) + ".py"


def syscalls_module(arch: str) -> str:
    sys.path.insert(0, os.path.join(ROOT, "seccomp_bpf", "tools"))
    try:
        import gen_tables
    finally:
        sys.path.pop(0)
    return gen_tables.module_texts()[gen_tables.module_name(arch)]


def ffi_module(package: str, module: str, attr: str, packed: bool) -> str:
    """cffi's out-of-line ABI module for ``package._cdef.<attr>``."""
    import importlib

    import cffi

    cdef = getattr(importlib.import_module(f"{package}._cdef"), attr)
    ffi = cffi.FFI()
    ffi.cdef(cdef, packed=packed)
    ffi.set_source(f"{package}.{module}", None)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.py")
        with contextlib.redirect_stdout(io.StringIO()):  # cffi prints "generating <path>"
            ffi.emit_python_code(path)
        with open(path) as f:
            text = f.read()
    return text.replace("# auto-generated file\n", f"# auto-generated file: scripts/generate.py from {package}._cdef.{attr}\n", 1)


def filters_table(arch: str) -> bytes:
    from lsandbox.linux._filters import (
        A_PARAMS,
        B_PARAMS,
        compile_filter_a,
        compile_filter_b,
        encode_table,
    )

    tables: list[list[bytes]] = []
    compilers: tuple[tuple[tuple[str, ...], Callable[..., object]], ...] = (
        (A_PARAMS, compile_filter_a), (B_PARAMS, compile_filter_b))
    for params, compile_ in compilers:
        tables.append([compile_(arch, **dict(zip(params, key, strict=True))).to_bytes()  # type: ignore[attr-defined]
                       for key in itertools.product((False, True), repeat=len(params))])
    return encode_table(*tables)


def generated(ffi_only: bool = False) -> dict[str, Callable[[], str | bytes]]:
    """Committed path (relative to the repository) -> its text (bytes for a data file),
    computed on call."""
    out: dict[str, Callable[[], str | bytes]] = {}
    if not ffi_only:
        for arch in ARCHES:
            out[f"seccomp_bpf/_syscalls_{arch}.py"] = functools.partial(syscalls_module, arch)
    for package, module, attr, packed in FFI_MODULES:
        out[os.path.relpath(_path(f"{package}.{module}"), ROOT)] = functools.partial(
            ffi_module, package, module, attr, packed)
    if not ffi_only:
        for arch in ARCHES:
            out[f"lsandbox/linux/_filters_{arch}.bin"] = functools.partial(filters_table, arch)
    return out


def build_fastpath() -> None:
    try:
        from lsandbox.linux._fastpath_build import build

        build()
    except Exception as e:  # noqa: BLE001 - report and go on: the fast path is optional
        print(f"generate: broker fast path not built ({e}); the broker runs in pure Python", file=sys.stderr)


def main(argv: list[str]) -> int:
    check, ffi_only = "--check" in argv, "--ffi" in argv
    stale = []
    for rel, text in generated(ffi_only).items():
        path = os.path.join(ROOT, rel)
        new = text()
        try:
            with open(path, "rb" if isinstance(new, bytes) else "r") as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old == new:
            continue
        stale.append(rel)
        if not check:
            with open(path, "wb" if isinstance(new, bytes) else "w") as f:
                f.write(new)
            print(f"generate: wrote {rel}")
            if rel.startswith("seccomp_bpf/_syscalls_"):  # the filters are compiled with the new tables
                os.execv(sys.executable, [sys.executable, *sys.argv])
    if check:
        for rel in stale:
            print(f"generate: {rel} is not what scripts/generate.py makes", file=sys.stderr)
        return 1 if stale else 0
    build_fastpath()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
