"""C declarations for the Landlock syscalls (cffi ABI mode: no compiler, no kernel headers).

Only ``_bindings`` touches ``ffi``/``lib``. The UAPI structs are declared by us, pinned to the
kernel ABI: ``landlock_path_beneath_attr`` is packed (12 bytes).
"""

from __future__ import annotations

import cffi

ffi = cffi.FFI()
ffi.cdef(
    """
    struct landlock_ruleset_attr { uint64_t handled_access_fs; uint64_t handled_access_net;
                                   uint64_t scoped; };
    struct landlock_net_port_attr { uint64_t allowed_access; uint64_t port; };
    long syscall(long number, ...);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5);
    """,
    packed=False,
)
# The packed struct is declared separately: cffi's packed flag applies to a whole cdef.
ffi_packed = cffi.FFI()
ffi_packed.cdef("struct landlock_path_beneath_attr { uint64_t allowed_access; int32_t parent_fd; };",
                packed=True)
lib = ffi.dlopen(None)

# Same numbers on x86_64 and aarch64 (the unified syscall table).
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
