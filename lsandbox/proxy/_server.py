"""The filtering HTTP proxy: ``CONNECT host:port`` tunnels and plain-HTTP absolute-form
requests, served on one listening socket with asyncio streams in a thread of the supervisor.

For each request: parse the head with h11 (a maintained HTTP/1.1 parser; nothing here reads
header syntax by hand), decide by the requested *name* (``_verdict.by_name``), resolve the
name here, refuse non-public answers (``_verdict.by_address``), and connect to the
addresses resolved here, never to one the client supplied (an IP literal is a name that
only an exact rule allows). Every refusal answers ``403`` with ``x-proxy-error`` and is
reported through ``on_event`` with its rule, like the broker's denials.

Plain HTTP is forwarded one request per connection (``Connection: close`` both ways), so
each request is decided on its own; the request line becomes origin-form and ``Host`` the
URI's authority (RFC 9112 3.2.2), so the upstream sees the host that was decided.

The proxy lives in the supervisor, so its descriptors are the supervisor's: a sandbox that
opened connections without end would exhaust them, and the broker's own work (pinning,
fetching the sandbox's sockets) would then fail. So connections are capped (a quarter of the
descriptor limit, at most :data:`MAX_CLIENTS`; each takes two, client and upstream; the next
one waits in the listen backlog, unaccepted, until one ends), a request head must arrive within
:data:`HEAD_TIMEOUT` and an upstream must answer the connect within :data:`CONNECT_TIMEOUT`.
An established tunnel has no idle limit (long-polling, git over HTTPS); it counts against
the cap until it closes.
"""

from __future__ import annotations

import asyncio

# getaddrinfo's executor, imported up front: a caller that dropped its privileges after
# importing lsandbox may no longer read the standard library's files.
import concurrent.futures.thread  # noqa: F401
import resource
import socket
import threading
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, urlsplit

import h11

from ..policy._domains import normalize_host
from ..policy._model import NetworkPolicy
from ._verdict import Refusal, by_address, by_name

Resolver = Callable[[str, int], Awaitable[list[str]]]
_HEAD_LIMIT = 64 * 1024
_CHUNK = 256 * 1024
#: Most client connections served at once, where the descriptor limit allows.
MAX_CLIENTS = 256
#: Seconds for a client's request head, and for an upstream's connect.
HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization",
               b"proxy-authenticate", b"te", b"trailer", b"upgrade"}


