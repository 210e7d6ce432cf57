"""The proxy on the host's loopback, for backends without a network namespace of the
sandbox's own (macOS: SBPL lets the sandbox reach only this port)."""

from __future__ import annotations

import socket
from collections.abc import Callable

from .._errors import SetupError
from ..policy._model import NetworkPolicy
from ._server import Proxy


def serve_on_loopback(net: NetworkPolicy, on_event: Callable[[dict], None]) -> Proxy:
    """Listen on 127.0.0.1:``net.proxy_port`` and serve it; a busy port is a setup error
    (another program there would receive the sandbox's traffic)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", net.proxy_port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise SetupError(f"the filtering proxy cannot listen on 127.0.0.1:{net.proxy_port} "
                         f"({e.strerror}); set network.proxy_url to a free port") from None
    proxy = Proxy(net, on_event)
    proxy.serve(sock)
    return proxy
