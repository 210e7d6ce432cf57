"""macOS backend on any OS: SBPL escaping, canonicalization, every field's form, the original
Codex bug (profile sockets never reached the SBPL), evaluator precedence, log parsing."""

from __future__ import annotations

import json

import pytest

import macos
from lsandbox import PolicyError, load_policy
from lsandbox.policy import (
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
)


def test_quote_escapes():
    assert macos.quote('a"b') == '"a\\"b"'
    assert macos.quote("a\\b") == '"a\\\\b"'
    assert macos.quote("a\nb") == '"a\\nb"'
    assert macos.quote("é") == '"é"'
    pol = Policy(FilesystemPolicy((FsRule('/x"\n(allow default)', FsAccess.WRITE),)))
    text = macos.render_sbpl(pol)
    assert "(allow default)" not in text.replace('\\n(allow default)', "")
    assert macos.evaluate(text, "file-write-data", '/x"\n(allow default)/f') == "allow"
    assert macos.evaluate(text, "file-write-data", "/elsewhere") == "deny"


def test_canonicalization():
    assert macos.macos_path("/tmp/a") == "/private/tmp/a"
    assert macos.macos_path("/var") == "/private/var"
    assert macos.macos_path("/etc/hosts") == "/private/etc/hosts"
    assert macos.macos_path("/tmpfoo") == "/tmpfoo"
    with pytest.raises(PolicyError, match=r"\.\."):
        macos.macos_path("/a/../b")


def test_every_field_has_its_form():
    pol = Policy(
        FilesystemPolicy((FsRule("/", FsAccess.READ), FsRule("/w", FsAccess.WRITE),
                          FsRule("/w/.git", FsAccess.READ), FsRule("/home/u/.ssh", FsAccess.DENY))),
        NetworkPolicy(True, (UnixSocketRule("/tmp/.X11-unix", SocketAccess.ALLOW),
                             UnixSocketRule("/tmp/.X11-unix/X9", SocketAccess.NONE)), True),
    )
    t = macos.render_sbpl(pol, socket_dir="/tmp/sockdir")
    for expected in ('(version 1)', '(deny default)', '(allow file-read* (subpath "/"))',
                     '(allow file-read* file-write* (subpath "/w"))', '(deny file-write* (subpath "/w/.git"))',
                     '(deny file-read* file-write* (subpath "/home/u/.ssh"))',
                     '(allow network-outbound (remote ip))',
                     '(allow network-outbound (remote unix-socket (subpath "/private/tmp/.X11-unix")))',
                     '(allow network-bind (local unix-socket (subpath "/private/tmp/.X11-unix")))',
                     '(deny network-outbound (remote unix-socket (subpath "/private/tmp/.X11-unix/X9")))',
                     '(allow network-outbound (remote unix-socket))',
                     '(allow network-outbound (remote unix-socket (subpath "/private/tmp/sockdir")))',
                     '(allow file-read* file-write* (literal "/dev/null"))'):
        assert expected in t, expected


def test_profile_and_flag_give_byte_identical_sbpl(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('default_permissions = "uds-test"\n[permissions.uds-test]\nextends = ":workspace"\n'
                   '[permissions.uds-test.network.unix_sockets]\n"/tmp/.X11-unix" = "allow"\n')
    a = load_policy(str(cfg), cwd=str(tmp_path), requirements=None)
    b = load_policy(None, ":workspace", cwd=str(tmp_path), requirements=None, search=False,
                    allow_unix_sockets=["/tmp/.X11-unix"])
    ta, tb = macos.render_sbpl(a), macos.render_sbpl(b)
    assert ta.split("\n", 1)[1] == tb.split("\n", 1)[1]  # only the profile-name comment differs
    assert "(remote unix-socket (subpath \"/private/tmp/.X11-unix\"))" in ta
    assert macos.evaluate(ta, "network-outbound", ("unix", "/private/tmp/.X11-unix/X0")) == "allow"


PREC = """
(version 1)
(deny default)
(allow file-read* (subpath "/a"))
(deny file-read* (subpath "/a/b"))
(allow file-read* (subpath "/a/b/c"))
(allow file-write*)
(deny file-write* (subpath "/x"))
(allow file-write-create (subpath "/x/y"))
(deny file-write* (subpath "/x/y"))
(allow network-outbound)
"""


@pytest.mark.parametrize("op,target,want", [
    ("file-read-data", "/a/f", "allow"),
    ("file-read-data", "/a/b/f", "deny"),         # later, more specific filtered rule wins
    ("file-read-data", "/a/b/c/f", "allow"),      # last match wins
    ("file-read-data", "/z", "deny"),             # nothing matched: default
    ("file-write-data", "/x/f", "deny"),          # an unfiltered allow does not override a filtered deny
    ("file-write-data", "/q", "allow"),           # only the unfiltered rule matches
    ("file-write-create", "/x/y/f", "allow"),     # specific operation beats file-write* whatever the order
    ("file-write-data", "/x/y/f", "deny"),
    ("network-outbound", ("unix", "/s"), "allow"),
])
def test_evaluator_precedence(op, target, want):
    assert macos.evaluate(PREC, op, target) == want


def test_log_parsing():
    line = json.dumps({"eventMessage": "Sandbox: python3(4242) deny(1) network-outbound /private/tmp/.X11-unix/X0"})
    assert macos.parse_log_line(line) == {"kind": "seatbelt", "process": "python3", "pid": 4242,
                                          "op": "network-outbound", "path": "/private/tmp/.X11-unix/X0",
                                          "verdict": "deny", "rule": "sandbox profile"}
    assert macos.parse_log_line(json.dumps({"eventMessage": "something else"})) is None
    assert macos.parse_log_line("not json") is None
