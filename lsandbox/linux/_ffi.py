"""``ffi`` (the declarations of ``_cdef``, pre-parsed by ``scripts/generate.py`` into the
committed ``_ffi_abi``) and ``lib`` (libc), for ``_sys`` and ``_caps``; syscall numbers come
from ``seccomp_bpf``'s tables.
"""

from ._ffi_abi import ffi

lib = ffi.dlopen(None)
