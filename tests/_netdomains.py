"""Helpers for the proxied-network tests: local HTTP servers (loopback only) and test host
names that resolve locally without touching the host's /etc/hosts.

Names: the CLI runs under ``unshare --mount`` with a private /etc/hosts bind-mounted over
the real one (only that mount namespace sees it), so the proxy in the supervisor resolves
``good.test`` etc. to 127.0.0.1 through the ordinary resolver. Every server listens on
127.0.0.1; no test sends a packet to any other address.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import zipfile

from tests._sandbox import LSANDBOX, world_dir

NAMES = ("good.test", "evil.test", "other.test", "local.test")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


class Routes(http.server.BaseHTTPRequestHandler):
    """GET/HEAD/POST from a table of path -> (content type, body); echoes unknown paths."""

    routes: dict[str, tuple[str, bytes]] = {}
    protocol_version = "HTTP/1.1"

    def _reply(self, head_only: bool = False) -> None:
        path = self.path.split("?", 1)[0]
        ctype, body = self.routes.get(path, ("text/plain", f"hello {self.headers['Host']} {self.path}\n".encode()))
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._reply()

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(head_only=True)

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        self._reply()

    def log_message(self, *args: object) -> None:
        pass


class Server:
    """A threaded HTTP server on 127.0.0.1 with its own route table."""

    def __init__(self, routes: dict[str, tuple[str, bytes]] | None = None) -> None:
        handler = type("H", (Routes,), {"routes": dict(routes or {})})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.routes = handler.routes
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def hosts_file(d: str) -> str:
    path = os.path.join(d, "hosts")
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n")
        for name in NAMES:
            f.write(f"127.0.0.1 {name}\n")
    os.chmod(path, 0o644)
    return path


def run_cli(hosts: str, args: list[str], *, nobody: bool = False, cwd: str | None = None,
            timeout: float = 120, wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``lsandbox ARGS`` with ``hosts`` as /etc/hosts (a private mount namespace), as root or
    as nobody (setpriv inside that namespace); ``wrap`` (``prlimit``) goes before both."""
    env = dict(os.environ)
    env.pop("LSANDBOX_REQUIREMENTS", None)
    for k in list(env):
        if k.lower().endswith("_proxy"):
            env.pop(k)
    env["HOME"] = cwd or "/tmp"
    inner = [*wrap, *(NOBODY if nobody else []), LSANDBOX, *args]
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           hosts, *inner], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


def workdir() -> str:
    """A directory nobody can use (the config, the workspace)."""
    return world_dir("lsb-net-")


def config(d: str, domains: dict[str, str], *, local: bool = False, mode: str = "full") -> str:
    path = os.path.join(d, "net.toml")
    lines = ['default_permissions = "net"', "[permissions.net]", 'extends = ":workspace"',
             "[permissions.net.network]", f"allow_local_binding = {str(local).lower()}",
             f'mode = "{mode}"', "[permissions.net.network.domains]"]
    lines += [f'"{k}" = "{v}"' for k, v in domains.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def events(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wheel(name: str = "demo", version: str = "1.0") -> tuple[str, bytes]:
    """A minimal valid wheel (for ``pip download`` from a local simple index)."""
    files = {
        f"{name}/__init__.py": b"",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
            digest = base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").decode()
            record += f"{k},sha256={digest},{len(v)}\n"
        record += f"{name}-{version}.dist-info/RECORD,,\n"
        z.writestr(f"{name}-{version}.dist-info/RECORD", record)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue()


def git_repo(base: str) -> tuple[str, str]:
    """A bare repository prepared for git's dumb HTTP protocol: (directory, head commit)."""
    work = os.path.join(base, "src")
    bare = os.path.join(base, "repo.git")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", "HOME": base}
    subprocess.run(["git", "init", "-q", "-b", "main", work], check=True, env=env)
    with open(os.path.join(work, "f"), "w") as f:
        f.write("x\n")
    subprocess.run(["git", "-C", work, "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", work, "commit", "-qm", "c"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", work, bare], check=True, env=env)
    subprocess.run(["git", "-C", bare, "update-server-info"], check=True, env=env)
    head = subprocess.run(["git", "-C", bare, "rev-parse", "main"], check=True, env=env,
                          capture_output=True, text=True).stdout.strip()
    return bare, head


def static_routes(root: str, prefix: str) -> dict[str, tuple[str, bytes]]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[prefix + os.path.relpath(full, root)] = ("application/octet-stream", f.read())
    return out


def rm(d: str) -> None:
    shutil.rmtree(d, ignore_errors=True)
