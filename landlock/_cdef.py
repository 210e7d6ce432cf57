"""C declarations for the Landlock syscalls (cffi ABI mode). Read only by
``scripts/generate.py``, which pre-parses them into ``_ffi_abi`` and ``_ffi_packed_abi``.

The UAPI structs are declared by us, pinned to the kernel ABI: ``landlock_path_beneath_attr``
is packed (12 bytes).
"""

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
