"""The filtering proxy's cost: latency of a small GET and throughput of a 10 MB download,
through the proxy (plain HTTP and a CONNECT tunnel) vs direct, as ratios.

Each party runs in its own process so that none shares a GIL with another: a static HTTP
server (``python -m http.server``) and the proxy (``lsandbox.proxy.serve_on_loopback``, the
code the sandbox uses) on 127.0.0.1, and curl as the client, whose ``time_total`` excludes
its own start-up. Medians of repeated runs; everything on loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time

import pytest

from tests._sandbox import world_dir

pytestmark = [pytest.mark.bench, pytest.mark.skipif(shutil.which("curl") is None, reason="curl")]
SIZE = 10 * 1024 * 1024
PROXY = textwrap.dedent("""
    import sys, time
    from lsandbox.policy import NetworkPolicy
    from lsandbox.policy._domains import DomainAccess, DomainRule
    from lsandbox.proxy import serve_on_loopback
    net = NetworkPolicy(enabled=True, domains=(DomainRule("127.0.0.1", DomainAccess.ALLOW),),
                        proxy_port=int(sys.argv[1]))
    serve_on_loopback(net, lambda e: None)
    print("ready", flush=True)
    sys.stdin.read()
""")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _curl(url: str, proxy: list[str]) -> tuple[float, float]:
    """(seconds, bytes/s) of one fetch."""
    out = subprocess.run(["curl", "-sS", "--noproxy", "", *proxy, "-o", "/dev/null", "-w",
                          "%{time_total} %{speed_download}", url],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def _interleaved(url: str, modes: dict[str, list[str]], n: int) -> dict[str, tuple[float, float]]:
    """Median (seconds, bytes/s) per mode over ``n`` rounds, the modes taking turns in each
    round so that a load change on the (shared) machine hits them alike."""
    got: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for _ in range(n):
        for mode, opts in modes.items():
            got[mode].append(_curl(url, opts))
    return {m: (statistics.median(t for t, _ in v), statistics.median(s for _, s in v))
            for m, v in got.items()}


def test_bench_proxy_vs_direct():
    d = world_dir("lsb-bench-proxy-")
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(os.urandom(SIZE))
    with open(os.path.join(d, "small"), "wb") as f:
        f.write(b"x" * 100)
    sport, pport = _free_port(), _free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(sport), "--bind", "127.0.0.1",
                               "--directory", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen([sys.executable, "-c", PROXY, str(pport)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None and proxy.stdout.readline().strip() == "ready"
        _wait_port(sport)
        base = f"http://127.0.0.1:{sport}"
        via = ["-x", f"http://127.0.0.1:{pport}"]
        modes = {"direct": [], "proxy (HTTP)": via, "proxy (CONNECT)": [*via, "-p"]}
        small = _interleaved(base + "/small", modes, 50)
        big = _interleaved(base + "/big", modes, 9)
        rows = {m: (small[m][0], big[m][1]) for m in modes}
        direct_lat, direct_speed = rows["direct"]
        print("\nfiltering proxy vs direct, 127.0.0.1 (median; small GET: 50 rounds, 10 MB: 9 rounds, interleaved)")
        for name, (lat, speed) in rows.items():
            print(f"  {name:16s} latency {lat * 1e3:7.2f} ms (x{lat / direct_lat:5.2f})   "
                  f"10 MB at {speed / 1e6:8.1f} MB/s (x{speed / direct_speed:5.2f} of direct)")
        for name, (lat, speed) in rows.items():
            assert speed > 0 and lat > 0, name
    finally:
        server.terminate()
        server.wait()
        proxy.communicate("")
        proxy.wait()
        shutil.rmtree(d, ignore_errors=True)
