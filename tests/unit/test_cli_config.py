"""CLI behaviour of check/explain: exit codes, one-line errors, flag == config key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsandbox import PolicyError, SandboxError, load_policy
from lsandbox.cli import main

ISSUE_CONFIG = """default_permissions = "uds-test"
[permissions.uds-test]
extends = ":workspace"
[permissions.uds-test.network.unix_sockets]
"/tmp/.X11-unix" = "allow"
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LSANDBOX_REQUIREMENTS", "")
    return tmp_path


def test_explain_json_config_equals_flags(in_tmp, capsys):
    cfg = in_tmp / "c.toml"
    cfg.write_text(ISSUE_CONFIG)
    assert main(["explain", "-c", str(cfg), "--format", "json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["explain", "-p", ":workspace", "--allow-unix-socket", "/tmp/.X11-unix",
                 "--format", "json"]) == 0
    b = json.loads(capsys.readouterr().out)
    policy_keys = ("filesystem", "network")
    assert {k: a[k] for k in policy_keys} == {k: b[k] for k in policy_keys}
    assert a["network"]["unix_sockets"] == {"/tmp/.X11-unix": "allow"}
    # beside the policy: the profile's name, where each rule came from, the always-on entries
    assert (a["profile"], b["profile"]) == ("uds-test", ":workspace")
    assert a["origins"]["unix_sockets"]["/tmp/.X11-unix"] == f"{cfg}:5"
    assert b["origins"]["unix_sockets"]["/tmp/.X11-unix"] == "--allow-unix-socket"
    assert a["always"]["unix_sockets"] == {"$LSANDBOX_SOCKET_DIR": "allow"}
    assert "/dev/null" in a["always"]["filesystem"]


def test_check_ok_and_error_exit_125(in_tmp, capsys):
    good = in_tmp / "good.toml"
    good.write_text(ISSUE_CONFIG)
    assert main(["check", str(good)]) == 0
    assert "OK (1 profile)" in capsys.readouterr().out
    bad = in_tmp / "bad.toml"
    bad.write_text('[permissions.p]\nextends = ":workspace"\n[permissions.q]\nnetwork = { enable = true }\n')
    assert main(["check", str(bad)]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == (f"lsandbox: error: {bad}:4: permissions.q.network.enable: unknown key "
                   "(did you mean 'enabled'?)\n")


def test_usage_error_is_125(in_tmp, capsys):
    assert main(["explain", "--format", "nope"]) == 125


def test_config_search_order(in_tmp, capsys):
    (in_tmp / "home" / ".codex").mkdir(parents=True)
    (in_tmp / "home" / ".codex" / "config.toml").write_text('sandbox_mode = "read-only"\n')
    assert load_policy(requirements=None).filesystem.write_roots == ()
    (in_tmp / "lsandbox.toml").write_text('default_permissions = ":workspace"\n')
    with pytest.raises(PolicyError, match="not trusted"):  # tests/unit/test_config_trust.py
        load_policy(requirements=None)
    assert main(["trust"]) == 0
    assert load_policy(requirements=None).filesystem.write_roots != ()


def test_explain_text_mentions_alias(in_tmp, capsys):
    assert main(["explain", "-p", ":workspace-write"]) == 0
    out = capsys.readouterr().out
    assert "alias of ':workspace'" in out and ".git" in out


def test_real_subprocess_check(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[permissions.p.network.unix_sockets]\n"rel.sock" = "allow"\n')
    exe = os.path.join(os.path.dirname(sys.executable), "lsandbox")
    r = subprocess.run([exe, "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 125
    assert r.stderr.startswith(f"lsandbox: error: {bad}:2: ")


# ------------------------------------------------ random documents: never a traceback

_keys = st.sampled_from([
    "default_permissions", "permissions", "extends", "filesystem", "network", "enabled", "mode",
    "unix_sockets", "allow_unix_sockets", "dangerously_allow_all_unix_sockets", "p", "q",
    ":workspace", ":root", ":tmpdir", "/tmp", "~/x", "rel", "sandbox_mode",
    "sandbox_workspace_write", "writable_roots", "description", "workspace_roots", "domains",
])
_scalars = st.one_of(
    st.booleans(), st.integers(-3, 3),
    st.sampled_from(["read", "write", "deny", "allow", "none", ":workspace", ":read-only", "p",
                     "q", "full", "limited", "/tmp", "rel", "workspace-write", "$NOPE/x", "~"]),
    st.text(max_size=5),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12,
)


def _toml_key(k: str) -> str:
    return json.dumps(k)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(_keys, _values, max_size=5), profile=st.sampled_from([None, "p", ":workspace"]))
def test_random_documents_never_traceback(tmp_path, doc, profile):
    text = "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items())
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    try:
        load_policy(str(path), profile, cwd=str(tmp_path), requirements=None, env={"HOME": "/root"})
    except PolicyError as e:
        assert "\n" not in str(e)
        assert str(e).startswith(str(path))
    except SandboxError:
        pass


def test_check_names_profiles_the_requirements_refuse(in_tmp, capsys):
    """Under a closed profile list, `check` failed on a base profile that an allowed one
    extends (the base need not be allowed itself to run the allowed one)."""
    req = in_tmp / "req.toml"
    req.write_text('allowed_permission_profiles = { "dev" = true }\n')
    cfg = in_tmp / "c.toml"
    cfg.write_text('default_permissions = "dev"\n[permissions.base]\nextends = ":workspace"\n'
                   '[permissions.dev]\nextends = "base"\n')
    assert main(["check", str(cfg), "--requirements", str(req)]) == 0
    assert "not allowed by the requirements to run: base" in capsys.readouterr().out
