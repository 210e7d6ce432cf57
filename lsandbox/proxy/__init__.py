"""The filtering proxy of the proxied network (``network.domains``), one implementation for
every backend: it runs in the supervisor, outside the sandbox, and the sandbox reaches it
only on its loopback port (Linux: a listener in the sandbox's own network namespace that the
supervisor serves; macOS: the host's loopback, the only outbound address SBPL allows).

Imported only by runs that use domains, and lazily: the launcher sets the environment
(``_env``, cheap) before forking and imports the server (asyncio, h11) after, while the
child sets up its namespaces.
"""

from __future__ import annotations

from ._env import proxy_env as proxy_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._loopback import serve_on_loopback as serve_on_loopback
    from ._server import Proxy as Proxy

_LAZY = {"Proxy": "._server", "serve_on_loopback": "._loopback"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
