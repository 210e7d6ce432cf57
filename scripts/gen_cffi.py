"""Generate the out-of-line cffi ABI modules (pre-parsed declarations) next to each _ffi.py,
and compile the broker's C fast path (``lsandbox/linux/_fastpath.h``).

Run by `make` after installing the package; the modules are build products (gitignored). A
stale or missing module is detected by a CRC of the declarations and replaced by parsing at
import time, so this step only makes startup faster, never changes behaviour.
"""

from __future__ import annotations

import os
import sys

import landlock._ffi as ll
import lsandbox.linux._ffi as lx
import seccomp_bpf._ffi as sb

for mod, cdef, name, packed in (
    (sb, sb.CDEF, "_ffi_abi", False),
    (lx, lx.CDEF, "_ffi_abi", False),
    (ll, ll.CDEF, "_ffi_abi", False),
    (ll, ll.CDEF_PACKED, "_ffi_packed_abi", True),
):
    path = os.path.join(os.path.dirname(mod.__file__), name + ".py")
    mod.emit(cdef, name, path, packed=packed)

# The broker's compiled fast path (API mode: needs a C compiler and the Python headers). Its
# absence only costs speed: the broker then serves everything in Python.
try:
    from lsandbox.linux._fastpath_build import build

    build()
except Exception as e:  # noqa: BLE001 - report and go on: a build step, not a requirement
    print(f"gen_cffi: broker fast path not built ({e}); the broker runs in pure Python", file=sys.stderr)
