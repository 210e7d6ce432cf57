"""landlock: a standalone cffi Landlock library with honest, ABI-aware best effort.

Build a :class:`Ruleset`, add path and port rules, :meth:`Ruleset.restrict_self`; the
returned :class:`RestrictStatus` says what was fully, partially or not enforced.
``LANDLOCK_MAX_ABI`` (or ``max_abi=``) clamps the ABI to emulate older kernels.
Imports nothing from lsandbox (a foreign PyPI project is also called ``landlock``; this one
ships inside the lsandbox distribution).
"""

from ._abi import ENV_MAX_ABI as ENV_MAX_ABI
from ._abi import abi_version as abi_version
from ._abi import errata as errata
from ._abi import kernel_abi as kernel_abi
from ._access import LATEST_ABI as LATEST_ABI
from ._access import AccessFs as AccessFs
from ._access import AccessNet as AccessNet
from ._access import RestrictFlags as RestrictFlags
from ._access import Scope as Scope
from ._access import since_abi as since_abi
from ._plan import PlanError as PlanError
from ._plan import plan_path_rules as plan_path_rules
from ._plan import readable_except as readable_except
from ._plan import readonly_except as readonly_except
from ._ruleset import CompatLevel as CompatLevel
from ._ruleset import Enforcement as Enforcement
from ._ruleset import LandlockUnsupportedError as LandlockUnsupportedError
from ._ruleset import RestrictStatus as RestrictStatus
from ._ruleset import Ruleset as Ruleset
from ._ruleset import attr_size as attr_size
