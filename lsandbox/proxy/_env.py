"""The environment a proxied command gets: where the proxy is, and what bypasses it."""

from __future__ import annotations

#: Loopback names go direct: in the sandbox's own network namespace they reach only servers
#: the command itself started.
NO_PROXY = "localhost,127.0.0.1,::1"


def proxy_env(port: int) -> dict[str, str]:
    """``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` (both cases) and ``NO_PROXY``: curl, git,
    pip (requests), npm and Python's urllib read one spelling or the other."""
    url = f"http://127.0.0.1:{port}"
    env = {}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = url
    env["no_proxy"] = env["NO_PROXY"] = NO_PROXY
    return env
