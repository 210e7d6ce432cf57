"""Hints after a failed command (``lsandbox._hints``), from denial events as the backends
record them."""

from __future__ import annotations

from lsandbox._hints import hints


def fs(path: str, op: str = "fs.make_reg") -> dict:
    return {"kind": "filesystem", "op": op, "path": path, "verdict": "deny", "rule": "landlock"}


NET = {"kind": "network", "op": "socket", "address": "AF_INET SOCK_STREAM", "verdict": "deny"}


def test_no_hint_when_the_command_succeeded():
    assert hints([NET, fs("/home/u/.npm/x")], returncode=0, network=False, home="/home/u") == []


def test_tool_cache_under_home_suggests_w():
    out = hints([fs("/home/u/.npm/_cacache/a"), fs("/home/u/.npm/_logs/b", "fs.write_file"),
                 fs("/home/u/.cache/pip/x"), fs("/etc/x")], returncode=1, network=False, home="/home/u")
    assert out == ["writes to ~/.npm were refused; if it is a tool's cache or state, allow it with "
                   "-w ~/.npm (or point the tool at $TMPDIR)",
                   "writes to ~/.cache were refused; if it is a tool's cache or state, allow it with "
                   "-w ~/.cache (or point the tool at $TMPDIR)"]


def test_reads_are_not_blamed_and_network_hint_only_when_off():
    assert hints([fs("/home/u/.npm/a", "fs.read_file")], returncode=1, network=False, home="/home/u") == []
    assert "network is off" in hints([NET], returncode=1, network=False, home="/h")[0]
    assert hints([NET], returncode=1, network=True, home="/h") == []


def test_unobservable_classes_give_a_hedged_hint():
    out = hints([], returncode=1, network=False, read_only=["/w/.git"], fs_unobservable=True, home="/h")
    assert len(out) == 2 and ".git" in out[0] and "EROFS" in out[0] and "-w DIR" in out[1]


def test_known_tool_cache_without_observed_denials():
    def ro_home(path: str) -> bool:
        return not path.startswith("/home/u/")

    out = hints([], returncode=1, network=False, home="/home/u", command="/usr/bin/npm",
                writable=ro_home, fs_unobservable=True)
    assert out == ["~/.npm (npm's cache) is not writable in this sandbox; if npm failed on it, "
                   "allow it with -w ~/.npm (it must exist)"]
    assert hints([], returncode=1, network=False, home="/home/u", command="npm",
                 writable=lambda p: True) == []  # -w ~/.npm given: nothing to say
