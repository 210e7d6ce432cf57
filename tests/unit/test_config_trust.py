"""The working directory's ``lsandbox.toml`` is loaded only once trusted (``lsandbox._trust``):
the workspace is writable, so a sandboxed command could have written it. The end-to-end
attack (a sandbox planting a config for the next run) is tests/security/test_config_plant.py."""

from __future__ import annotations

import os

import pytest

from lsandbox import PolicyError, load_policy
from lsandbox.cli import main

FULL = 'default_permissions = ":danger-full-access"\n'
RO = 'default_permissions = ":read-only"\n'


@pytest.fixture
def ws(tmp_path, monkeypatch):
    (tmp_path / "ws").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "ws")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LSANDBOX_REQUIREMENTS", "")
    return tmp_path / "ws"


def _store(ws) -> str:
    return os.path.join(ws.parent, "home", ".config", "lsandbox", "trusted")


def test_untrusted_config_in_the_working_directory_is_refused(ws, capsys):
    (ws / "lsandbox.toml").write_text(FULL)
    with pytest.raises(PolicyError, match="not trusted") as e:
        load_policy()
    assert e.value.file == str(ws / "lsandbox.toml")
    assert main(["explain"]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lsandbox: error: {ws / 'lsandbox.toml'}: not trusted")
    assert not os.path.exists(_store(ws))  # refusing records nothing


def test_trusted_then_changed_then_trusted_again(ws, capsys):
    (ws / "lsandbox.toml").write_text(RO)
    assert main(["trust"]) == 0
    assert "trusted " + str(ws / "lsandbox.toml") in capsys.readouterr().out
    assert load_policy().filesystem.write_roots == ()
    (ws / "lsandbox.toml").write_text(FULL)
    with pytest.raises(PolicyError, match="not trusted"):
        load_policy()
    assert main(["trust"]) == 0
    assert load_policy().filesystem.write_roots == ("/",)
    with open(_store(ws)) as f:
        assert len(f.read().splitlines()) == 1  # the newer trust replaced the older


def test_named_with_c_is_the_users_choice(ws):
    (ws / "lsandbox.toml").write_text(RO)
    assert load_policy("lsandbox.toml").filesystem.write_roots == ()
    assert load_policy(str(ws / "lsandbox.toml")).filesystem.write_roots == ()


def test_a_symlink_to_another_trusted_config_is_not_trusted_here(ws, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "lsandbox.toml").write_text(FULL)
    assert main(["trust", str(other / "lsandbox.toml")]) == 0
    assert load_policy(cwd=str(other)).filesystem.write_roots == ("/",)
    os.symlink(other / "lsandbox.toml", ws / "lsandbox.toml")
    with pytest.raises(PolicyError, match="not trusted"):
        load_policy()


def test_only_a_valid_config_is_trusted(ws, capsys):
    (ws / "lsandbox.toml").write_text('default_permissions = "nope"\n[x\n')
    assert main(["trust"]) == 125
    assert not os.path.exists(_store(ws))
    assert main(["trust", "missing.toml"]) == 125


def test_check_validates_and_says_it_is_not_trusted(ws, capsys):
    (ws / "lsandbox.toml").write_text(RO)
    assert main(["check"]) == 0
    assert "not trusted yet" in capsys.readouterr().out
    assert main(["trust"]) == 0
    capsys.readouterr()
    assert main(["check"]) == 0
    assert "not trusted" not in capsys.readouterr().out


def test_the_bytes_checked_are_the_bytes_parsed(ws, monkeypatch):
    """A sandbox rewriting the file between the check and the parse gains nothing: the
    loader reads it once."""
    (ws / "lsandbox.toml").write_text(RO)
    assert main(["trust"]) == 0
    from lsandbox import _trust

    real = _trust.is_trusted

    def swap_after_check(path, raw, env):
        ok = real(path, raw, env)
        (ws / "lsandbox.toml").write_text(FULL)  # too late: raw was read
        return ok
    monkeypatch.setattr(_trust, "is_trusted", swap_after_check)
    assert load_policy().filesystem.write_roots == ()


def test_a_trusted_config_that_is_gone_stops_the_run(ws, capsys):
    """Red team 2 (F1): a sandbox removing (or replacing with a directory) a trusted, stricter
    ./lsandbox.toml made the next run fall back to the looser built-in :workspace."""
    (ws / "lsandbox.toml").write_text(RO)
    assert main(["trust"]) == 0
    (ws / "lsandbox.toml").unlink()
    with pytest.raises(PolicyError, match="was trusted and is now missing"):
        load_policy()
    (ws / "lsandbox.toml").mkdir()
    with pytest.raises(PolicyError, match="was trusted and is now missing"):
        load_policy()
    assert main(["check"]) == 125
    capsys.readouterr()
    assert main(["trust", "--forget"]) == 0
    assert "forgot " + str(ws / "lsandbox.toml") in capsys.readouterr().out
    assert load_policy().filesystem.write_roots  # the built-in :workspace, as the user chose


@pytest.mark.parametrize("brk", ["\n", "\u2028", "\x85", "\r"])
def test_a_path_with_a_line_break_is_never_trusted(ws, tmp_path, brk):
    """Red teams 2 and 3 (F7, F1): the store is one entry per line; a directory name with a
    line break (made by a sandbox; U+2028 and U+0085 break lines for ``splitlines``) would
    have written a second entry for another path."""
    evil = tmp_path / f"decoy{brk}abc /x"
    evil.mkdir(parents=True)
    (evil / "lsandbox.toml").write_text(RO)
    assert main(["trust", str(evil / "lsandbox.toml")]) == 125
    assert not os.path.exists(_store(ws))


def test_trust_shows_what_it_trusted(ws, capsys):
    (ws / "lsandbox.toml").write_text(FULL)
    assert main(["trust"]) == 0
    out = capsys.readouterr().out
    assert "profile :danger-full-access" in out and "writable /" in out and len(out.split("sha256 ")[1][:64]) == 64


def test_a_writable_home_is_named_at_launch(capsys, monkeypatch):
    """Red team 2 (F2): started in ~, the workspace holds the trust store and the user's own
    configs (and shell startup files): a sandbox can change later runs. Said on stderr."""
    import shutil
    import tempfile

    from lsandbox.cli._run import _note_writable_home

    base = tempfile.mkdtemp(dir="/var/tmp")  # not under /tmp, which :workspace writes
    try:
        home, ws = os.path.join(base, "home"), os.path.join(base, "ws")
        os.makedirs(ws)
        os.makedirs(os.path.join(home, ".config", "lsandbox"))
        monkeypatch.setenv("HOME", home)
        monkeypatch.setenv("LSANDBOX_REQUIREMENTS", "")
        _note_writable_home(load_policy(cwd=ws))
        assert capsys.readouterr().err == ""
        _note_writable_home(load_policy(cwd=home))
        err = capsys.readouterr().err
        assert err.startswith(f"lsandbox: note: the writable root {home} holds your home directory"), err
        assert err.count("\n") == 1
        _note_writable_home(load_policy(cwd=ws, writable=[os.path.join(home, ".config")]))
        assert "the command may change lsandbox's configuration" in capsys.readouterr().err
        _note_writable_home(load_policy(profile=":danger-full-access", cwd=ws))
        assert capsys.readouterr().err == ""
    finally:
        shutil.rmtree(base)


def test_the_directory_is_resolved_the_name_is_not(ws, tmp_path, capsys):
    """Red team 3 (F2): trusted by its real path, then reached through a symlinked spelling of
    the project: a deleted config must still stop the run, and the file itself loads."""
    link = tmp_path / "proj-link"
    os.symlink(ws, link)
    (ws / "lsandbox.toml").write_text(RO)
    assert main(["trust"]) == 0
    assert load_policy(cwd=str(link)).filesystem.write_roots == ()
    (ws / "lsandbox.toml").unlink()
    with pytest.raises(PolicyError, match="was trusted and is now missing"):
        load_policy(cwd=str(link))


def test_what_a_planted_config_names_is_shown_escaped(ws, capsys):
    """Red team 3 (F3): ``trust`` and ``explain`` printed a profile name from the config as it
    was: TOML escapes let a config that looks harmless under ``cat`` erase or hide the line
    that says what it grants."""
    (ws / "lsandbox.toml").write_text('default_permissions = "ro\\u001b[2K\\r"\n'
                                      '[permissions."ro\\u001b[2K\\r"]\nextends = ":workspace"\n')
    assert main(["trust"]) == 0
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "ro\\x1b[2K\\r" in out, out


def test_a_fifo_in_place_of_the_searched_config_does_not_block(ws):
    """Red team 3: a FIFO swapped in after the search saw a file must not hang the run."""
    from lsandbox import _trust
    from lsandbox.policy._loader import Config

    os.mkfifo(ws / "lsandbox.toml")
    with pytest.raises(PolicyError, match="not a regular file"):
        Config.from_file(str(ws / "lsandbox.toml"), _trust.require(str(ws / "lsandbox.toml"), os.environ))
