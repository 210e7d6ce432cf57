"""The one build step for generated code: ``make generate`` (everything) and ``make speedups``
(``--ffi``: the FFI modules only, run by ``make setup``).

Committed, pure Python, regenerated here (``tests/unit/test_generated.py`` checks that
regenerating gives the same bytes):

* ``seccomp_bpf/_syscalls.py``: the syscall tables, from ``seccomp_bpf/syscalls.json``;
* the cffi out-of-line ABI modules ``_ffi_abi.py`` (and landlock's ``_ffi_packed_abi.py``)
  next to each ``_cdef.py``: the C declarations pre-parsed.

Built, not committed: the broker's C fast path (cffi API mode, ``lsandbox/linux/_fastpath.h``;
needs a C compiler and the Python headers). Its absence only costs speed.

``--check``: write nothing, exit 1 naming every committed module that would change.
"""

from __future__ import annotations

import contextlib
import functools
import io
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


def _path(module: str) -> str:
    return os.path.join(ROOT, *module.split(".")) + ".py"


def syscalls_module() -> str:
    sys.path.insert(0, os.path.join(ROOT, "seccomp_bpf", "tools"))
    try:
        import gen_tables
    finally:
        sys.path.pop(0)
    return gen_tables.module_text()


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


def generated(ffi_only: bool = False) -> dict[str, Callable[[], str]]:
    """Committed path (relative to the repository) -> its text, computed on call."""
    out: dict[str, Callable[[], str]] = {}
    if not ffi_only:
        out["seccomp_bpf/_syscalls.py"] = syscalls_module
    for package, module, attr, packed in FFI_MODULES:
        out[os.path.relpath(_path(f"{package}.{module}"), ROOT)] = functools.partial(
            ffi_module, package, module, attr, packed)
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
            with open(path) as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old == new:
            continue
        stale.append(rel)
        if not check:
            with open(path, "w") as f:
                f.write(new)
            print(f"generate: wrote {rel}")
    if check:
        for rel in stale:
            print(f"generate: {rel} is not what scripts/generate.py makes", file=sys.stderr)
        return 1 if stale else 0
    build_fastpath()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
