"""C declarations for the Linux backend's own libc calls (cffi ABI mode). Read only by
``scripts/generate.py``, which pre-parses them into ``_ffi_abi``.
"""

CDEF = """
    long syscall(long number, ...);
    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data);
    """
