"""C declarations for the Landlock syscalls (cffi ABI mode: no compiler, no kernel headers).

Only ``_bindings`` touches ``ffi``/``lib``. The UAPI structs are declared by us, pinned to the
kernel ABI: ``landlock_path_beneath_attr`` is packed (12 bytes).
"""

from __future__ import annotations

import zlib

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    from typing import Any


CDEF = """
    struct landlock_ruleset_attr { uint64_t handled_access_fs; uint64_t handled_access_net;
                                   uint64_t scoped; };
    struct landlock_net_port_attr { uint64_t allowed_access; uint64_t port; };
    long syscall(long number, ...);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5);
    """
# The packed struct is declared separately: cffi's packed flag applies to a whole cdef.
CDEF_PACKED = "struct landlock_path_beneath_attr { uint64_t allowed_access; int32_t parent_fd; };"
def _load(cdef: str, module: str, *, packed: bool = False) -> Any:
    """The FFI for ``cdef``: the pre-parsed out-of-line module ``module`` when it was generated
    for exactly this ``cdef`` (``scripts/gen_cffi.py``, run by ``make``; importing it costs
    ~3 ms instead of ~40 ms of C parsing at every start), else parse ``cdef`` now."""
    try:
        mod = __import__(f"{__package__}.{module}", fromlist=["ffi"])  # importlib: ~0.4 ms more
        if getattr(mod, "CDEF_CRC", None) == zlib.crc32(cdef.encode()):
            return mod.ffi
    except ImportError:
        pass
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef, packed=packed)
    return ffi


def emit(cdef: str, module: str, path: str, *, packed: bool = False) -> None:
    """Write the out-of-line ABI module for ``cdef`` to ``path`` (used by scripts/gen_cffi.py)."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef, packed=packed)
    ffi.set_source(f"{__package__}.{module}", None)
    ffi.emit_python_code(path)
    with open(path, "a") as f:
        f.write(f"CDEF_CRC = {zlib.crc32(cdef.encode())}\n")


ffi = _load(CDEF, "_ffi_abi")
ffi_packed = _load(CDEF_PACKED, "_ffi_packed_abi", packed=True)
lib = ffi.dlopen(None)

# Same numbers on x86_64 and aarch64 (the unified syscall table). Written out rather than
# taken from seccomp_bpf's tables: landlock depends on nothing else in this repository (a
# unit test checks them against the tables).
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
