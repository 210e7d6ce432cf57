"""The macOS runner's logic on any OS, with stand-ins for the three macOS programs it drives
(``sandbox-exec``, ``log stream``, ``logger``): ``--`` before the command, the log stream
ready before the command starts, denials kept by tag, drained to the end marker after exit
(a denial logged late still arrives), the socket directory removed, descriptors passed,
the exit status, and the CLI's summary. Seatbelt itself is exercised by the macOS job."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

import lsandbox.cli
import macos
from macos import _runner
from tests._sandbox import policy

FAKE_SANDBOX_EXEC = r"""#!PY
import json, os, re, sys, time
args = sys.argv[1:]
assert args[0] == "-p" and args[2] == "--", args
profile, cmd = args[1], args[3:]
m = re.search(r'\(with message "(lsandbox-[0-9a-f]+)"\)', profile)
tag = m.group(1) if m else "(no tag)"
with open(os.environ["FAKE_LOG"], "a") as f:  # the tagged denial, another sandbox's, an untagged one
    f.write(json.dumps({"eventMessage": f"Sandbox: sh({os.getpid()}) deny(1) file-write-create /private/var/tmp/outside/f\n{tag}"}) + "\n")
    f.write(json.dumps({"eventMessage": "Sandbox: Other(1) deny(1) file-read-data /Users/u/.ssh/id\nlsandbox-ffff"}) + "\n")
    f.write(json.dumps({"eventMessage": f"Sandbox: sh({os.getpid()}) deny(1) file-read-data /private/etc/secret"}) + "\n")
os.execvp(cmd[0], cmd)
"""

FAKE_LOG = r"""#!PY
import os, sys, time
assert sys.argv[1:4] == ["stream", "--style", "ndjson"], sys.argv
time.sleep(0.2)
print("Filtering the log data using " + sys.argv[-1], flush=True)
path, pos = os.environ["FAKE_LOG"], 0
while True:  # tail the file the stand-ins write to
    with open(path) as f:
        f.seek(pos)
        chunk = f.read()
        pos = f.tell()
    if chunk:
        sys.stdout.write(chunk)
        sys.stdout.flush()
    time.sleep(0.02)
"""

FAKE_LOGGER = r"""#!PY
import json, os, sys, time
time.sleep(0.3)  # a denial that reaches the log after the command exited
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"eventMessage": "Sandbox: sh(1) deny(1) file-write-data /late\n" + sys.argv[1].split()[0]}) + "\n")
    f.write(json.dumps({"eventMessage": " ".join(sys.argv[1:])}) + "\n")
"""


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    log = tmp_path / "log.ndjson"
    log.write_text("")
    for name, text in (("sandbox-exec", FAKE_SANDBOX_EXEC), ("log", FAKE_LOG), ("logger", FAKE_LOGGER)):
        p = tmp_path / name
        p.write_text(text.replace("#!PY", "#!" + sys.executable))
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(_runner, "SANDBOX_EXEC", str(tmp_path / "sandbox-exec"))
    monkeypatch.setattr(_runner, "LOG", str(tmp_path / "log"))
    monkeypatch.setattr(_runner, "LOGGER", str(tmp_path / "logger"))
    monkeypatch.setenv("FAKE_LOG", str(log))
    return tmp_path


def test_run_collects_this_runs_denials_to_the_end(fakes, tmp_path):
    out = tmp_path / "out"
    res = macos.run(["sh", "-c", f'echo "$LSANDBOX_SOCKET_DIR" > {out}; exit 7'], policy(cwd=str(tmp_path)),
                    log_denials=True, events=str(tmp_path / "ev.jsonl"))
    assert res.returncode == 7 and res.error is None
    paths = [e["path"] for e in res.denials]
    assert paths == ["/private/var/tmp/outside/f", "/private/etc/secret", "/late"], res.denials
    assert res.notes == []
    assert not os.path.exists(out.read_text().strip())  # the socket directory is gone
    recorded = [json.loads(ln) for ln in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [e["path"] for e in recorded] == paths


def test_run_without_denials_starts_no_log(fakes, tmp_path, monkeypatch):
    monkeypatch.setattr(_runner, "LOG", "/nonexistent/log")
    res = macos.run(["sh", "-c", "kill -TERM $$"], policy(cwd=str(tmp_path)))
    assert res.returncode == 128 + 15 and res.denials == []


def test_run_passes_descriptors(fakes, tmp_path):
    r, w = os.pipe()
    try:
        res = macos.run([sys.executable, "-c", f"import os; os.write({w}, b'via-fd\\n')"],
                        policy(cwd=str(tmp_path)), pass_fds=[w])
        assert res.returncode == 0
        assert os.read(r, 100) == b"via-fd\n"
    finally:
        os.close(r)
        os.close(w)


def test_command_not_found(fakes, tmp_path):
    res = macos.run(["lsandbox-no-such-command"], policy(cwd=str(tmp_path)))
    assert res.returncode == 127 and "not found" in (res.error or "")


def test_cli_on_macos_prints_the_summary(fakes, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.chdir(tmp_path)
    rc = lsandbox.cli.main(["run", "--log-denials", "--", "sh", "-c", "exit 3"])
    err = capfd.readouterr().err
    assert rc == 3
    assert "=== Sandbox denials ===" in err and "(sh) file-write-create /private/var/tmp/outside/f" in err
    assert "lsandbox-ffff" not in err and ".ssh" not in err
    monkeypatch.setattr(_runner, "inside_sandbox", lambda: True)  # but sandbox-exec works: not nested
    assert lsandbox.cli.main(["run", "--", "true"]) == 0
    (fakes / "sandbox-exec").write_text("#!/bin/sh\necho 'sandbox-exec: sandbox_apply: Operation not permitted' >&2\nexit 71\n")
    rc = lsandbox.cli.main(["run", "--", "true"])
    assert rc == 125 and "lsandbox: error: already running inside a macOS sandbox" in capfd.readouterr().err


def test_api_on_macos(fakes, tmp_path, monkeypatch):
    """``lsandbox.run`` and ``lsandbox.Sandbox`` go through the macOS backend there: output,
    exit status, typed denials, poll, a wait with a timeout, signals."""
    import subprocess

    import lsandbox

    monkeypatch.setattr(sys, "platform", "darwin")
    pol = policy(cwd=str(tmp_path))
    res = lsandbox.run(["sh", "-c", "echo hi; exit 3"], policy=pol, capture_output=True, text=True,
                       log_denials=True)
    assert (res.returncode, res.stdout) == (3, "hi\n")
    assert [d.path for d in res.denials] == ["/private/var/tmp/outside/f", "/private/etc/secret", "/late"]
    assert all(isinstance(d, lsandbox.Denial) and d.kind == "seatbelt" for d in res.denials)
    with lsandbox.Sandbox(["sh", "-c", "sleep 30"], policy=pol) as sbx:
        assert sbx.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            sbx.wait(0.2)
        sbx.terminate()
        assert sbx.wait() == -15
        assert sbx.denials == []
