"""lsandbox vs peers, ratios to bare from one run: launch of `true` and `python3 -c pass`, and
1,000 AF_UNIX connects to a server outside. Peers: bubblewrap (`bwrap`), Anthropic's
sandbox-runtime (`srt`) and OpenAI's Codex (`codex sandbox`), both from npm, installed by
`make bench` into .bench/. A missing peer is skipped with its reason. Prints a Markdown table
for the README."""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import time

import pytest

from tests._sandbox import LSANDBOX, PY, UnixServer, rmtree, world_dir

pytestmark = pytest.mark.bench
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRT = os.path.join(REPO, ".bench", "node_modules", ".bin", "srt")
CODEX_HOME = os.path.join(REPO, ".bench", "codex-home")  # Codex refuses a CODEX_HOME under /tmp


def codex_binary() -> str | None:
    """The native Linux binary the npm package ships (its ``codex`` wrapper is a node script:
    timing it would time node's start)."""
    found = sorted(glob.glob(os.path.join(REPO, ".bench", "node_modules", "@openai", "codex-linux-*",
                                          "vendor", "*", "bin", "codex")))
    return found[0] if found else None


def codex_env() -> dict[str, str]:
    os.makedirs(CODEX_HOME, exist_ok=True)
    return {**os.environ, "CODEX_HOME": CODEX_HOME}

CONNECT_LOOP = """
import socket, sys, time
p, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for _ in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(p); s.close()
print(time.perf_counter() - t)
"""


def _best(cmd: list[str], n: int = 7, env: dict | None = None) -> float | None:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
        if r.returncode != 0:
            return None
        out.append(time.perf_counter() - t)
    return min(out)


def test_bench_peers(tmp_path):
    socks = world_dir("lsb-bench-")
    srv = UnixServer(os.path.join(socks, "s.sock"))
    home = tmp_path / "home"
    home.mkdir()
    (home / ".srt-settings.json").write_text(json.dumps({
        "network": {"allowedDomains": [], "deniedDomains": [], "allowUnixSockets": [srv.path],
                    "allowAllUnixSockets": False},
        "filesystem": {"denyRead": [], "allowWrite": ["/tmp"], "denyWrite": []}}))
    srt_env = {**os.environ, "HOME": str(home)}
    runners: dict[str, tuple[list[str], dict | None] | str] = {"bare": ([], None)}
    runners["lsandbox"] = ([LSANDBOX, "run", "--allow-unix-socket", socks, "--"], None)
    runners["bubblewrap"] = (["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"], None) \
        if shutil.which("bwrap") else "bwrap not installed"
    runners["sandbox-runtime"] = ([SRT, "-c"], srt_env) if os.path.exists(SRT) else "srt not installed (make bench)"
    codex = codex_binary()
    runners["codex"] = ([codex, "sandbox", "--"], codex_env()) if codex else "codex not installed (make bench)"
    rows = []
    base: dict[str, float] = {}
    try:
        for name, spec in runners.items():
            if isinstance(spec, str):
                rows.append((name, spec, "", ""))
                continue
            prefix, env = spec

            def cmd(*args: str, prefix: list[str] = prefix) -> list[str]:
                # srt -c takes one shell string; the others take argv
                return [*prefix, shlex.join(args)] if prefix[-1:] == ["-c"] else [*prefix, *args]

            t_true = _best(cmd("true"), env=env)
            t_py = _best(cmd(PY, "-c", "pass"), env=env)
            r = subprocess.run(cmd(PY, "-c", CONNECT_LOOP, srv.path, "1000"), capture_output=True,
                               text=True, env=env, timeout=300)
            t_conn = float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else None
            if name == "bare":
                base = {"true": t_true or 1, "py": t_py or 1, "conn": t_conn or 1}

            def fmt(t: float | None, key: str, base: dict[str, float] = base) -> str:
                return "failed" if t is None else f"{t * 1e3:.1f} ms ({t / base[key]:.1f}x)"

            rows.append((name, fmt(t_true, "true"), fmt(t_py, "py"),
                         fmt(t_conn, "conn") if t_conn is not None else f"n/a: {_last_error(r.stderr)}"))
    finally:
        srv.close()
        rmtree(socks)
    print("\n| sandbox | `true` | `python3 -c pass` | 1,000 AF_UNIX connects |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _last_error(stderr: str | None) -> str:
    """The last line of a failure, on one table row (e.g. sandbox-runtime refusing AF_UNIX)."""
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    return (lines[-1][-70:] if lines else "no output").replace("|", "/")
