"""The Codex-compatible loader: real files in tmp dirs, real symlinks, exact file:line errors."""

from __future__ import annotations

import os
import textwrap

import pytest

from lsandbox import PolicyError, UnenforceableError, load_policy
from lsandbox.policy import FsAccess, SocketAccess


def write(tmp_path, text: str, name: str = "config.toml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(p)


def load(tmp_path, text, **kw):
    kw.setdefault("cwd", str(tmp_path))
    kw.setdefault("requirements", None)
    kw.setdefault("env", {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin"})
    return load_policy(write(tmp_path, text), **kw)


@pytest.fixture
def var_tmp_path():
    """A directory outside /tmp, which :workspace makes writable."""
    import pathlib

    from tests._sandbox import rmtree, world_dir

    d = world_dir("lsb-unit-")
    yield pathlib.Path(d)
    rmtree(d)


def err(tmp_path, text, **kw) -> PolicyError:
    with pytest.raises(PolicyError) as ei:
        load(tmp_path, text, **kw)
    return ei.value


ISSUE_CONFIG = """
default_permissions = "uds-test"
[permissions.uds-test]
extends = ":workspace"
[permissions.uds-test.network.unix_sockets]
"/tmp/.X11-unix" = "allow"
"""


def test_issue_codex_config(tmp_path):
    pol = load(tmp_path, ISSUE_CONFIG)
    ws = os.path.realpath(tmp_path)
    fs = pol.filesystem
    assert fs.access("/usr/bin/ls") is FsAccess.READ
    assert fs.access(ws + "/src/a.py") is FsAccess.WRITE
    assert fs.access(ws + "/.git/config") is FsAccess.READ
    assert set(fs.read_only) >= {ws + "/.git", ws + "/.agents", ws + "/.codex", ws + "/.lsandbox"}
    assert fs.access("/tmp/x") is FsAccess.WRITE
    assert not pol.network.enabled
    assert pol.network.unix_socket_access("/tmp/.X11-unix/X0") is SocketAccess.ALLOW
    assert pol.network.unix_socket_access("/run/docker.sock") is SocketAccess.NONE
    assert pol.network.unix_sockets[0].origin.endswith("config.toml:5")


def test_flag_equals_config_key(tmp_path):
    via_config = load(tmp_path, ISSUE_CONFIG)
    via_flag = load_policy(None, ":workspace", cwd=str(tmp_path), requirements=None, search=False,
                           allow_unix_sockets=["/tmp/.X11-unix"],
                           env={"HOME": str(tmp_path / "home")})
    assert via_config == via_flag
    assert via_config.to_dict() == via_flag.to_dict()


def test_writable_flag_equals_workspace_roots_key(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    a = load(tmp_path, f"""
        [permissions.p]
        extends = ":workspace"
        workspace_roots = ["{other}"]
        """, profile="p")
    b = load(tmp_path, """
        [permissions.p]
        extends = ":workspace"
        """, profile="p", writable=[str(other)])
    assert a == b
    assert a.filesystem.access(str(other) + "/f") is FsAccess.WRITE
    assert a.filesystem.access(str(other) + "/.git/HEAD") is FsAccess.READ
    c = load(tmp_path, "[permissions.p]\nextends = ':read-only'\n", profile="p", writable=[str(other)])
    assert c.filesystem.access(str(other) + "/f") is FsAccess.WRITE  # -w is never ignored
    assert c.filesystem.access(str(other) + "/.git/x") is FsAccess.READ


def test_network_flag_equals_key(tmp_path):
    a = load(tmp_path, "[permissions.p]\nextends=':workspace'\nnetwork.enabled = true\n", profile="p")
    b = load(tmp_path, "[permissions.p]\nextends=':workspace'\n", profile="p", network=True)
    assert a == b and a.network.enabled


def test_extends_depth_3_with_overrides(tmp_path):
    pol = load(tmp_path, """
        [permissions.a]
        extends = ":workspace"
        [permissions.a.network]
        enabled = true
        unix_sockets = { "/run/a.sock" = "allow", "/run/b.sock" = "allow" }
        [permissions.b]
        extends = "a"
        filesystem = { "/opt" = "deny" }
        [permissions.b.network]
        unix_sockets = { "/run/b.sock" = "none" }
        [permissions.c]
        extends = "b"
        filesystem = { "/opt" = "write", ":slash_tmp" = "read" }
        network.enabled = false
        """, profile="c")
    assert pol.filesystem.access("/opt/x") is FsAccess.WRITE
    assert pol.filesystem.access("/tmp/x") is FsAccess.READ
    assert pol.network.enabled is False
    assert pol.network.unix_socket_access("/run/a.sock") is SocketAccess.ALLOW
    assert pol.network.unix_socket_access("/run/b.sock") is SocketAccess.NONE


def test_unix_socket_longest_match(tmp_path):
    pol = load(tmp_path, """
        [permissions.p.network.unix_sockets]
        "/tmp" = "allow"
        "/tmp/x.sock" = "none"
        "/tmp/y.sock" = "deny"
        """, profile="p")
    n = pol.network
    assert n.unix_socket_access("/tmp/a.sock") is SocketAccess.ALLOW
    assert n.unix_socket_access("/tmp/x.sock") is SocketAccess.NONE
    assert n.unix_socket_access("/tmp/y.sock") is SocketAccess.NONE


def test_legacy_allow_unix_sockets_array_and_tilde(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    pol = load(tmp_path, """
        [permissions.p.network]
        allow_unix_sockets = ["~/.gnupg/S.gpg-agent", "$XDG/sock"]
        """, profile="p", env={"HOME": str(home), "XDG": "/run/user/1000"})
    paths = [r.path for r in pol.network.unix_sockets]
    assert str(home) + "/.gnupg/S.gpg-agent" in paths
    assert "/run/user/1000/sock" in paths


def test_canonicalization_through_symlinks(var_tmp_path):
    """(A link no run could have made: outside /tmp and the workspace.)"""
    tmp_path = var_tmp_path
    real = tmp_path / "real"
    (real / "sock").mkdir(parents=True)
    (tmp_path / "ws").mkdir()
    (tmp_path / "link").symlink_to(real)
    pol = load(tmp_path, f"""
        [permissions.p]
        filesystem = {{ "{tmp_path}/link" = "write" }}
        network.unix_sockets = {{ "{tmp_path}/link/sock" = "allow" }}
        """, profile="p", cwd=str(tmp_path / "ws"))
    assert pol.filesystem.rules[0].path == os.path.realpath(real)
    assert pol.network.unix_sockets[0].path == os.path.realpath(real / "sock")


def test_scoped_filesystem_and_specials(tmp_path):
    pol = load(tmp_path, """
        [permissions.p.filesystem]
        ":minimal" = "read"
        "/srv" = { "." = "read", "data" = "write", "data/secret" = "deny" }
        ":workspace_roots" = { "." = "write", "build" = "read" }
        """, profile="p")
    fs = pol.filesystem
    assert fs.access("/usr/lib/x") is FsAccess.READ
    assert fs.access("/home/u") is FsAccess.DENY  # not covered by :minimal
    assert fs.access("/srv/data/x") is FsAccess.WRITE
    assert fs.access("/srv/data/secret/k") is FsAccess.DENY
    assert fs.access(os.path.realpath(tmp_path) + "/build/o") is FsAccess.READ


def test_legacy_sandbox_mode(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    pol = load(tmp_path, f"""
        sandbox_mode = "workspace-write"
        default_permissions = "ignored-because-legacy-wins"
        model = "o3"
        [sandbox_workspace_write]
        writable_roots = ["{extra}"]
        network_access = true
        exclude_slash_tmp = true
        exclude_tmpdir_env_var = true
        """)
    assert pol.network.enabled
    assert pol.filesystem.access(str(extra) + "/f") is FsAccess.WRITE
    assert pol.filesystem.access("/tmp/zz") is FsAccess.READ
    ro = load(tmp_path, 'sandbox_mode = "read-only"\n')
    assert ro.filesystem.write_roots == ()


def test_builtins_and_alias(tmp_path):
    ws = load_policy(None, ":workspace", cwd=str(tmp_path), search=False, requirements=None)
    alias = load_policy(None, ":workspace-write", cwd=str(tmp_path), search=False, requirements=None)
    assert ws == alias
    full = load_policy(None, ":danger-full-access", search=False, requirements=None)
    assert full.network.enabled and full.network.dangerously_allow_all_unix_sockets
    assert full.filesystem.access("/etc/x") is FsAccess.WRITE


def test_other_codex_top_level_keys_ignored(tmp_path):
    pol = load(tmp_path, """
        model = "gpt-5"
        approval_policy = "on-request"
        """ + ISSUE_CONFIG + """
        [mcp_servers.x]
        command = "y"
        """)
    assert pol.network.unix_socket_access("/tmp/.X11-unix/X0") is SocketAccess.ALLOW


# ----------------------------------------------------------------- errors, with exact lines


def test_unknown_key_in_profile_with_suggestion(tmp_path):
    e = err(tmp_path, """
        default_permissions = "p"
        [permissions.p]
        extend = ":workspace"
        """)
    assert str(e).endswith("config.toml:3: permissions.p.extend: unknown key (did you mean 'extends'?)")
    assert e.line == 3


def test_unknown_network_key(tmp_path):
    e = err(tmp_path, """
        [permissions.p.network]
        enabled = false
        unix_socket = { "/tmp/a" = "allow" }
        """, profile="p")
    assert ":3: permissions.p.network.unix_socket: unknown key (did you mean 'unix_sockets'?)" in str(e)


def test_wrong_type(tmp_path):
    e = err(tmp_path, """
        [permissions.p]

        network.enabled = "yes"
        """, profile="p")
    assert str(e).endswith(":3: permissions.p.network.enabled: expected a boolean, got a string")


def test_unknown_builtin_lists_valid(tmp_path):
    e = err(tmp_path, """
        [permissions.p]
        extends = ":workspaces"
        """, profile="p")
    assert ":2: permissions.p.extends: unknown built-in profile ':workspaces'" in str(e)
    for name in (":read-only", ":workspace", ":workspace-write", ":danger-full-access"):
        assert name in str(e)


def test_extends_cycle(tmp_path):
    e = err(tmp_path, """
        [permissions.a]
        extends = "b"
        [permissions.b]
        extends = "c"
        [permissions.c]
        extends = "a"
        """, profile="a")
    assert "cycle" in str(e) and "a -> b -> c -> a" in str(e)
    assert ":6: permissions.c.extends:" in str(e)


def test_relative_socket_path(tmp_path):
    e = err(tmp_path, """
        [permissions.p.network.unix_sockets]
        "/ok.sock" = "allow"
        "run/docker.sock" = "allow"
        """, profile="p")
    assert str(e).endswith(
        ':3: permissions.p.network.unix_sockets."run/docker.sock": socket path must be absolute '
        "(or start with ~ or $VAR)")


def test_redefine_builtin(tmp_path):
    e = err(tmp_path, """
        [permissions.":workspace"]
        description = "mine"
        """)
    assert ':1: permissions.":workspace": profile names starting with' in str(e)
    assert "redefine a built-in" in str(e)


def test_danger_full_access_not_extendable(tmp_path):
    e = err(tmp_path, '[permissions.p]\nextends = ":danger-full-access"\n', profile="p")
    assert "cannot be extended" in str(e) and e.line == 2


def test_unenforceable_codex_keys_refused(tmp_path):
    """The proxy settings lsandbox cannot honour stay errors naming the key (the domains
    keys that it can are tested in test_network_domains.py)."""
    for key, value, word in (("enable_socks5", "true", "SOCKS5"), ("mitm", "true", "TLS"),
                             ("allow_upstream_proxy", "true", "upstream"),
                             ("socks_url", '"http://127.0.0.1:8081"', "SOCKS5")):
        e = err(tmp_path, f"""
            [permissions.p.network]
            enabled = true
            {key} = {value}
            """, profile="p")
        assert isinstance(e, UnenforceableError) and word in str(e) and e.line == 3, key
        assert e.key.endswith(key)
    e = err(tmp_path, '[permissions.p.network]\nproxy_url = "http://10.0.0.1:3128"\n', profile="p")
    assert isinstance(e, UnenforceableError) and e.line == 2
    # asking for nothing is fine
    load(tmp_path, "[permissions.p.network]\nallow_local_binding = false\nmode = 'full'\n"
         "enable_socks5 = false\n", profile="p")


def test_globs_refused(tmp_path):
    e = err(tmp_path, """
        [permissions.p.filesystem]
        "/home/u/**/*.env" = "deny"
        """, profile="p")
    assert "glob" in str(e) and e.line == 2
    pol = load(tmp_path, '[permissions.p.filesystem]\n"/srv/**" = "read"\n', profile="p")
    assert pol.filesystem.access("/srv/a") is FsAccess.READ


def test_bad_mode_suggestion(tmp_path):
    e = err(tmp_path, '[permissions.p.filesystem]\n"/srv" = "wirte"\n', profile="p")
    assert "did you mean 'write'" in str(e) and e.line == 2


def test_unknown_profile_and_top_level_typo(tmp_path):
    e = err(tmp_path, 'default_permissions = "nope"\n[permissions.yes]\n')
    assert e.line == 1 and "unknown profile 'nope'" in str(e)
    e = err(tmp_path, '[permisions.p]\nextends=":workspace"\n')
    assert "did you mean 'permissions'" in str(e) and e.line == 1


def test_toml_syntax_error_has_line(tmp_path):
    e = err(tmp_path, '[permissions.p]\nextends = \n')
    assert e.line == 2 and "invalid TOML" in str(e)


def test_unset_env_var(tmp_path):
    e = err(tmp_path, '[permissions.p.filesystem]\n"$NOPE_NOT_SET/x" = "read"\n', profile="p")
    assert "NOPE_NOT_SET" in str(e) and "config.toml:2" in str(e)


# ----------------------------------------------------------------- requirements


def test_requirements(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    req = write(tmp_path, """
        allowed_permission_profiles = { ":danger-full-access" = false, ":workspace" = true }
        [permissions.filesystem]
        deny_read = ["~/.ssh"]
        [permissions.network]
        enabled = false
        unix_sockets = { "/var/run/docker.sock" = "none", "/srv/private" = "none" }
        """, "req.toml")
    env = {"HOME": str(home)}
    pol = load_policy(None, ":workspace", cwd=str(tmp_path), search=False, requirements=req, env=env)
    # requirements paths expand with the process HOME; check the rule exists for the docker socket
    assert pol.network.unix_socket_access("/var/run/docker.sock") is SocketAccess.NONE
    with pytest.raises(PolicyError, match="forbid"):
        load_policy(None, ":workspace", search=False, requirements=req, network=True, env=env)
    with pytest.raises(PolicyError, match="not allowed"):
        load_policy(None, ":danger-full-access", search=False, requirements=req, env=env)
    with pytest.raises(PolicyError, match="administrator"):
        load_policy(None, ":workspace", search=False, requirements=req, env=env,
                    allow_unix_sockets=["/srv/private/a.sock"])
    # allowing a parent does not loosen a required denial (longest match keeps it)
    pol = load_policy(None, ":workspace", search=False, requirements=req, env=env,
                      allow_unix_sockets=["/srv"])
    assert pol.network.unix_socket_access("/srv/private/a.sock") is SocketAccess.NONE
    assert pol.network.unix_socket_access("/srv/other.sock") is SocketAccess.ALLOW


def test_requirements_deny_read_cannot_be_loosened(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    req = write(tmp_path, f'[permissions.filesystem]\ndeny_read = ["{secret}"]\n', "req.toml")
    pol = load_policy(None, ":workspace", cwd="/", search=False, requirements=req)
    assert pol.filesystem.access(str(secret) + "/k") is FsAccess.DENY
    cfg = write(tmp_path, f'[permissions.p.filesystem]\n":root" = "read"\n"{secret}/pub" = "read"\n')
    with pytest.raises(PolicyError, match="inside"):
        load_policy(cfg, "p", requirements=req)


def test_allowed_permission_profiles_is_a_closed_list(tmp_path):
    """As in Codex: a profile not listed as true is refused, built-ins and legacy
    sandbox_mode included (the list was read as a denylist: everything unlisted loaded)."""
    req = write(tmp_path, """
        allowed_permission_profiles = { ":read-only" = true, ":workspace-write" = true, "review" = true }
        """, "req.toml")
    cfg = write(tmp_path, """
        [permissions.review]
        extends = ":read-only"
        [permissions.anything.filesystem]
        ":root" = "write"
        """)
    kw = {"cwd": str(tmp_path), "requirements": req, "search": False}
    assert load_policy(None, ":read-only", **kw).filesystem.write_roots == ()
    load_policy(None, ":workspace", **kw)  # listed under its alias
    load_policy(cfg, "review", **kw)
    for name in (":danger-full-access", "anything"):
        with pytest.raises(PolicyError, match="not allowed"):
            load_policy(cfg, name, **kw)
    legacy = write(tmp_path, 'sandbox_mode = "danger-full-access"\n', "legacy.toml")
    with pytest.raises(PolicyError, match="':danger-full-access' is not allowed"):
        load_policy(legacy, **kw)


def test_allowed_sandbox_modes_judge_every_policy(tmp_path):
    """allowed_sandbox_modes binds every profile by what it writes, not only a legacy
    sandbox_mode (":workspace" and ":danger-full-access" loaded under ["read-only"])."""
    req = write(tmp_path, 'allowed_sandbox_modes = ["read-only"]\n', "req.toml")
    cfg = write(tmp_path, 'default_permissions = ":danger-full-access"\n')
    kw = {"cwd": str(tmp_path), "requirements": req}
    load_policy(None, ":read-only", search=False, **kw)
    for args in ((None, ":workspace"), (None, ":danger-full-access"), (cfg, None)):
        with pytest.raises(PolicyError, match="amounts to sandbox_mode"):
            load_policy(*args, search=args[0] is not None, **kw)
    with pytest.raises(PolicyError, match="amounts to sandbox_mode 'workspace-write'"):
        load_policy(None, ":read-only", search=False, writable=[str(tmp_path)], **kw)


def test_the_system_requirements_bind_whatever_file_is_named(tmp_path, monkeypatch):
    """--requirements / LSANDBOX_REQUIREMENTS add a file: the system one still binds (the
    option replaced it, and `--requirements /dev/null` lifted every requirement)."""
    from lsandbox.policy import _requirements

    system = write(tmp_path, 'allowed_permission_profiles = { ":read-only" = true, ":workspace" = true }\n',
                   "sys.toml")
    monkeypatch.setattr(_requirements, "DEFAULT_REQUIREMENTS", system)
    extra = write(tmp_path, 'allowed_sandbox_modes = ["read-only"]\n', "extra.toml")
    kw = {"cwd": str(tmp_path), "search": False}
    for requirements, env in (("/dev/null", {}), (None, {"LSANDBOX_REQUIREMENTS": "/dev/null"}), (None, {})):
        with pytest.raises(PolicyError, match="not allowed"):
            load_policy(None, ":danger-full-access", requirements=requirements, env=env, **kw)
    with pytest.raises(PolicyError, match="amounts to sandbox_mode"):  # both bind
        load_policy(None, ":workspace", requirements=extra, env={}, **kw)
    load_policy(None, ":read-only", requirements=extra, env={}, **kw)
    assert _requirements.find_requirements(system, {}) == [system]


def test_requirements_home_is_the_password_databases(tmp_path):
    """``~`` in a requirement is the user's home from the password database: a user setting
    HOME=/nonexistent moved `deny_read = ["~/.ssh"]` away from the real directory."""
    import pwd

    req = write(tmp_path, '[permissions.filesystem]\ndeny_read = ["~/.ssh"]\n', "req.toml")
    home = os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir)
    old = os.environ.get("HOME")
    os.environ["HOME"] = "/nonexistent"
    try:
        pol = load_policy(None, ":workspace", cwd=str(tmp_path), search=False, requirements=req)
    finally:
        if old is not None:
            os.environ["HOME"] = old
    assert pol.filesystem.access(home + "/.ssh/id_rsa") is FsAccess.DENY


def test_requirements_deny_read_conflicts_at_its_own_path_too(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    req = write(tmp_path, f'[permissions.filesystem]\ndeny_read = ["{secret}"]\n', "req.toml")
    cfg = write(tmp_path, f'[permissions.p.filesystem]\n":root" = "read"\n"{secret}" = "read"\n')
    with pytest.raises(PolicyError, match="administrator"):
        load_policy(cfg, "p", requirements=req)


def test_the_built_in_profiles_line_index_is_an_empty_documents():
    """The built-in profiles are parsed without the TOML line scanner; their positions are
    what ``LineIndex("")`` gives (line 1 for every key)."""
    from lsandbox.policy._loader import _BUILTIN_SOURCE
    from lsandbox.policy._toml_lines import LineIndex

    empty = LineIndex("")
    for path in [(), ("permissions",), ("permissions", ":workspace", "filesystem", "/")]:
        assert _BUILTIN_SOURCE.lines.line(path) == empty.line(path)


def test_cwd_of_a_relative_chdir(tmp_path, monkeypatch):
    """``$CWD`` with ``-C proj`` (relative) is the absolute directory: it was joined onto the
    relative name again (``proj/proj/secrets``), so the deny missed and the secret was read."""
    (tmp_path / "proj" / "secrets").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    pol = load(tmp_path, '[permissions.p]\nextends = ":workspace"\n[permissions.p.filesystem]\n'
                         '"$CWD/secrets" = "deny"\n', profile="p", cwd="proj")
    assert pol.filesystem.access(str(tmp_path / "proj" / "secrets" / "key")) is FsAccess.DENY
    pol = load_policy(None, ":workspace", cwd="proj", search=False, requirements=None, deny=["$CWD/secrets"])
    assert pol.filesystem.access(str(tmp_path / "proj" / "secrets" / "key")) is FsAccess.DENY


def test_dollar_and_tilde_in_a_directory_name_are_not_expanded_again(tmp_path):
    """A workspace root named ``a$HOME`` kept its name: its carve-outs moved to
    ``a/<home>/.git`` and the real ``.git`` stayed writable."""
    ws = tmp_path / "a$HOME"
    (ws / ".git").mkdir(parents=True)
    pol = load_policy(None, ":workspace", cwd=str(ws), search=False, requirements=None,
                      env={"HOME": str(tmp_path / "home")})
    assert pol.filesystem.access(str(ws / ".git" / "config")) is FsAccess.READ
    assert pol.filesystem.access(str(ws / "x")) is FsAccess.WRITE


def test_tilde_user_must_exist(tmp_path):
    """``~nosuchuser/.ssh`` became a path below the cwd; it is an error now."""
    e = err(tmp_path, '[permissions.p.filesystem]\n":root" = "read"\n"~nosuchuser_lsb/.ssh" = "deny"\n', profile="p")
    assert "nosuchuser_lsb" in str(e)


@pytest.mark.parametrize("sub", ["..", "../../etc", "./.git", "a/../b", "."])
def test_scoped_subpaths_are_below_their_entry(tmp_path, sub):
    """As in Codex: no '.' or '..' in a scoped subpath (``":workspace_roots" = { ".." =
    "write" }`` wrote the workspace's parent)."""
    if sub == ".":  # the entry itself
        load(tmp_path, '[permissions.p.filesystem]\n":root" = { "." = "read" }\n', profile="p")
        return
    e = err(tmp_path, f'[permissions.p.filesystem]\n":root" = "read"\n":workspace_roots" = {{ "{sub}" = "write" }}\n',
            profile="p")
    assert "no '.' or '..'" in str(e)


def test_two_spellings_in_one_table_the_stricter_wins(tmp_path):
    pol = load(tmp_path, '[permissions.p.filesystem]\n":root" = "read"\n'
                         '":workspace_roots" = { "." = "write", "src" = "read", "src/" = "write" }\n', profile="p")
    assert pol.filesystem.access(str(tmp_path / "src" / "f")) is FsAccess.READ


def test_a_child_that_turns_the_network_off_drops_inherited_domains(tmp_path):
    """``enabled = false`` in a child was turned back on by its parent's domains."""
    text = """
        [permissions.parent]
        extends = ":workspace"
        [permissions.parent.network]
        mode = "limited"
        domains = { "pypi.org" = "allow" }
        [permissions.child]
        extends = "parent"
        [permissions.child.network]
        enabled = false
        [permissions.grandchild]
        extends = "child"
        [permissions.grandchild.network.domains]
        "example.org" = "allow"
        """
    pol = load(tmp_path, text, profile="child")
    assert not pol.network.enabled and pol.network.domains == ()
    pol = load(tmp_path, text, profile="grandchild")  # a later profile may turn it on again
    assert pol.network.enabled and [d.pattern for d in pol.network.domains] == ["example.org"]


def test_sandbox_workspace_write_applies_to_the_workspace_builtin(tmp_path):
    """[sandbox_workspace_write] without sandbox_mode was ignored; Codex applies it to the
    built-in :workspace (the default), so /tmp stayed writable despite exclude_slash_tmp."""
    text = """
        [sandbox_workspace_write]
        exclude_slash_tmp = true
        network_access = true
        """
    pol = load(tmp_path, text)
    assert pol.filesystem.access("/tmp/x") is not FsAccess.WRITE and pol.network.enabled
    pol = load(tmp_path, 'default_permissions = ":read-only"\n' + textwrap.dedent(text))
    assert not pol.network.enabled  # another profile: not its settings


def test_codex_config_profile_sandbox_mode_wins(tmp_path):
    """Codex's ``profile = "x"`` with ``[profiles.x] sandbox_mode`` was ignored (the
    workspace was writable under a read-only config profile)."""
    pol = load(tmp_path, """
        profile = "safe"
        sandbox_mode = "workspace-write"
        [profiles.safe]
        model = "o3"
        sandbox_mode = "read-only"
        """)
    assert pol.filesystem.write_roots == ()
    assert "profiles" in str(err(tmp_path, 'profile = "nope"\n'))
    e = err(tmp_path, 'profile = "x"\n[profiles.x.sandbox_workspace_write]\nnetwork_access = true\n')
    assert "top level" in str(e)


def test_extends_depth_is_bounded(tmp_path):
    text = "".join(f'[permissions.p{i}]\nextends = "p{i + 1}"\n' for i in range(200)) + '[permissions.p200]\n'
    assert "longer than" in str(err(tmp_path, text, profile="p0"))


def test_every_writable_root_keeps_its_git_read_only(tmp_path):
    """Not only the workspace roots: a writable root named by a filesystem rule kept its
    .git writable (hooks, core.fsmonitor run when the user uses git there later), though the
    README says every writable root's stay read-only, and Codex's do."""
    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)
    (other / ".codex").mkdir()
    text = f'[permissions.p]\nextends = ":workspace"\n[permissions.p.filesystem]\n"{other}" = "write"\n'
    pol = load(tmp_path, text, profile="p")
    assert pol.filesystem.access(str(other / ".git" / "hooks" / "x")) is FsAccess.READ
    assert pol.filesystem.access(str(other / ".codex" / "config.toml")) is FsAccess.READ
    assert pol.filesystem.access(str(other / "src")) is FsAccess.WRITE
    assert pol.filesystem.rule_for(str(other / ".agents")).path == str(other)  # missing: no rule
    pol = load(tmp_path, text + f'"{other}/.git" = "write"\n', profile="p")  # named: as written
    assert pol.filesystem.access(str(other / ".git" / "x")) is FsAccess.WRITE


def test_a_flag_beats_the_config_at_one_path_however_spelled(tmp_path):
    """``--read ~/.ssh`` loosened a config ``"~/.ssh" = "deny"`` only when spelled alike
    (``~/.ssh/`` or the absolute path left the deny); ``-w DIR`` was ignored under a config
    ``DIR = "read"``."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    text = f'[permissions.p]\nextends = ":workspace"\n[permissions.p.filesystem]\n"~/.ssh" = "deny"\n"{tmp_path}/lib" = "read"\n'
    for spelled in ("~/.ssh", "~/.ssh/", str(home / ".ssh")):
        pol = load(tmp_path, text, profile="p", read=[spelled])
        assert pol.filesystem.access(str(home / ".ssh" / "id")) is FsAccess.READ, spelled
    pol = load(tmp_path, text, profile="p", writable=[str(tmp_path / "lib")])
    assert pol.filesystem.access(str(tmp_path / "lib" / "x")) is FsAccess.WRITE
    pol = load(tmp_path, text, profile="p", read=["~/.ssh"], deny=["~/.ssh/"])  # two flags: the stricter
    assert pol.filesystem.access(str(home / ".ssh" / "id")) is FsAccess.DENY


def test_workspace_roots_in_codex_table_form(tmp_path):
    """Codex writes ``workspace_roots = { PATH = true }``; the array form was the only one
    loaded (the table failed to load)."""
    for d in ("ws", "a", "b"):
        (tmp_path / d).mkdir()
    text = (f'[permissions.p]\nextends = ":workspace"\n'
            f'workspace_roots = {{ "{tmp_path}/a" = true, "{tmp_path}/b" = false }}\n')
    pol = load(tmp_path, text, profile="p", cwd=str(tmp_path / "ws"))
    assert pol.filesystem.access(str(tmp_path / "a" / "x")) is FsAccess.WRITE
    assert pol.filesystem.access(str(tmp_path / "a" / ".git" / "x")) is FsAccess.READ
    assert pol.filesystem.rule_for(str(tmp_path / "b" / "x")).path != str(tmp_path / "b")  # not a root
    e = err(tmp_path, f'[permissions.p]\nworkspace_roots = {{ "{tmp_path}/a" = "yes" }}\n', profile="p")
    assert "boolean" in str(e)


def test_a_protected_name_that_is_a_symlink_only_narrows(tmp_path):
    """A .git/.agents/.codex in a writable root is chosen by whoever can write the root (the
    command in an earlier run, another user in /tmp): as a symlink it put the read-only rule
    on its target, so a link to a denied secret, or to /, made that readable. Now the
    target gets the rule only where the policy lets the command write; a loop is skipped
    rather than failing every launch."""
    ws, tmp, secret, shared = (tmp_path / d for d in ("ws", "tmp", "secret", "shared"))
    for d in (ws, tmp, secret, shared / "real.git"):
        d.mkdir(parents=True)
    (secret / "id_rsa").write_text("k")
    (tmp / ".agents").symlink_to(secret / "id_rsa")
    (tmp / ".codex").symlink_to("/")
    (tmp / ".lsandbox").symlink_to(".lsandbox")  # a loop
    (ws / ".git").symlink_to(shared / "real.git")
    text = f"""
        [permissions.p]
        extends = ":workspace"
        [permissions.p.filesystem]
        "{tmp}" = "write"
        "{shared}" = "write"
        "{secret}" = "deny"
        """
    pol = load(tmp_path, text, profile="p", cwd=str(ws))
    assert pol.filesystem.access(str(secret / "id_rsa")) is FsAccess.DENY
    minimal = f'[permissions.m.filesystem]\n":minimal" = "read"\n"{tmp}" = "write"\n'
    assert load(tmp_path, minimal, profile="m", cwd=str(ws)).filesystem.rule_for("/") is None  # no `read /`
    pol = load(tmp_path, text, profile="p", cwd=str(ws))
    assert pol.filesystem.access(str(shared / "real.git" / "hooks" / "x")) is FsAccess.READ  # narrowed
    assert pol.filesystem.access(str(shared / "other")) is FsAccess.WRITE
    (ws / ".git").unlink()
    (ws / ".git").symlink_to(secret / "id_rsa")  # the same in the workspace root (an earlier run planted it)
    pol = load(tmp_path, text, profile="p", cwd=str(ws))
    assert pol.filesystem.access(str(secret / "id_rsa")) is FsAccess.DENY


def test_read_only_mode_has_no_network(tmp_path):
    """allowed_sandbox_modes = ["read-only"] let a profile that writes nothing but has the
    network (or every AF_UNIX socket: docker.sock) through; Codex's read-only has neither."""
    req = write(tmp_path, 'allowed_sandbox_modes = ["read-only"]\n', "req.toml")
    for net in ("enabled = true", "dangerously_allow_all_unix_sockets = true"):
        cfg = write(tmp_path, f'[permissions.p.filesystem]\n":root" = "read"\n[permissions.p.network]\n{net}\n')
        with pytest.raises(PolicyError, match="amounts to sandbox_mode 'workspace-write'"):
            load_policy(cfg, "p", cwd=str(tmp_path), requirements=req)


def test_a_link_the_command_could_make_never_widens(var_tmp_path):
    """A rule whose path resolves through a symlink in a place the command can write
    (made by an earlier run, or by another user in /tmp) only narrows: ``"dist" = "read"``
    with ``dist -> secret`` read a denied secret, a write rule through ``cache -> ~/.bashrc``
    made it writable, ``-w``/``--read`` of such a link beat a config deny, and a protected
    deny (``".git" = "deny"``) was opened below by a link in another writable root. A link
    in a place the command cannot write (the user's own) is followed as before."""
    home, ws, tmp, secret, data = (var_tmp_path / d for d in ("home", "ws", "tmp", "secret", "data"))
    for d in (home / ".ssh", ws / ".git" / "sub", tmp, secret, data):
        d.mkdir(parents=True)
    (secret / "id").write_text("k")
    (home / ".bashrc").write_text("")
    (ws / "dist").symlink_to(secret / "id")
    (ws / "cache").symlink_to(home / ".bashrc")
    (ws / "keys").symlink_to(home / ".ssh")
    (tmp / ".agents").symlink_to(ws / ".git" / "sub")
    (home / "mine").symlink_to(data)  # the user's own link, in a place the command cannot write
    text = f"""
        [permissions.p]
        extends = ":workspace"
        [permissions.p.filesystem]
        "{secret}" = "deny"
        "~/.ssh" = "deny"
        "{tmp}" = "write"
        "~/mine" = "write"
        ":workspace_roots" = {{ "." = "write", ".git" = "deny", "cache" = "read" }}
        """
    kw = {"profile": "p", "cwd": str(ws), "env": {"HOME": str(home)}}
    pol = load(var_tmp_path, text, **kw)
    fs = pol.filesystem
    assert fs.access(str(ws / ".git" / "sub" / "x")) is FsAccess.DENY  # not opened by tmp/.agents
    assert fs.access(str(home / ".bashrc")) is FsAccess.READ  # cache = read narrows nothing there: kept
    assert fs.access(str(data / "x")) is FsAccess.WRITE  # the user's own link
    widening = [(text.replace('"cache" = "read"', '"dist" = "read"'), {}),
                (text.replace('"cache" = "read"', '"cache" = "write"'), {}),
                (text, {"writable": [str(ws / "keys")]}),
                (text, {"read": [str(ws / "keys")]})]
    for t, extra in widening:
        with pytest.raises(PolicyError, match="resolves through a symlink"):
            load(var_tmp_path, t, **kw, **extra)


def test_socket_allows_count_against_read_only_and_allow_all(tmp_path):
    """--allow-unix-socket / reaches every pathname socket: it counted as read-only and got
    past dangerously_allow_all_unix_sockets = false."""
    modes = write(tmp_path, 'allowed_sandbox_modes = ["read-only"]\n', "modes.toml")
    allall = write(tmp_path, '[permissions.network]\ndangerously_allow_all_unix_sockets = false\n', "all.toml")
    kw = {"cwd": str(tmp_path), "search": False}
    for sock in ("/", "/run/docker.sock"):
        with pytest.raises(PolicyError, match="amounts to sandbox_mode 'workspace-write'"):
            load_policy(None, ":read-only", requirements=modes, allow_unix_sockets=[sock], **kw)
    with pytest.raises(PolicyError, match="dangerously_allow_all_unix_sockets"):
        load_policy(None, ":workspace", requirements=allall, allow_unix_sockets=["/"], **kw)
    load_policy(None, ":workspace", requirements=allall, allow_unix_sockets=["/run/docker.sock"], **kw)


def test_links_below_any_writable_rule_are_the_commands(var_tmp_path):
    """Second round (helper): a link counted as the user's when its directory's own rule was
    not write. The command can make ``build`` under a writable root before ``"build" =
    "read"`` means anything, and plant ``build/out -> ~/.config`` for ``"build/out" =
    "write"``; and a root given through the user's own link (``-w ~/proj``) made the links
    below it look trusted (``proj/dist -> secret`` read the secret)."""
    home, ws, proj, secret = (var_tmp_path / d for d in ("home", "ws", "proj", "secret"))
    for d in (home / ".config", ws / "build", proj, secret):
        d.mkdir(parents=True)
    (ws / "build" / "out").symlink_to(home / ".config")
    (home / "proj").symlink_to(proj)
    (proj / "dist").symlink_to(secret / "id")
    kw = {"profile": "p", "cwd": str(ws), "env": {"HOME": str(home)}}
    head = f'[permissions.p]\nextends = ":workspace"\n[permissions.p.filesystem]\n"{secret}" = "deny"\n'
    with pytest.raises(PolicyError, match="resolves through a symlink"):
        load(var_tmp_path, head + '":workspace_roots" = { "." = "write", "build" = "read", "build/out" = "write" }\n', **kw)
    with pytest.raises(PolicyError, match="resolves through a symlink"):
        load(var_tmp_path, head + '":workspace_roots" = { "." = "write", "dist" = "read" }\n', **kw,
             writable=[str(home / "proj")])
    pol = load(var_tmp_path, head, **kw, writable=[str(home / "proj")])  # the user's own link: followed
    assert pol.filesystem.access(str(proj / "x")) is FsAccess.WRITE


def test_protected_names_and_earlier_runs_links(var_tmp_path):
    """Last round (helper): `--deny ROOT` left ROOT/.git readable (protected names were put
    without a narrowing check), and a link an earlier run made under the default profile
    (in the workspace, /tmp, $TMPDIR) counted as the user's under a narrower profile
    (``docs -> ~/.ssh`` with ``"docs" = "read"`` read the key)."""
    home, ws = var_tmp_path / "home", var_tmp_path / "ws"
    (home / ".ssh").mkdir(parents=True)
    (ws / ".git").mkdir(parents=True)
    pol = load_policy(None, ":workspace", cwd=str(ws), search=False, requirements=None, deny=[str(ws)])
    assert pol.filesystem.access(str(ws / ".git" / "config")) is FsAccess.DENY
    (ws / "docs").symlink_to(home / ".ssh")
    text = '[permissions.n.filesystem]\n":minimal" = "read"\n"~/.ssh" = "deny"\n":workspace_roots" = { "." = "read", "docs" = "read" }\n'
    with pytest.raises(PolicyError, match="resolves through a symlink"):
        load(var_tmp_path, text, profile="n", cwd=str(ws), env={"HOME": str(home)})
