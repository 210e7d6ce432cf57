"""C declarations for the Linux backend's own syscalls (cffi ABI mode, our own declarations).

Only ``_sys`` uses ``ffi``/``lib``. Numbers are per architecture; the unified table gives the
newer calls the same number on x86_64 and aarch64.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any

CDEF = """
    long syscall(long number, ...);
    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data);
    struct iovec { void *iov_base; size_t iov_len; };
    ssize_t process_vm_readv(int pid, const struct iovec *local_iov, unsigned long liovcnt,
                             const struct iovec *remote_iov, unsigned long riovcnt,
                             unsigned long flags);
    struct open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
    int connect(int fd, const void *addr, unsigned int addrlen);
    int bind(int fd, const void *addr, unsigned int addrlen);
    """
def _load(cdef: str, module: str, *, packed: bool = False) -> Any:
    """The FFI for ``cdef``: the pre-parsed out-of-line module ``module`` when it was generated
    for exactly this ``cdef`` (``scripts/gen_cffi.py``, run by ``make``; importing it costs
    ~3 ms instead of ~40 ms of C parsing at every start), else parse ``cdef`` now."""
    try:
        mod = importlib.import_module(f"{__package__}.{module}")
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
lib = ffi.dlopen(None)

SYS = {
    "x86_64": {"unshare": 272, "clone": 56, "openat2": 437, "pidfd_getfd": 438, "pidfd_open": 434},
    "aarch64": {"unshare": 97, "clone": 220, "openat2": 437, "pidfd_getfd": 438, "pidfd_open": 434},
}
