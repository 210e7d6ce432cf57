"""The broker's compiled fast path, when it is built and current (else ``lib is None``).

``LSANDBOX_BROKER_NO_FASTPATH=1`` turns it off (the pure-Python broker then serves
everything), which is how the tests run the security suite against both.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~4 ms at every start; type checkers see True
if TYPE_CHECKING:
    from typing import Any


ENV_OFF = "LSANDBOX_BROKER_NO_FASTPATH"
ffi: Any = None
lib: Any = None
why_not = ""


def _load() -> None:
    global ffi, lib, why_not
    if os.environ.get(ENV_OFF, "") not in ("", "0"):
        why_not = f"turned off ({ENV_OFF})"
        return
    try:
        from . import _fastpath_c  # type: ignore[attr-defined]
    except ImportError:
        why_not = "not built (make speedups)"
        return
    from ._fastpath_build import stamp

    if _fastpath_c.lib.lsb_fast_stamp() != stamp():
        why_not = "stale build (make speedups)"
        return
    ffi, lib = _fastpath_c.ffi, _fastpath_c.lib


_load()

# Return codes of lsb_fast_next (see _fastpath.h).
NONE, WAKE, HUP, SLOW, DECIDE = 0, 1, 2, 3, 4
