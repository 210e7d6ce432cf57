"""lsandbox: run a command under a kernel-enforced policy (Linux: Landlock + seccomp-BPF +
an AF_UNIX broker; macOS: Seatbelt). The public API is re-exported here.

The names are loaded on first use (PEP 562): ``lsandbox run`` starts a sandbox on every
invocation, and importing the API module, the config loader and ``subprocess`` up front
would cost more than the sandbox itself. ``from lsandbox import run`` works as usual.
"""

from __future__ import annotations

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True


__version__ = "0.1.0"

_EXPORTS = {
    "Denial": "._backend",
    "CompletedSandbox": "._api", "Sandbox": "._api", "run": "._api",
    "PolicyError": "._errors", "SandboxError": "._errors", "SetupError": "._errors",
    "UnenforceableError": "._errors", "CommandNotFoundError": "._errors",
    "CommandNotExecutableError": "._errors",
    "load_policy": "._load",
    "FilesystemPolicy": ".policy", "FsAccess": ".policy", "FsRule": ".policy",
    "NetworkPolicy": ".policy", "Policy": ".policy", "SocketAccess": ".policy",
    "UnixSocketRule": ".policy",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from typing import Any

    from ._api import CompletedSandbox as CompletedSandbox
    from ._api import Sandbox as Sandbox
    from ._api import run as run
    from ._backend import Denial as Denial
    from ._errors import CommandNotExecutableError as CommandNotExecutableError
    from ._errors import CommandNotFoundError as CommandNotFoundError
    from ._errors import PolicyError as PolicyError
    from ._errors import SandboxError as SandboxError
    from ._errors import SetupError as SetupError
    from ._errors import UnenforceableError as UnenforceableError
    from ._load import load_policy as load_policy
    from .policy import FilesystemPolicy as FilesystemPolicy
    from .policy import FsAccess as FsAccess
    from .policy import FsRule as FsRule
    from .policy import NetworkPolicy as NetworkPolicy
    from .policy import Policy as Policy
    from .policy import SocketAccess as SocketAccess
    from .policy import UnixSocketRule as UnixSocketRule


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lsandbox' has no attribute {name!r}")
    # __import__, not importlib.import_module: the launch path does not import importlib
    value = getattr(__import__(module.lstrip("."), globals(), None, [name], 1), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names and the module's dunders: what ``from lsandbox import *`` and a
    reader's ``dir()`` should see, not the lazy-loading machinery."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__") and n.endswith("__"))})


del TYPE_CHECKING, annotations  # module globals that are not part of the API
