"""`lsandbox run`'s argparse-free parser (`_run.parse_fast`) agrees with argparse wherever it
answers, and leaves everything else to argparse."""

from __future__ import annotations

import pytest

from lsandbox.cli import build_parser
from lsandbox.cli._run import parse_fast

FIELDS = ("config", "profile", "writable", "allow_unix_socket", "network", "requirements",
          "log_denials", "events", "pass_fd", "cmd", "chdir", "read", "deny", "setenv", "unsetenv",
          "clearenv")

HANDLED = [
    ["--", "true"],
    ["--", "sh", "-c", "echo hi", "--", "x"],
    ["--", "--", "x"],
    ["--"],
    ["-c", "a.toml", "-p", "prof", "--", "true", "-c", "x"],
    ["--config=a.toml", "--profile=p", "--requirements", "r.toml", "--", "true"],
    ["-w", "/a", "--writable", "/b", "--writable=/c", "--allow-unix-socket", "/s", "--", "true"],
    ["--allow-unix-socket=/s1", "--allow-unix-socket", "/s2", "--", "true"],
    ["--network", "--", "true"],
    ["--no-network", "--log-denials", "--events", "ev.jsonl", "--", "true"],
    ["--events=", "--config=", "--", "true"],
    ["-c", "one", "-c", "two", "--", "true"],
    ["--log-denials", "--log-denials", "--", "x"],
    ["--pass-fd", "7", "--pass-fd=9", "--", "x"],
    ["-C", "/d", "--chdir=/e", "--read", "/r", "--read=/s", "--deny", "/x", "--", "x"],
    ["--setenv", "A=1", "--setenv=B=2=3", "--unsetenv", "C", "--clearenv", "--", "x"],
    ["--events", "-", "--", "x"],
]

LEFT_TO_ARGPARSE = [
    ["true"],                       # REMAINDER without "--"
    ["-w", "/a", "true"],
    ["-h"], ["--help", "--", "x"],
    ["--net", "--", "true"],        # abbreviation
    ["-c"], ["-cfile", "--", "x"], ["-c=file", "--", "x"],
    ["-w", "-x", "--", "true"],     # a value that looks like an option
    ["--network", "--no-network", "--", "true"],
    ["--network=1", "--", "true"],
    ["--bogus", "--", "true"],
    ["--pass-fd", "x7", "--", "true"],  # argparse's type error
    ["-Cdir", "--", "x"], ["--clearenv=1", "--", "x"], ["--setenv", "--", "x"],
    [],
]


@pytest.mark.parametrize("argv", HANDLED, ids=" ".join)
def test_fast_parse_equals_argparse(argv):
    fast = parse_fast(argv)
    assert fast is not None
    slow = build_parser(["run", *argv]).parse_args(["run", *argv])
    assert {f: getattr(fast, f) for f in FIELDS} == {f: getattr(slow, f) for f in FIELDS}
    assert fast.handler is slow.handler


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=lambda a: " ".join(a) or "(none)")
def test_fast_parse_declines(argv):
    assert parse_fast(argv) is None
