"""C declarations for the Linux backend's own syscalls (cffi ABI mode, our own declarations).

Only ``_sys`` uses ``ffi``/``lib``. Numbers are per architecture; the unified table gives the
newer calls the same number on x86_64 and aarch64.
"""

from __future__ import annotations

from typing import Any

from seccomp_bpf._ffi import _load as _sb_load
from seccomp_bpf._ffi import emit as _sb_emit

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


def _load(cdef: str, module: str) -> Any:
    return _sb_load(cdef, module, package=__package__)


def emit(cdef: str, module: str, path: str, *, packed: bool = False) -> None:
    _sb_emit(cdef, module, path, packed=packed, package=__package__)


ffi = _load(CDEF, "_ffi_abi")
lib = ffi.dlopen(None)

SYS = {
    "x86_64": {"unshare": 272, "clone": 56, "openat2": 437, "pidfd_getfd": 438, "pidfd_open": 434},
    "aarch64": {"unshare": 97, "clone": 220, "openat2": 437, "pidfd_getfd": 438, "pidfd_open": 434},
}
