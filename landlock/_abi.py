"""ABI detection with a clamp, so tests can exercise every older ABI on a newer kernel.

``LANDLOCK_MAX_ABI=N`` in the environment (or ``max_abi=`` in the API) makes the library
behave exactly as on a kernel whose best ABI is N: the same rights are dropped, the same
errors raised. The clamp can only lower the ABI, never raise it.
"""

from __future__ import annotations

import errno
import os

from . import _bindings

ENV_MAX_ABI = "LANDLOCK_MAX_ABI"
_cached: int | None = None


def kernel_abi() -> int:
    """The kernel's Landlock ABI (0 when Landlock is missing or disabled)."""
    global _cached
    if _cached is None:
        try:
            _cached = _bindings.query(_bindings.CREATE_RULESET_VERSION)
        except OSError as e:
            if e.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
                _cached = 0
            else:
                raise
    return _cached


def abi_version(max_abi: int | None = None) -> int:
    """The ABI this library will use: the kernel's, clamped by ``max_abi`` and the env var."""
    abi = kernel_abi()
    env = os.environ.get(ENV_MAX_ABI)
    if env:
        try:
            abi = min(abi, int(env))
        except ValueError:
            raise ValueError(f"{ENV_MAX_ABI}={env!r} is not an integer") from None
    if max_abi is not None:
        abi = min(abi, max_abi)
    return max(abi, 0)


def errata(max_abi: int | None = None) -> int:
    """Bitmask of Landlock errata fixed in this kernel (0 before the query existed, ABI < 7)."""
    if abi_version(max_abi) < 7:
        return 0
    try:
        return _bindings.query(_bindings.CREATE_RULESET_ERRATA)
    except OSError:
        return 0
