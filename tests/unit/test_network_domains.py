"""Network by domain without a kernel: the loader's keys, the flag == config rule, the
pattern rule (most specific wins, deny at a tie), and the proxy's address verdicts."""

from __future__ import annotations

import textwrap

import pytest

from lsandbox import PolicyError, load_policy
from lsandbox.policy import NetworkPolicy
from lsandbox.policy._domains import DomainAccess, DomainRule, NetMode, check_pattern, decide
from lsandbox.proxy._addresses import non_public
from lsandbox.proxy._env import proxy_env
from lsandbox.proxy._verdict import by_address, by_name


def load(tmp_path, text, **kw):
    p = tmp_path / "config.toml"
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    kw.setdefault("cwd", str(tmp_path))
    kw.setdefault("requirements", None)
    kw.setdefault("env", {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin"})
    return load_policy(str(p), **kw)


def rules(**kw: str) -> tuple[DomainRule, ...]:
    return tuple(DomainRule(k.replace("_", "."), DomainAccess(v)) for k, v in kw.items())


def verdict(rs: tuple[DomainRule, ...], host: str) -> str:
    r = decide(rs, host)
    return "refused" if r is None else r.access.value


def test_codex_keys_load(tmp_path):
    pol = load(tmp_path, """
        [permissions.p]
        extends = ":workspace"
        [permissions.p.network]
        mode = "limited"
        allow_local_binding = true
        proxy_url = "http://127.0.0.1:8899"
        [permissions.p.network.domains]
        "pypi.org" = "allow"
        "*.PythonHosted.org." = "allow"
        "evil.pypi.org" = "deny"
        """, profile="p")
    net = pol.network
    assert net.enabled and net.proxied and net.mode is NetMode.LIMITED
    assert net.allow_local_binding and net.proxy_port == 8899
    assert {r.pattern: r.access.value for r in net.domains} == {
        "pypi.org": "allow", "*.pythonhosted.org": "allow", "evil.pypi.org": "deny"}
    assert pol.to_dict()["network"]["domains"]["pypi.org"] == "allow"


def test_flag_equals_config_key(tmp_path):
    by_config = load(tmp_path, """
        [permissions.p]
        extends = ":workspace"
        [permissions.p.network.domains]
        "pypi.org" = "allow"
        "*.example.org" = "allow"
        """, profile="p")
    by_flag = load_policy(None, ":workspace", allow_domains=["pypi.org", "*.example.org"],
                          cwd=str(tmp_path), requirements=None, search=False,
                          env={"HOME": str(tmp_path / "home"), "PATH": "/usr/bin"})
    assert by_flag == by_config
    assert by_flag.network.proxied


def test_cli_flag_parsed_by_both_parsers():
    from lsandbox.cli._run import parse_fast

    fast = parse_fast(["--allow-domain", "pypi.org", "--allow-domain=*.x.org", "--", "true"])
    assert fast is not None and fast.allow_domain == ["pypi.org", "*.x.org"]


@pytest.mark.parametrize("text,line,what", [
    ('[permissions.p.network]\nenabled = false\ndomains = { "a.org" = "allow" }\n', 3, "contradicts"),
    ('[permissions.p.network]\ndomains = { "a.*.org" = "allow" }\n', 2, "invalid domain pattern"),
    ('[permissions.p.network]\ndomains = { "a.org" = "yes" }\n', 2, '"allow" or "deny"'),
    ('[permissions.p.network]\nmode = "readonly"\n', 2, "invalid mode"),
    ('[permissions.p.network]\nallow_local_binding = "yes"\n', 2, "boolean"),
])
def test_bad_domain_keys(tmp_path, text, line, what):
    with pytest.raises(PolicyError) as ei:
        load(tmp_path, text, profile="p")
    assert ei.value.line == line and what in str(ei.value)


def test_bad_flags(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin"}
    with pytest.raises(PolicyError, match="--allow-domain"):
        load_policy(None, allow_domains=["exa mple.org"], search=False, requirements=None, env=env)
    with pytest.raises(PolicyError, match="--no-network contradicts"):
        load_policy(None, allow_domains=["a.org"], network=False, search=False, requirements=None, env=env)


def test_pattern_rule():
    assert check_pattern("*") == "*" and check_pattern("[::1]") == "::1"
    for bad in ("*example.org", "a.*.org", "", "exa mple.org", "-a.org"):
        with pytest.raises(ValueError):
            check_pattern(bad)
    rs = rules(**{"example_org": "allow"})
    assert verdict(rs, "example.org") == "allow" and verdict(rs, "a.example.org") == "refused"
    rs = (DomainRule("*.example.org", DomainAccess.ALLOW),)
    assert verdict(rs, "a.b.example.org") == "allow" and verdict(rs, "example.org") == "refused"
    assert verdict(rs, "badexample.org") == "refused"
    rs = (DomainRule("**.example.org", DomainAccess.ALLOW),)
    assert verdict(rs, "example.org") == "allow" and verdict(rs, "x.example.org") == "allow"
    # the most specific pattern decides...
    rs = (DomainRule("*.example.org", DomainAccess.DENY), DomainRule("api.example.org", DomainAccess.ALLOW),
          DomainRule("*", DomainAccess.ALLOW))
    assert verdict(rs, "api.example.org") == "allow" and verdict(rs, "www.example.org") == "deny"
    assert verdict(rs, "other.net") == "allow"
    # ...and at equal specificity deny beats allow (in either order)
    for order in (1, -1):
        rs = (DomainRule("*.example.org", DomainAccess.ALLOW), DomainRule("**.example.org", DomainAccess.DENY))[::order]
        assert verdict(rs, "a.example.org") == "deny"
    # IP literals match only a rule naming the same address, never a wildcard
    rs = (DomainRule("*", DomainAccess.ALLOW), DomainRule("::1", DomainAccess.ALLOW))
    assert verdict(rs, "127.0.0.1") == "refused" and verdict(rs, "0:0::1") == "allow"
    # ...in every spelling the resolver takes (red team 4, session 9: they matched "*")
    rs = (DomainRule("*", DomainAccess.ALLOW), DomainRule("127.0.0.1", DomainAccess.DENY))
    for spelling in ("2130706433", "127.1", "0x7f.1", "0177.0.0.1", "0x7f000001", "127.0.0.1."):
        assert verdict(rs, spelling) == "deny", spelling
    assert verdict(rs, "16843009") == "refused" and verdict(rs, "0") == "refused"  # 1.1.1.1, 0.0.0.0
    assert verdict(rs, "cafe.be") == "allow" and verdict(rs, "1e100.net") == "allow"  # names stay names


def test_address_verdicts():
    for addr, why in (("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
                      ("192.168.0.1", "private"), ("169.254.169.254", "link-local"),
                      ("fe80::1", "link-local"), ("::ffff:127.0.0.1", "loopback (as 127.0.0.1)"),
                      ("0.0.0.0", "unspecified"), ("100.64.0.1", "reserved"), ("fc00::1", "private")):
        assert non_public(addr) == why, addr
    assert non_public("8.8.8.8") == "" and non_public("2001:4860::8888") == ""
    # red team 4 (session 9): IPv6 forms that carry a non-public IPv4 address were "public"
    for addr, why in (("64:ff9b::a00:1", "private (as 10.0.0.1)"), ("64:ff9b:1::7f00:1", "loopback (as 127.0.0.1)"),
                      ("2002:7f00:1::", "loopback (as 127.0.0.1)"), ("::127.0.0.1", "loopback (as 127.0.0.1)"),
                      ("::ffff:0:7f00:1", "loopback (as 127.0.0.1)"), ("fec0::1", "site-local")):
        assert non_public(addr) == why, addr
    assert non_public("64:ff9b::808:808") == "" and non_public("2002:808:808::") == ""  # public behind them
    allow = DomainRule("good.test", DomainAccess.ALLOW)
    net = NetworkPolicy(enabled=True, domains=(allow, DomainRule("127.0.0.1", DomainAccess.ALLOW)))
    assert by_address(net, "good.test", allow, ["8.8.8.8", "127.0.0.1"]) is not None  # any -> refused
    assert by_address(net, "good.test", allow, ["8.8.8.8"]) is None
    assert by_address(net, "127.0.0.1", net.domains[0], ["127.0.0.1"]) is None  # named literally
    assert by_address(net.replace(allow_local_binding=True), "good.test", allow, ["127.0.0.1"]) is None


def test_limited_mode_methods():
    net = NetworkPolicy(enabled=True, mode=NetMode.LIMITED, domains=rules(a_org="allow"))
    assert by_name(net, "a.org", "GET")[1] is None
    # CONNECT is refused: inside a tunnel the methods cannot be checked (Codex without its MITM;
    # red team 4, session 9: a POST went through a CONNECT tunnel in limited mode)
    assert by_name(net, "a.org", "CONNECT")[1].code == "blocked-by-method-policy"
    refused = by_name(net, "a.org", "POST")[1]
    assert refused is not None and refused.code == "blocked-by-method-policy"
    assert by_name(net, "b.org", "GET")[1].code == "blocked-by-allowlist"


def test_proxy_env_both_cases():
    env = proxy_env(3128)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        assert env[name] == env[name.lower()] == "http://127.0.0.1:3128"
    assert env["NO_PROXY"] == env["no_proxy"]


def test_sbpl_allows_only_the_proxy_port():
    import macos
    from macos._policy_to_sbpl import render_sbpl

    pol = load_policy(None, ":workspace", allow_domains=["pypi.org"], search=False, requirements=None,
                      cwd="/tmp", env={"HOME": "/tmp", "PATH": "/usr/bin"})
    text = render_sbpl(pol, socket_dir="/private/tmp/s")
    ip_rules = [line for line in text.splitlines() if "(remote ip" in line or "(local ip" in line]
    assert ip_rules == ['(allow network-outbound (remote ip "localhost:3128"))']
    for addr, want in (("127.0.0.1:3128", "allow"), ("[::1]:3128", "allow"), ("127.0.0.1:80", "deny"),
                       ("192.0.2.1:3128", "deny"), ("192.0.2.1:443", "deny")):
        assert macos.evaluate(text, "network-outbound", ("ip", addr)) == want, addr
    assert macos.evaluate(text, "network-bind", ("ip", "127.0.0.1:8000")) == "deny"
    local = pol.replace(network=pol.network.replace(allow_local_binding=True, proxy_port=8899))
    text = render_sbpl(local, socket_dir="/private/tmp/s")
    assert '(allow network-outbound (remote ip "localhost:8899"))' in text
    assert macos.evaluate(text, "network-bind", ("ip", "127.0.0.1:8000")) == "allow"
    assert macos.evaluate(text, "network-outbound", ("ip", "127.0.0.1:8000")) == "allow"
    assert macos.evaluate(text, "network-outbound", ("ip", "192.0.2.1:8899")) == "deny"


def test_serve_on_loopback_and_busy_port():
    """The macOS runner's proxy (runs here too: it is plain asyncio on a loopback socket)."""
    import socket
    import urllib.error
    import urllib.request

    from lsandbox import SandboxError
    from lsandbox.proxy import serve_on_loopback

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    events: list[dict] = []
    net = NetworkPolicy(enabled=True, domains=rules(good_test="allow"), proxy_port=port)
    proxy = serve_on_loopback(net, events.append)
    try:
        with pytest.raises(SandboxError, match="cannot listen"):
            serve_on_loopback(net, events.append)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        with pytest.raises(urllib.error.HTTPError) as ei:
            opener.open("http://nope.invalid/", timeout=10)
        assert ei.value.code == 403 and ei.value.headers["x-proxy-error"] == "blocked-by-allowlist"
    finally:
        proxy.close()
    assert [(e["address"], e["rule"]) for e in events] == [
        ("nope.invalid:80", "no network.domains pattern matches nope.invalid")]


class _Upstream:
    """A loopback server that records the raw request it got and answers 200."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the accepting thread before closing: a thread left in ``accept`` on a closed
        descriptor number accepted on whatever socket got that number next (a later test's
        server: a pip download there got this server's 2-byte answer)."""
        import socket

        self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept (EINVAL)
        self._thread.join()
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.got.append(data)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            conn.close()


def _exchange(port: int, raw: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_proxy_request_handling():
    """Host is the URI's authority (not the client's Host header), hop-by-hop and proxy
    headers are dropped, malformed or origin-form requests get 400 and no upstream."""
    import socket

    from lsandbox.proxy import Proxy

    up = _Upstream()

    async def resolve(host: str, port: int) -> list[str]:
        assert host == "good.test"  # only allowed names are ever resolved
        return ["127.0.0.1"]

    net = NetworkPolicy(enabled=True, domains=rules(good_test="allow"), allow_local_binding=True)
    events: list[dict] = []
    proxy = Proxy(net, events.append, resolve)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    proxy.serve(listener)
    try:
        out = _exchange(port, f"GET http://GOOD.test.:{up.port}/p?q=1 HTTP/1.1\r\nHost: evil.test\r\n"
                              "Proxy-Authorization: x\r\nConnection: keep-alive\r\n\r\n".encode())
        assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok")
        head = up.got[-1].decode().lower()
        assert head.startswith("get /p?q=1 http/1.1\r\n")
        assert f"host: good.test:{up.port}\r\n" in head and "evil" not in head
        assert "proxy-authorization" not in head and "connection: close" in head
        n = len(up.got)
        for raw in (b"GET /origin-form HTTP/1.1\r\nHost: good.test\r\n\r\n",
                    b"CONNECT good.test HTTP/1.1\r\nHost: good.test\r\n\r\n",
                    b"CONNECT good.test:99999 HTTP/1.1\r\nHost: good.test\r\n\r\n",
                    b"GET ftp://good.test/ HTTP/1.1\r\nHost: good.test\r\n\r\n",
                    b"NOT HTTP\r\n\r\n"):
            assert _exchange(port, raw).startswith(b"HTTP/1.1 400"), raw
        out = _exchange(port, b"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 403") and b"x-proxy-error: blocked-by-allowlist" in out
        assert len(up.got) == n
    finally:
        proxy.close()
        up.close()
    assert [e["address"] for e in events] == ["evil.test:443"]


def test_deny_beats_allow_for_one_pattern_spelled_twice_or_flagged(tmp_path):
    pol = load(tmp_path, """
        [permissions.p.network.domains]
        "Example.org" = "deny"
        "example.org." = "allow"
        "b.org" = "deny"
        """, profile="p", allow_domains=["b.org", "c.org"])
    got = {r.pattern: r.access.value for r in pol.network.domains}
    assert got == {"example.org": "deny", "b.org": "deny", "c.org": "allow"}


def test_proxy_serve_failure_is_raised_not_hung():
    import socket

    from lsandbox.proxy import Proxy

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # refused before a thread starts
    proxy = Proxy(NetworkPolicy(enabled=True), lambda e: None)
    with pytest.raises(ValueError, match="listening Stream Socket"):
        proxy.serve(s)
    proxy.close()  # nothing left to stop
    s.close()


def test_proxy_caps_connections_and_times_out_idle_heads():
    """The proxy's descriptors are the supervisor's: past the cap a connection waits,
    unaccepted, and one that never sends its head is closed, so the broker keeps descriptors
    to work with (1000 idle connections exhausted them)."""
    import socket
    import time

    from lsandbox.proxy import Proxy

    proxy = Proxy(NetworkPolicy(enabled=True), lambda e: None, max_clients=3, head_timeout=1.5)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    proxy.serve(listener)
    idle = []
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        start = time.monotonic()
        out = _exchange(port, b"GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n")
        waited = time.monotonic() - start
        assert out.startswith(b"HTTP/1.1 403"), out  # served once a slot was free, and decided
        assert waited >= 1.0, waited  # not before the idle ones were dropped
        for s in idle:  # closed by the proxy at the head timeout: no answer, EOF
            assert s.recv(100) == b""
    finally:
        for s in idle:
            s.close()
        proxy.close()


def test_proxy_default_cap_follows_the_descriptor_limit():
    import resource

    from lsandbox.proxy import _server

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, hard))
        assert _server._default_max_clients() == 25
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
        assert _server._default_max_clients() == min(_server.MAX_CLIENTS, min(hard, 65536) // 4)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
