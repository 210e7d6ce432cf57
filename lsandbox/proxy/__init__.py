"""The filtering proxy of the proxied network (``network.domains``), one implementation for
every backend: it runs in the supervisor, outside the sandbox, and the sandbox reaches it
only on its loopback port (Linux: a listener in the sandbox's own network namespace that the
supervisor serves; macOS: the host's loopback, the only outbound address SBPL allows).

Imported only by runs that use domains: ``h11`` and ``asyncio`` stay off the plain run path.
"""

from ._env import proxy_env as proxy_env
from ._loopback import serve_on_loopback as serve_on_loopback
from ._server import Proxy as Proxy
