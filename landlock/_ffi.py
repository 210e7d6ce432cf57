"""``ffi``/``ffi_packed`` (the declarations of ``_cdef``, pre-parsed by ``scripts/generate.py``
into the committed ``_ffi_abi``/``_ffi_packed_abi``: no compiler at install, no C parsing at
import), ``lib`` (libc) and the syscall numbers. Only ``_bindings`` uses them. A loader of its
own because ``landlock`` imports nothing from this repository.
"""

from ._ffi_abi import ffi
from ._ffi_packed_abi import ffi as ffi_packed  # noqa: F401 - used by _bindings

lib = ffi.dlopen(None)

# Same numbers on x86_64 and aarch64 (the unified syscall table). Written out rather than
# taken from seccomp_bpf's tables: landlock depends on nothing else in this repository (a
# unit test checks them against the tables).
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
SYS_OPENAT2 = 437
