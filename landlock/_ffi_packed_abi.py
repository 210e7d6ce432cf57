# auto-generated file: scripts/generate.py from landlock._cdef.CDEF_PACKED
import _cffi_backend

ffi = _cffi_backend.FFI('landlock._ffi_packed_abi',
    _version = 0x2601,
    _types = b'\x00\x00\x15\x01\x00\x00\x00\x09\x00\x00\x18\x01',
    _struct_unions = ((b'\x00\x00\x00\x01\x00\x00\x00\x06landlock_path_beneath_attr',b'\x00\x00\x02\x11allowed_access',b'\x00\x00\x00\x11parent_fd'),),
)
