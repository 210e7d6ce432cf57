"""The flags people reach for build exactly the policy their config keys build:
``--read``/``--deny`` (filesystem entries), ``--setenv``/``--unsetenv``/``--clearenv``
(``[shell_environment_policy]``), ``-C`` (the workspace root); and the environment policy
itself, step by step as Codex applies it."""

from __future__ import annotations

import json
import os

import pytest

from lsandbox import PolicyError, UnenforceableError
from lsandbox.cli import main
from lsandbox.policy import EnvironmentPolicy, FsAccess
from tests.unit.test_config_loader import err, load


def test_read_and_deny_flags_equal_config_keys(tmp_path):
    (tmp_path / "data").mkdir()
    a = load(tmp_path, f"""
        [permissions.p]
        extends = ":read-only"
        [permissions.p.filesystem]
        "{tmp_path}/data" = "write"
        "{tmp_path}/data/ro" = "read"
        "~/.ssh" = "deny"
        """, profile="p")
    b = load(tmp_path, f"""
        [permissions.p]
        extends = ":read-only"
        [permissions.p.filesystem]
        "{tmp_path}/data" = "write"
        """, profile="p", read=[f"{tmp_path}/data/ro"], deny=["~/.ssh"])
    assert a == b
    assert a.to_dict() == b.to_dict()
    assert b.filesystem.access(f"{tmp_path}/data/ro/x") is FsAccess.READ
    assert b.filesystem.access(f"{tmp_path}/home/.ssh/id") is FsAccess.DENY


def test_read_deny_flags_refuse_what_config_refuses(tmp_path):
    for kw in ({"read": ["rel"]}, {"deny": ["/tmp/*.key"]}, {"read": ["/etc/hostname/x"]}):
        e = err(tmp_path, "", **kw)
        assert "--read" in str(e) or "--deny" in str(e)


def test_env_flags_equal_config_table(tmp_path):
    a = load(tmp_path, """
        [shell_environment_policy]
        inherit = "none"
        exclude = ["AWS_*"]
        set = { A = "1", B = "x=y" }
        """)
    b = load(tmp_path, "", clearenv=True, unsetenv=["AWS_*"], setenv=["A=1", "B=x=y"])
    assert a == b and a.to_dict() == b.to_dict()
    assert a.environment == EnvironmentPolicy(inherit="none", exclude=("AWS_*",),
                                              set=(("B", "x=y"), ("A", "1")))


def test_chdir_is_the_workspace_root(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    a = load(tmp_path, "", cwd=str(ws))
    assert a.filesystem.access(str(ws) + "/f") is FsAccess.WRITE
    ro = a.filesystem.read_only  # the workspace pattern applies at DIR, not at the process cwd
    assert str(ws) + "/.git" in ro and str(tmp_path) + "/.git" not in ro
    e = err(tmp_path, "", cwd=str(tmp_path / "missing"))
    assert "does not exist" in str(e)


def test_environment_steps_as_codex():
    env = {"PATH": "/bin", "HOME": "/h", "GH_TOKEN": "t", "api_key": "k", "MY_SECRET_X": "s",
           "AWS_REGION": "r", "EDITOR": "vi"}
    assert EnvironmentPolicy().apply(env) == env
    assert EnvironmentPolicy(inherit="core").apply(env) == {"PATH": "/bin", "HOME": "/h"}
    assert EnvironmentPolicy(inherit="none", set=(("A", "1"),)).apply(env) == {"A": "1"}
    assert set(EnvironmentPolicy(ignore_default_excludes=False).apply(env)) == {
        "PATH", "HOME", "AWS_REGION", "EDITOR"}
    assert set(EnvironmentPolicy(exclude=("aws_*",)).apply(env)) == set(env) - {"AWS_REGION"}
    # set comes before include_only, as in Codex: a set name not included is dropped
    only = EnvironmentPolicy(include_only=("PATH", "h*"), set=(("X", "1"),)).apply(env)
    assert only == {"PATH": "/bin", "HOME": "/h"}


@pytest.mark.parametrize("table, fragment, cls", [
    ('inherit = "some"', "invalid inherit", PolicyError),
    ("experimental_use_profile = true", "shell profile", UnenforceableError),
    ('filters = { "AWS_*" = "exclude" }', "filter table", UnenforceableError),
    ("exclued = []", "did you mean 'exclude'", PolicyError),
    ('set = { "A*" = "1" }', "glob characters", PolicyError),
    ("set = { A = 1 }", "expected a string", PolicyError),
    ('exclude = "AWS"', "expected an array", PolicyError),
])
def test_env_table_errors(tmp_path, table, fragment, cls):
    e = err(tmp_path, f"[shell_environment_policy]\n{table}\n")
    assert isinstance(e, cls) and fragment in str(e)
    assert str(e).startswith(str(tmp_path / "config.toml") + ":2: shell_environment_policy.")


def test_env_flag_errors(tmp_path):
    assert "NAME=VALUE" in str(err(tmp_path, "", setenv=["NOEQUALS"]))
    assert "empty name" in str(err(tmp_path, "", setenv=["=v"]))
    assert "empty name" in str(err(tmp_path, "", unsetenv=[""]))


def test_explain_json_flags_equal_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "c.toml").write_text('[shell_environment_policy]\ninherit = "core"\nset = { A = "1" }\n'
                                     '[permissions.p]\nextends = ":workspace"\n'
                                     '[permissions.p.filesystem]\n"/etc" = "deny"\n')
    (tmp_path / "empty.toml").write_text('[shell_environment_policy]\ninherit = "core"\n')
    assert main(["explain", "-c", "c.toml", "-p", "p", "--format", "json", "--requirements", "/dev/null"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["explain", "-c", "empty.toml", "--deny", "/etc", "--setenv", "A=1", "--format",
                 "json", "--requirements", "/dev/null"]) == 0
    b = json.loads(capsys.readouterr().out)
    keys = ("filesystem", "network", "environment")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys} and a["environment"]["inherit"] == "core"


def test_check_without_argument_checks_what_run_loads(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["check"]) == 0
    assert "no config file found" in capsys.readouterr().out
    (tmp_path / "lsandbox.toml").write_text('default_permissions = "nope"\n')
    assert main(["check"]) == 125
    assert capsys.readouterr().err.startswith(f"lsandbox: error: {os.path.join(tmp_path, 'lsandbox.toml')}:1:")


def _run_options() -> list[str]:
    from lsandbox.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return [o for a in sub.choices["run"]._actions for o in a.option_strings
            if o.startswith("--") and o != "--help"]


def test_completion_and_manpage_are_generated_from_the_option_table(capsys):
    pytest.importorskip("shtab")
    pytest.importorskip("argparse_manpage")
    opts = _run_options()
    assert {"--chdir", "--read", "--deny", "--setenv", "--unsetenv", "--clearenv"} <= set(opts)
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert main(["manpage"]) == 0
    man = capsys.readouterr().out
    assert man.startswith(".TH LSANDBOX")
    for o in opts:
        assert o in script, o
        assert o.replace("-", "\\-") in man, o


def test_explain_says_when_a_flag_overrides_the_profile_network(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "--network", "--requirements", "/dev/null", "-c", "/dev/null"]) == 0
    out = capsys.readouterr().out
    assert "no network." in out and "note: --network overrides the profile's network setting" in out
    assert "network: on" in out