class _Bad(Exception):
    """A malformed or unsupported request: answered 400/405/502, not reported as a denial."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class Proxy:
    """Serve ``listener`` (a listening TCP socket, already bound) for ``net`` until
    :meth:`close`. ``resolve`` replaces the system resolver (the API's tests use it)."""

    def __init__(self, net: NetworkPolicy, on_event: Callable[[dict], None],
                 resolve: Resolver | None = None, *, max_clients: int | None = None,
                 head_timeout: float = HEAD_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self._net = net
        self._on_event = on_event
        self._resolve = resolve or self._system_resolve
        self._max_clients = max_clients if max_clients is not None else _default_max_clients()
        self._head_timeout = head_timeout
        self._connect_timeout = connect_timeout
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._listener = socket.socket()
        self._listener.close()

    def serve(self, listener: socket.socket) -> None:
        if listener.type != socket.SOCK_STREAM or not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise ValueError(f"A listening Stream Socket was expected, got {listener!r}")
        listener.setblocking(False)
        self._listener = listener
        self._thread = threading.Thread(target=self._main, name="lsandbox-proxy", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.create_task(self._accept())
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _accept(self) -> None:
        """Accept while fewer than the cap are served; at the cap the next connection waits
        in the listen backlog (taking no descriptor of ours) until one ends."""
        slots = asyncio.Semaphore(self._max_clients)
        while True:
            await slots.acquire()
            try:
                conn, _ = await self._loop.sock_accept(self._listener)
            except OSError:  # EMFILE and the like: the supervisor's own limit, wait a little
                slots.release()
                await asyncio.sleep(0.1)
                continue
            task = self._loop.create_task(self._client_on(conn))
            task.add_done_callback(lambda _t: slots.release())

    async def _client_on(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=_HEAD_LIMIT)
        except OSError:
            conn.close()
            return
        await self._client(reader, writer)

    def close(self) -> None:
        """Stop accepting and drop every connection (the sandbox is gone)."""
        if self._thread is None:
            return

        def stop() -> None:
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.call_soon(self._loop.stop)

        self._loop.call_soon_threadsafe(stop)
        self._thread.join()
        self._thread = None
        self._listener.close()

    # -- one client connection ---------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._request(reader, writer)
        except _Bad as e:
            await _answer(writer, e.status, str(e))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except Exception as e:  # noqa: BLE001 - answer and keep serving; nothing was let through
            await _answer(writer, 502, f"lsandbox proxy: {e!r}")
        finally:
            writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._head_timeout)
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(head)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as e:
            raise _Bad(400, f"malformed request: {e}") from None
        if not isinstance(event, h11.Request):
            raise _Bad(400, "malformed request")
        method = event.method.decode("ascii", "replace").upper()
        target = event.target.decode("ascii", "replace")
        if method == "CONNECT":
            host, port = _authority(target, None)
        else:
            url = urlsplit(target)
            if url.scheme.lower() != "http" or not url.netloc:
                raise _Bad(400, "only CONNECT and absolute http:// URLs are proxied")
            host, port = _authority(url.netloc, 80)
        host = normalize_host(host)  # decided, resolved, reported and sent upstream as one name
        refused, upstream = await self._open(method, host, port)
        if refused is not None:
            self._deny(method, host, port, refused)
            await _answer(writer, 403, f"lsandbox: {refused.rule}", refused.code)
            return
        assert upstream is not None
        up_reader, up_writer = upstream
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await _splice(reader, writer, up_reader, up_writer)
            else:
                await self._forward(conn, event, url, host, port, reader, up_writer)
                await _pipe(up_reader, writer)
        finally:
            up_writer.close()

    async def _open(self, method: str, host: str, port: int) -> tuple[Refusal | None, tuple | None]:
        rule, refused = by_name(self._net, host, method)
        if refused is not None:
            return refused, None
        assert rule is not None
        try:
            addrs = await self._resolve(host, port)
        except OSError as e:
            raise _Bad(502, f"cannot resolve {host}: {e}") from None
        if not addrs:
            raise _Bad(502, f"cannot resolve {host}")
        refused = by_address(self._net, host, rule, addrs)
        if refused is not None:
            return refused, None
        last: OSError | None = None
        for addr in addrs:
            try:
                return None, await asyncio.wait_for(asyncio.open_connection(addr, port, limit=_CHUNK),
                                                    self._connect_timeout)
            except OSError as e:
                last = e
            except TimeoutError:
                last = TimeoutError(f"no answer in {self._connect_timeout:g} s")
        raise _Bad(502, f"cannot connect to {host}:{port}: {last}")

    async def _forward(self, conn: h11.Connection, req: h11.Request, url: SplitResult, host: str, port: int,
                       reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
        """The request, origin-form, then its body as h11 frames it."""
        authority = host if port == 80 else f"{host}:{port}"
        if ":" in host:
            authority = f"[{host}]" if port == 80 else f"[{host}]:{port}"
        headers = [(k, v) for k, v in req.headers if k not in _HOP_BY_HOP and k != b"host"]
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        out = h11.Connection(h11.CLIENT)
        up_writer.write(out.send(h11.Request(method=req.method, target=path, headers=[
            (b"host", authority.encode("idna")), *headers, (b"connection", b"close")])))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(_CHUNK)
                if not data:
                    raise ConnectionError("client closed mid-request")
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Data):
                up_writer.write(out.send(event))
                await up_writer.drain()
            elif isinstance(event, h11.EndOfMessage):
                up_writer.write(out.send(event))
                await up_writer.drain()
                return
            else:
                raise _Bad(400, "malformed request body")

    def _deny(self, method: str, host: str, port: int, refused: Refusal) -> None:
        try:
            self._on_event({"kind": "network", "op": method, "address": f"{host}:{port}",
                            "host": host, "port": port, "process": "proxy", "verdict": "deny",
                            "rule": refused.rule})
        except Exception:  # noqa: BLE001 - a failing sink must not take the proxy down
            pass

    @staticmethod
    async def _system_resolve(host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _default_max_clients() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return MAX_CLIENTS
    return max(8, min(MAX_CLIENTS, soft // 4))


def _authority(text: str, default_port: int | None) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) -> (host, port); the userinfo of a URL is dropped."""
    text = text.rpartition("@")[2]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":") if text.count(":") == 1 else (text, "", "")
    if not port_text:
        if default_port is None:
            raise _Bad(400, "CONNECT needs host:port")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _Bad(400, f"invalid port {port_text!r}")
    if not host:
        raise _Bad(400, "no host")
    return host, int(port_text)


async def _answer(writer: asyncio.StreamWriter, status: int, text: str, code: str = "") -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
    body = (text + "\n").encode("utf-8", "replace")
    extra = f"x-proxy-error: {code}\r\n" if code else ""
    try:
        writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n{extra}"
                     f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        await writer.drain()
    except ConnectionError:
        pass


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        pass


async def _splice(r1: asyncio.StreamReader, w1: asyncio.StreamWriter,
                  r2: asyncio.StreamReader, w2: asyncio.StreamWriter) -> None:
    await asyncio.gather(_pipe(r1, w2), _pipe(r2, w1))
