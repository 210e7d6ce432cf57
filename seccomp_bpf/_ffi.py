"""``ffi`` (the declarations of ``_cdef``, pre-parsed by ``scripts/generate.py`` into the
committed ``_ffi_abi``: cffi's out-of-line ABI mode, so no compiler at install and no C
parsing at import) and ``lib`` (libc). Only ``_kernel`` uses them. Each package keeps its own
two-line loader because ``seccomp_bpf`` and ``landlock`` import nothing from this repository.
"""

from ._ffi_abi import ffi

lib = ffi.dlopen(None)
