"""The proxied network end to end: the real CLI, the real kernel, servers on 127.0.0.1 only.

Test names resolve to 127.0.0.1 through a private /etc/hosts (tests/_netdomains.py), so
reaching the test servers at all needs ``allow_local_binding = true``: that is the case
"a name resolving to 127.0.0.1 is refused unless allowed". Every property runs as root and
as nobody (the CLI under setpriv).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

import lsandbox.proxy._loopback  # noqa: F401 - imported before a test forks and drops to nobody
from tests import _netdomains as nd
from tests._sandbox import PY, features

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="Linux backend"),
    pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                       reason="needs root for the test's private /etc/hosts"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is the client"),
]
USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])


@pytest.fixture(scope="module")
def env():
    if not features().namespaces:
        pytest.skip("no namespaces here: network.domains is refused (tested below)")
    d = nd.workdir()
    srv = nd.Server()
    yield d, nd.hosts_file(d), srv
    srv.close()
    nd.rm(d)


def _run(env, domains, script, *, nobody, local=True, mode="full", extra=()):
    d, hosts, _srv = env
    cfg = nd.config(d, domains, local=local, mode=mode)
    ev = os.path.join(d, f"events-{os.getpid()}-{nobody}.jsonl")
    res = nd.run_cli(hosts, ["run", "-c", cfg, "--events", ev, "--log-denials", *extra, "--",
                             "sh", "-c", script], nobody=nobody, cwd=d)
    events = nd.events(ev) if os.path.exists(ev) else []
    return res, [e for e in events if e.get("kind") == "network"]


@USERS
def test_allowed_name_reached_http_and_connect(env, nobody):
    port = env[2].port
    res, denials = _run(env, {"good.test": "allow"}, nobody=nobody, script=(
        f"curl -sS http://good.test:{port}/plain && "
        f"curl -sS --proxytunnel http://good.test:{port}/tunnel && "  # CONNECT good.test:port
        "env | grep -c -i '^\\(http\\|https\\|all\\)_proxy=http://127.0.0.1:3128$'"))
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0] == f"hello good.test:{port} /plain"
    assert out[1] == f"hello good.test:{port} /tunnel"
    assert out[2] == "6"
    assert denials == []


@USERS
def test_denied_name_and_raw_ip_refused_and_reported(env, nobody):
    port = env[2].port
    res, denials = _run(env, {"good.test": "allow", "evil.test": "deny"}, nobody=nobody, script=(
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' http://evil.test:{port}/; "
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' http://other.test:{port}/; "
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' --noproxy '' -x http://127.0.0.1:3128 http://127.0.0.1:{port}/; "
        f"curl -sS -p -o /dev/null -w '%{{http_connect}}\\n' -x http://127.0.0.1:3128 http://evil.test:{port}/; "
        # a direct connect, bypassing the proxy, to the server's real address
        f"curl -sS --noproxy '*' -o /dev/null http://127.0.0.1:{port}/ 2>/dev/null; echo direct=$?"))
    lines = res.stdout.splitlines()
    assert lines[:3] == ["403", "403", "403"], (res.stdout, res.stderr)
    assert lines[3] == "403"  # the CONNECT answer
    assert lines[4] == "direct=7", res.stdout  # connection refused: never reached the server
    by = {(e["op"], e["address"]): e["rule"] for e in denials}
    assert by[("GET", f"evil.test:{port}")] == 'network.domains "evil.test" = "deny" (' + env[0] + '/net.toml:9)'
    assert by[("GET", f"other.test:{port}")] == "no network.domains pattern matches other.test"
    assert by[("GET", f"127.0.0.1:{port}")] == "no network.domains pattern matches 127.0.0.1"
    assert ("CONNECT", f"evil.test:{port}") in by
    # the direct attempt reached only the sandbox's own loopback (allow_local_binding): no
    # server there, so refused by the kernel and nothing for the proxy to report
    assert f"(proxy) GET evil.test:{port}" in res.stderr  # --log-denials


@USERS
def test_name_resolving_to_loopback_refused_unless_allowed(env, nobody):
    port = env[2].port
    script = f"curl -sS -w '\\n%{{http_code}}\\n' http://local.test:{port}/x"
    direct = f"; curl -sS --noproxy '*' http://127.0.0.1:{port}/ 2>/dev/null; echo direct=$?"
    res, denials = _run(env, {"local.test": "allow"}, nobody=nobody, local=False, script=script + direct)
    assert res.stdout.splitlines()[-2:] == ["403", "direct=7"], res.stdout
    assert [e["rule"] for e in denials] == [
        "local.test resolves to 127.0.0.1 (loopback): network.allow_local_binding = false",
        "network.domains: only the proxy (127.0.0.1:3128) is reachable directly"]
    assert denials[1]["op"] == "connect" and denials[1]["address"] == f"127.0.0.1:{port}"
    res, denials = _run(env, {"local.test": "allow"}, nobody=nobody, local=True, script=script)
    assert res.stdout.splitlines()[-1] == "200" and denials == []


@USERS
def test_udp_refused(env, nobody):
    """Without allow_local_binding the command reaches only the proxy: a UDP bind or datagram is
    refused by the broker, and from ABI 10 by Landlock's UDP rights as well (that layer alone:
    tests/kernel/test_landlock_abi.py)."""
    udp = ("import socket, errno\n"
           "for op in ('bind', 'send'):\n"
           "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
           "    try:\n"
           "        s.bind(('127.0.0.1', 0)) if op == 'bind' else s.sendto(b'x', ('127.0.0.1', 53))\n"
           "        print(op, 'ok')\n"
           "    except OSError as e:\n"
           "        print(op, errno.errorcode[e.errno])\n")
    res = nd.run_cli(env[1], ["run", "-c", nd.config(env[0], {"good.test": "allow"}), "--",
                              PY, "-c", udp], nobody=nobody, cwd=env[0])
    assert res.stdout.splitlines() == ["bind EACCES", "send EACCES"], res.stderr


@USERS
def test_limited_mode_allows_only_read_methods(env, nobody):
    port = env[2].port
    res, denials = _run(env, {"good.test": "allow"}, nobody=nobody, mode="limited", script=(
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' http://good.test:{port}/; "
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' -d x=1 http://good.test:{port}/; "
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' --proxytunnel http://good.test:{port}/"))
    assert res.stdout.splitlines() == ["200", "403", "000"], res.stderr  # CONNECT refused (403): no response
    assert [e["op"] for e in denials] == ["POST", "CONNECT"]


def test_flag_runs_like_the_config(env):
    d, hosts, srv = env
    res = nd.run_cli(hosts, ["run", "--allow-domain", "good.test", "--", "curl", "-sS", "-o",
                             "/dev/null", "-w", "%{http_code}", f"http://good.test:{srv.port}/"], cwd=d)
    assert res.stdout == "403"  # allowed name, but loopback: allow_local_binding is config-only


@USERS
def test_pip_download_through_proxy(env, nobody):
    d, _hosts, srv = env
    if os.system(f"{PY} -m pip --version >/dev/null 2>&1") != 0:
        pytest.skip("no pip for the system python")
    fname, data = nd.wheel()
    srv.routes["/simple/demo/"] = ("text/html", f'<a href="/files/{fname}">{fname}</a>'.encode())
    srv.routes[f"/files/{fname}"] = ("application/octet-stream", data)
    out = os.path.join(d, f"dl-{nobody}")
    os.makedirs(out, exist_ok=True)
    os.chmod(out, 0o777)
    res, denials = _run(env, {"good.test": "allow"}, nobody=nobody, script=(
        f"{PY} -m pip download --no-deps --no-cache-dir --disable-pip-version-check "
        f"--index-url http://good.test:{srv.port}/simple/ --trusted-host good.test -d {out} demo"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert os.listdir(out) == [fname]
    assert denials == []


@USERS
def test_npm_view_through_proxy(env, nobody):
    if shutil.which("npm") is None:
        pytest.skip("npm not installed")
    d, _hosts, srv = env
    doc = {"name": "demo", "dist-tags": {"latest": "1.2.3"},
           "versions": {"1.2.3": {"name": "demo", "version": "1.2.3",
                                   "dist": {"tarball": f"http://good.test:{srv.port}/demo.tgz"}}}}
    srv.routes["/demo"] = ("application/json", json.dumps(doc).encode())
    cache = os.path.join(d, f"npm-{nobody}")
    res, denials = _run(env, {"good.test": "allow"}, nobody=nobody, script=(
        f"npm view demo version --registry http://good.test:{srv.port}/ --cache {cache} "
        "--no-update-notifier --fund=false --audit=false"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "1.2.3"
    assert denials == []


@USERS
def test_git_ls_remote_through_proxy(env, nobody):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    d, _hosts, srv = env
    base = os.path.join(d, f"git-{nobody}")
    os.makedirs(base, exist_ok=True)
    bare, head = nd.git_repo(base)
    srv.routes.update(nd.static_routes(bare, f"/g{int(nobody)}/repo.git/"))
    res, denials = _run(env, {"good.test": "allow"}, nobody=nobody, script=(
        f"GIT_CONFIG_NOSYSTEM=1 HOME={d} git ls-remote http://good.test:{srv.port}/g{int(nobody)}/repo.git"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{head}\trefs/heads/main" in res.stdout
    assert denials == []


def test_refused_without_network_namespace():
    """No namespace of its own, no proxied network: refused, not run weaker."""
    from tests._sandbox import cli

    res = cli("run", "--allow-domain", "good.test", "--", "true",
              env={"LSANDBOX_NO_NAMESPACES": "1"})
    assert res.returncode == 125
    assert res.stderr.strip().splitlines()[-1].startswith("lsandbox: error: network.domains needs a network namespace")
    res = cli("doctor", "--allow-domain", "good.test", env={"LSANDBOX_NO_NAMESPACES": "1"})
    assert res.returncode != 0 and "not enforced  network domains (proxy)" in res.stdout


def _api_probe(port: int) -> dict:
    """In a (possibly unprivileged) child: the Python API with a proxied policy. The server
    is named by its address, which an exact rule allows (Codex's rule for local literals)."""
    from tests._sandbox import as_nobody_setup, policy, probe

    as_nobody_setup()
    pol = policy(":workspace", cwd="/tmp", allow_domains=["127.0.0.1"])
    code = f"""
    import os, urllib.request, urllib.error
    os.environ['no_proxy'] = os.environ['NO_PROXY'] = ''  # urllib would go direct to 127.*
    R['ok'] = urllib.request.urlopen('http://127.0.0.1:{port}/api', timeout=30).read().decode()
    try:
        urllib.request.urlopen('http://127.0.0.2:{port}/', timeout=30)
    except urllib.error.HTTPError as e:
        R['refused'] = e.code
    """
    out = probe(code, pol)
    return {"ok": out.get("ok"), "refused": out.get("refused"),
            "denials": [(d["kind"], d["address"], d["rule"]) for d in out["_denials"]]}


@USERS
def test_api_reports_proxy_denials(env, nobody):
    from tests._util import run_in_child

    port = env[2].port
    got = run_in_child(_api_probe, port, as_nobody=nobody, timeout=60).unwrap()
    assert got["ok"] == f"hello 127.0.0.1:{port} /api\n"
    assert got["refused"] == 403
    assert got["denials"] == [("network", f"127.0.0.2:{port}",
                               "no network.domains pattern matches 127.0.0.2")]


def _direct_probe(local: bool) -> dict:
    from tests._sandbox import as_nobody_setup, policy, probe

    as_nobody_setup()
    pol = policy(":workspace", cwd="/tmp", allow_domains=["good.test"])
    pol = pol.replace(network=pol.network.replace(allow_local_binding=local))
    out = probe("""
    import errno
    def attempt(fam, kind, op, addr):
        s = socket.socket(fam, kind)
        try:
            getattr(s, op)(*addr)
            return 'ok'
        except OSError as e:
            return errno.errorcode[e.errno]
        finally:
            s.close()
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
        R['netlink'] = 'ok'
    except OSError as e:
        R['netlink'] = errno.errorcode[e.errno]
    R['proxy'] = attempt(socket.AF_INET, socket.SOCK_STREAM, 'connect', [('127.0.0.1', 3128)])
    R['other_port'] = attempt(socket.AF_INET, socket.SOCK_STREAM, 'connect', [('127.0.0.1', 3129)])
    R['udp'] = attempt(socket.AF_INET, socket.SOCK_DGRAM, 'sendto', [b'x', ('127.0.0.1', 53)])
    R['bind'] = attempt(socket.AF_INET, socket.SOCK_STREAM, 'bind', [('127.0.0.1', 0)])
    R['ifaces'] = sorted(line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:])
    """, pol)
    return {k: v for k, v in out.items() if not k.startswith("_")}


@USERS
def test_direct_sockets_reach_only_the_proxy(env, nobody):
    """Programs ignoring the proxy variables: TCP/IP only to the proxy's port, no netlink,
    UDP and listeners refused (allow_local_binding: the sandbox's own loopback only)."""
    from tests._util import run_in_child

    got = run_in_child(_direct_probe, False, as_nobody=nobody, timeout=60).unwrap()
    assert got == {"netlink": "EAFNOSUPPORT", "proxy": "ok", "other_port": "EACCES",
                   "udp": "EACCES", "bind": "EACCES", "ifaces": ["lo"]}
    got = run_in_child(_direct_probe, True, as_nobody=nobody, timeout=60).unwrap()
    assert got["other_port"] == "ECONNREFUSED" and got["bind"] == "ok" and got["ifaces"] == ["lo"]


@USERS
def test_idle_proxy_connections_leave_the_broker_descriptors(env, nobody):
    """The proxy serves from the supervisor, so its connections are the supervisor's
    descriptors: 140 idle ones, with the supervisor at 96, exhausted them, and every brokered
    call after (here a bind and a connect of the command's own socket) failed as "pidfd_getfd
    refused". Capped, the rest wait in the listen backlog and the broker keeps working."""
    flood = ("import resource, socket\n"
             "resource.setrlimit(resource.RLIMIT_NOFILE, (4000, 4000))\n"
             "idle, failed = [], 0\n"
             "for _ in range(140):\n"
             "    s = socket.socket(); s.settimeout(5)\n"
             "    try:\n"
             "        s.connect(('127.0.0.1', 3128)); idle.append(s)\n"
             "    except OSError:\n"
             "        failed += 1; s.close()\n"
             "import errno, os\n"
             "path = os.path.join(os.environ['LSANDBOX_SOCKET_DIR'], 'own.sock')\n"
             "srv = socket.socket(socket.AF_UNIX); c = socket.socket(socket.AF_UNIX)\n"
             "try:\n"
             "    srv.bind(path); srv.listen(); c.connect(path); unix = 'ok'\n"
             "except OSError as e:\n"
             "    unix = errno.errorcode[e.errno]\n"
             "print(len(idle), failed, unix)\n")
    res = nd.run_cli(env[1], ["run", "-c", nd.config(env[0], {"good.test": "allow"}), "--log-denials", "--",
                              PY, "-c", flood], nobody=nobody, cwd=env[0], wrap=("prlimit", "--nofile=96:4000"))
    assert res.stdout.split() == ["140", "0", "ok"], (res.stdout, res.stderr[-2000:])
    assert "pidfd_getfd" not in res.stderr
