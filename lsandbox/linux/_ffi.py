"""C declarations for the Linux backend's own syscalls (cffi ABI mode, our own declarations).

Only ``_sys`` and ``_caps`` use ``ffi``/``lib``; syscall numbers come from ``seccomp_bpf``'s
tables.
"""

from __future__ import annotations

from seccomp_bpf._ffi import _load as _sb_load
from seccomp_bpf._ffi import emit as _sb_emit

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    from typing import Any

CDEF = """
    long syscall(long number, ...);
    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data);
    """


def _load(cdef: str, module: str) -> Any:
    return _sb_load(cdef, module, package=__package__)


def emit(cdef: str, module: str, path: str, *, packed: bool = False) -> None:
    _sb_emit(cdef, module, path, packed=packed, package=__package__)


ffi = _load(CDEF, "_ffi_abi")
lib = ffi.dlopen(None)
