"""``lsandbox run`` on macOS: ``/usr/bin/sandbox-exec -p PROFILE CMD...``, and
``--log-denials`` from ``log stream --style ndjson`` (Seatbelt reports denials to the
unified log as ``Sandbox: <process>(<pid>) deny(1) <operation> <path>``).

This cannot run on Linux; its parsing is unit-tested on sample log lines, and the macOS CI
job runs it for real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile

from lsandbox.policy import Policy

from ._policy_to_sbpl import render_sbpl

_DENY = re.compile(r"Sandbox: (?P<proc>.+?)\((?P<pid>\d+)\) deny\(\d+\) (?P<op>\S+)(?: (?P<what>.*))?$")


def parse_log_line(line: str) -> dict | None:
    """One ndjson record of ``log stream`` -> a denial event, or None."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    m = _DENY.search(rec.get("eventMessage", ""))
    if not m:
        return None
    return {"kind": "seatbelt", "process": m["proc"], "pid": int(m["pid"]), "op": m["op"],
            "path": (m["what"] or "").strip(), "verdict": "deny", "rule": "sandbox profile"}


def run(cmd: list[str], policy: Policy, *, log_denials: bool = False, events: str | None = None) -> int:
    socket_dir = os.path.realpath(tempfile.mkdtemp(prefix="lsandbox-sock-"))
    profile = render_sbpl(policy, socket_dir=socket_dir)
    env = dict(os.environ, LSANDBOX_SOCKET_DIR=socket_dir)
    proxy, proxy_denials = None, []  # network.domains: SBPL allows only the proxy's port
    if policy.network.proxied:
        from lsandbox.proxy import proxy_env, serve_on_loopback

        proxy = serve_on_loopback(policy.network, proxy_denials.append)
        env.update(proxy_env(policy.network.proxy_port))
    logger = None
    if log_denials or events:
        logger = subprocess.Popen(["/usr/bin/log", "stream", "--style", "ndjson", "--predicate",
                                   'sender == "Sandbox"'], stdout=subprocess.PIPE, text=True)
    proc = subprocess.Popen(["/usr/bin/sandbox-exec", "-p", profile, *cmd], env=env)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait()
    if proxy is not None:
        proxy.close()
    denials = list(proxy_denials)
    if logger:
        logger.terminate()
        out, _ = logger.communicate()
        denials += [e for e in map(parse_log_line, out.splitlines()) if e]
    if events:
        with open(events, "w") as f:
            for e in denials:
                f.write(json.dumps(e) + "\n")
    if log_denials:
        print("\n=== Sandbox denials ===", file=sys.stderr)
        for e in denials:
            print(f"({e['process']}) {e['op']} {e.get('path') or e.get('address')}"
                  + (f"  [{e['rule']}]" if e.get("rule") else ""), file=sys.stderr)
    return 128 - rc if rc < 0 else rc
