"""C declarations (cffi ABI mode: no compiler or kernel headers at install).

The UAPI structs are declared here by us; their layouts are pinned by the kernel ABI and
checked by the tests against ``SECCOMP_GET_NOTIF_SIZES``. Only ``_bindings`` uses ``ffi``/``lib``.
"""

from __future__ import annotations

import cffi

ffi = cffi.FFI()
ffi.cdef(
    """
    struct sock_filter { uint16_t code; uint8_t jt; uint8_t jf; uint32_t k; };
    struct sock_fprog { unsigned short len; struct sock_filter *filter; };
    struct seccomp_notif_sizes { uint16_t seccomp_notif; uint16_t seccomp_notif_resp;
                                 uint16_t seccomp_data; };
    long syscall(long number, ...);
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5);
    """
)
lib = ffi.dlopen(None)

SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
