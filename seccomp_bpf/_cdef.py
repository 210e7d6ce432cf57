"""C declarations of ``seccomp(2)``'s structs and the libc calls ``_kernel`` makes (cffi ABI
mode). Read only by ``scripts/generate.py``, which pre-parses them into ``_ffi_abi``.

The UAPI structs are declared here by us; their layouts are pinned by the kernel ABI and
checked by the tests against ``SECCOMP_GET_NOTIF_SIZES``.
"""

CDEF = """
    struct sock_filter { uint16_t code; uint8_t jt; uint8_t jf; uint32_t k; };
    struct sock_fprog { unsigned short len; struct sock_filter *filter; };
    struct seccomp_notif_sizes { uint16_t seccomp_notif; uint16_t seccomp_notif_resp;
                                 uint16_t seccomp_data; };
    long syscall(long number, ...);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5);
    """
