"""C declarations (cffi ABI mode: no compiler or kernel headers at install).

The UAPI structs are declared here by us; their layouts are pinned by the kernel ABI and
checked by the tests against ``SECCOMP_GET_NOTIF_SIZES``. Only ``_bindings`` uses ``ffi``/``lib``.
"""

from __future__ import annotations

import zlib

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    from typing import Any


CDEF = """
    struct sock_filter { uint16_t code; uint8_t jt; uint8_t jf; uint32_t k; };
    struct sock_fprog { unsigned short len; struct sock_filter *filter; };
    struct seccomp_notif_sizes { uint16_t seccomp_notif; uint16_t seccomp_notif_resp;
                                 uint16_t seccomp_data; };
    long syscall(long number, ...);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5);
    """
def _load(cdef: str, module: str, *, packed: bool = False, package: str = __package__) -> Any:
    """The FFI for ``cdef``: the pre-parsed out-of-line module ``module`` when it was generated
    for exactly this ``cdef`` (``scripts/gen_cffi.py``, run by ``make``; importing it costs
    ~3 ms instead of ~40 ms of C parsing at every start), else parse ``cdef`` now."""
    try:
        mod = __import__(f"{package}.{module}", fromlist=["ffi"])  # importlib: ~0.4 ms more
        if getattr(mod, "CDEF_CRC", None) == zlib.crc32(cdef.encode()):
            return mod.ffi
    except ImportError:
        pass
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef, packed=packed)
    return ffi


def emit(cdef: str, module: str, path: str, *, packed: bool = False, package: str = __package__) -> None:
    """Write the out-of-line ABI module for ``cdef`` to ``path`` (used by scripts/gen_cffi.py)."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef, packed=packed)
    ffi.set_source(f"{package}.{module}", None)
    ffi.emit_python_code(path)
    with open(path, "a") as f:
        f.write(f"CDEF_CRC = {zlib.crc32(cdef.encode())}\n")


ffi = _load(CDEF, "_ffi_abi")
lib = ffi.dlopen(None)
