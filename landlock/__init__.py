"""landlock: a standalone cffi Landlock library with honest, ABI-aware best effort.

Build a :class:`Ruleset`, add path and port rules, :meth:`Ruleset.restrict_self`; the
returned :class:`RestrictStatus` says what was fully, partially or not enforced.
``LANDLOCK_MAX_ABI`` (or ``max_abi=``) clamps the ABI to emulate older kernels.
:class:`RawRuleset` is the same ruleset as plain ints (the numbers in ``FS_*``, ``NET_*``,
``SCOPE_*``, ``RESTRICT_*``), for a launcher that builds it before ``fork`` and applies it
after without creating any enum class.
Imports nothing from lsandbox (a foreign PyPI project is also called ``landlock``; this one
ships inside the lsandbox distribution).

The int layer (``_rights``) is imported with the package (a forked child that applies its
ruleset imports nothing); the other names are loaded from their modules on first use
(PEP 562), so that a process using only the int layer never imports ``enum``.
"""

from ._rights import *  # noqa: F403 - LATEST_ABI, the FS_/NET_/SCOPE_/RESTRICT_ ints, fs_all...

TYPE_CHECKING = False  # the typing module is not imported at run time; type checkers see True
if TYPE_CHECKING:
    from ._abi import ENV_MAX_ABI as ENV_MAX_ABI
    from ._abi import abi_version as abi_version
    from ._abi import errata as errata
    from ._abi import kernel_abi as kernel_abi
    from ._access import AccessFs as AccessFs
    from ._access import AccessNet as AccessNet
    from ._access import RestrictFlags as RestrictFlags
    from ._access import Scope as Scope
    from ._access import since_abi as since_abi
    from ._plan import PlanError as PlanError
    from ._plan import plan_path_rules as plan_path_rules
    from ._plan import plan_raw_path_rules as plan_raw_path_rules
    from ._plan import readable_except as readable_except
    from ._plan import readonly_except as readonly_except
    from ._raw import RawRuleset as RawRuleset
    from ._raw import open_rule_path as open_rule_path
    from ._ruleset import CompatLevel as CompatLevel
    from ._ruleset import Enforcement as Enforcement
    from ._ruleset import LandlockUnsupportedError as LandlockUnsupportedError
    from ._ruleset import RestrictStatus as RestrictStatus
    from ._ruleset import Ruleset as Ruleset
    from ._ruleset import attr_size as attr_size

_EXPORTS = {
    "ENV_MAX_ABI": "_abi", "abi_version": "_abi", "errata": "_abi", "kernel_abi": "_abi",
    "AccessFs": "_access", "AccessNet": "_access", "RestrictFlags": "_access", "Scope": "_access",
    "since_abi": "_access",
    "PlanError": "_plan", "plan_path_rules": "_plan", "plan_raw_path_rules": "_plan",
    "readable_except": "_plan", "readonly_except": "_plan",
    "RawRuleset": "_raw", "open_rule_path": "_raw",
    "CompatLevel": "_ruleset", "Enforcement": "_ruleset", "LandlockUnsupportedError": "_ruleset",
    "RestrictStatus": "_ruleset", "Ruleset": "_ruleset", "attr_size": "_ruleset",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'landlock' has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS} - {"TYPE_CHECKING"})
