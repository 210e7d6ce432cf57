"""The broker's compiled fast path, when it is built and current (else ``lib is None``).

``LSANDBOX_BROKER_NO_FASTPATH=1`` turns it off (the pure-Python broker then serves
everything), which is how the tests run the security suite against both. The same module
holds the sandbox init's fork of the command (:func:`child_module`).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._broker_decide import UnixRules


ENV_OFF = "LSANDBOX_BROKER_NO_FASTPATH"
ffi: Any = None
lib: Any = None
why_not = ""

# Return codes of lsb_fast_next / lsb_fast_serve (see _fastpath.h).
NONE, WAKE, HUP, SLOW, DECIDE, BLOCKED = 0, 1, 2, 3, 4, 5
# Flags of the exported rule table and of lsb_rules_lookup (see _fastpath.h).
R_ALLOW, R_NONE, R_EXPOSE = 1, 2, 4


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


def child_module() -> Any:
    """The compiled module (its ``ffi`` and ``lib``) for ``_child``'s fork of the command,
    whatever the broker's switch says; None where it is not built or stale."""
    try:
        from . import _fastpath_c  # type: ignore[attr-defined]
    except ImportError:
        return None
    from ._fastpath_build import stamp

    return _fastpath_c if _fastpath_c.lib.lsb_fast_stamp() == stamp() else None


def export_rules(rules: UnixRules, rename_roots: tuple[str, ...]) -> Any:
    """The AF_UNIX rules as the C table ``struct lsb_rules`` (freed with the returned cdata),
    or None without the compiled module or memory. ``rename_roots``: where the sandbox can
    rename (``Provenance.rename_roots``): sockets below them are left to Python."""
    if lib is None:
        return None
    from ..policy._model import SocketAccess

    entries: dict[bytes, int] = {}
    for path, rule in rules.table.items():
        key = os.fsencode(path)
        entries[key] = entries.get(key, 0) | (R_ALLOW if rule.access == SocketAccess.ALLOW else R_NONE)
    for path in rename_roots:
        key = os.fsencode(path)
        entries[key] = entries.get(key, 0) | R_EXPOSE
    t = lib.lsb_rules_new(len(entries), 1 if rules.allow_all else 0)
    if t == ffi.NULL:
        return None
    t = ffi.gc(t, lib.lsb_rules_free)
    for key, flags in entries.items():
        if lib.lsb_rules_add(t, key, len(key), flags) != 0:
            return None
    return t


def lookup(table: Any, path: str) -> int:
    """``lsb_rules_lookup``: the deepest rule's R_ALLOW/R_NONE (0: none) | R_EXPOSE."""
    raw = os.fsencode(path)
    return int(lib.lsb_rules_lookup(table, raw, len(raw)))
