"""macOS backend on any OS: SBPL escaping (hostile names and paths), canonicalization, every
field's form, each allowance group of the base policy, carve-outs that survive renames and
creation, the original Codex bug (profile sockets never reached the SBPL), the evaluator
(multi-filter rules, require-*, regex, precedence models), denial log parsing."""

from __future__ import annotations

import json
import os

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
from macos import _baseline
from macos._evaluator import PRECEDENCE_CASES, PRECEDENCE_PROFILE, SBPLSyntaxError, rules
from macos._runner import user_dirs
from macos._sbpl import Regex, comment

HOSTILE = 'p\n(allow default)'


def _forms(text: str) -> list:
    """Top-level forms of a profile as the evaluator parses them (comments dropped)."""
    return macos.parse(text)


def _ws() -> Policy:
    return Policy(FilesystemPolicy((FsRule("/", FsAccess.READ), FsRule("/w", FsAccess.WRITE),
                                    FsRule("/w/.git", FsAccess.READ), FsRule("/w/.codex", FsAccess.READ),
                                    FsRule("/home/u/.ssh", FsAccess.DENY))))


# --- escaping --------------------------------------------------------------------------------

def test_quote_escapes():
    assert macos.quote('a"b') == '"a\\"b"'
    assert macos.quote("a\\b") == '"a\\\\b"'
    assert macos.quote("a\nb") == '"a\\nb"'
    assert macos.quote("a\x01b\x7f") == '"a\\x01b\\x7f"'
    assert macos.quote("é") == '"é"'


@pytest.mark.parametrize("value", ['/x"\n(allow default)', '/x\\', '/x\\") (allow default) ("',
                                   "/x\r(allow default)", "/x\x00".replace("\x00", "\x1b"),
                                   '/x";(allow default)', "/x\u2028(allow default)"])
def test_no_path_breaks_out(value):
    """Every hostile path reads back as exactly itself: one rule, no extra form."""
    pol = Policy(FilesystemPolicy((FsRule(value, FsAccess.WRITE),)))
    text = macos.render_sbpl(pol)
    assert not any(f == [("sym", "allow"), ("sym", "default")] for f in _forms(text))
    assert macos.evaluate(text, "file-write-data", value + "/f") == "allow"
    assert macos.evaluate(text, "file-write-data", "/elsewhere") == "deny"
    assert macos.evaluate(text, "process-exec", "/bin/sh") == "allow"  # the text still parses


def test_hostile_profile_name_stays_a_comment():
    pol = Policy(FilesystemPolicy((FsRule("/", FsAccess.READ),)), name=HOSTILE)
    text = macos.render_sbpl(pol)
    assert "\n(allow default)" not in text
    assert text.splitlines()[0] == "; lsandbox policy p\\n(allow default)"
    assert not any(f == [("sym", "allow"), ("sym", "default")] for f in _forms(text))
    assert macos.evaluate(text, "file-write-data", "/x") == "deny"
    for bad in ("\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"):
        assert "\n" not in comment(f"a{bad}b") and bad not in comment(f"a{bad}b")


def test_regexes_are_fixed_patterns_only():
    with pytest.raises(ValueError):
        Regex("^/Users/.*")


def test_nul_and_dotdot_refused():
    with pytest.raises(PolicyError, match=r"\.\."):
        macos.macos_path("/a/../b")
    with pytest.raises(PolicyError, match="NUL"):
        macos.macos_path("/a\0b")


def test_canonicalization():
    assert macos.macos_path("/tmp/a") == "/private/tmp/a"
    assert macos.macos_path("/var") == "/private/var"
    assert macos.macos_path("/etc/hosts") == "/private/etc/hosts"
    assert macos.macos_path("/tmpfoo") == "/tmpfoo"


# --- the policy's own rules ------------------------------------------------------------------

def test_every_field_has_its_form():
    pol = Policy(
        FilesystemPolicy((FsRule("/", FsAccess.READ), FsRule("/w", FsAccess.WRITE),
                          FsRule("/w/.git", FsAccess.READ), FsRule("/home/u/.ssh", FsAccess.DENY))),
        NetworkPolicy(True, (UnixSocketRule("/tmp/.X11-unix", SocketAccess.ALLOW),
                             UnixSocketRule("/tmp/.X11-unix/X9", SocketAccess.NONE)), True),
    )
    t = macos.render_sbpl(pol, socket_dir="/tmp/sockdir")
    for expected in ('(version 1)', '(deny default)', '(allow file-read* file-read-metadata (subpath "/"))',
                     '(allow file-read* file-read-metadata file-write* (subpath "/w"))',
                     '(deny file-write* (literal "/w/.git") (subpath "/w/.git"))',
                     '(deny file-read* file-read-metadata file-write* (literal "/home/u/.ssh") (subpath "/home/u/.ssh"))',
                     '(allow network-outbound (remote ip))',
                     '(allow network-outbound (remote unix-socket (subpath "/private/tmp/.X11-unix")))',
                     '(allow network-bind (local unix-socket (subpath "/private/tmp/.X11-unix")))',
                     '(deny network-outbound (remote unix-socket (subpath "/private/tmp/.X11-unix/X9")))',
                     '(allow network-outbound (remote unix-socket))',
                     '(allow network-outbound (remote unix-socket (subpath "/private/tmp/sockdir")))'):
        assert expected in t, expected


def test_deny_rules_pair_literal_with_subpath():
    """Codex's finding: the protected directory itself must be named, or a missing one can be
    created. Every filesystem deny in the profile names the literal too."""
    _, rs = rules(macos.render_sbpl(_ws()))
    fs_denies = [r for r in rs if r.verdict == "deny" and any(o.startswith("file-") for o in r.ops)
                 and "file-write-unlink" not in r.ops]
    assert fs_denies
    for r in fs_denies:
        kinds = {(f[0][1], f[1][1]) for f in r.filters}
        for kind, path in list(kinds):
            if kind == "subpath":
                assert ("literal", path) in kinds, r


def test_missing_carve_out_cannot_be_created():
    t = macos.render_sbpl(_ws())
    assert macos.evaluate(t, "file-write-create", "/w/.codex") == "deny"
    assert macos.evaluate(t, "file-write-create", "/w/.codex/config.toml") == "deny"
    assert macos.evaluate(t, "file-write-create", "/w/.codexx") == "allow"


def test_carve_outs_survive_renames():
    """Every ancestor of a read-only or denied path is pinned with a file-write-unlink deny;
    siblings are not."""
    t = macos.render_sbpl(_ws(), socket_dir="/tmp/sockdir")
    for pinned in ("/w", "/home/u", "/home", "/", "/private/tmp/sockdir"):
        assert macos.evaluate_all(t, "file-write-unlink", pinned) == dict.fromkeys(
            (m.name for m in macos.MODELS), "deny"), pinned
    for free in ("/w/src", "/w/src/file", "/private/tmp/sockdir/s.sock"):
        assert set(macos.evaluate_all(t, "file-write-unlink", free).values()) == {"allow"}, free
    assert set(macos.evaluate_all(t, "file-write-unlink", "/w/.git").values()) == {"deny"}


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


def test_tag_on_every_deny():
    t = macos.render_sbpl(_ws(), context=macos.Context(tag="lsandbox-abc"))
    assert '(deny default (with message "lsandbox-abc"))' in t
    denies = [ln for ln in t.splitlines() if ln.startswith("(deny")]
    assert denies and all(ln.endswith('(with message "lsandbox-abc"))') for ln in denies)
    # a modifier is not a filter: the tagged deny still matches only its paths
    assert macos.evaluate(t, "file-read-data", "/home/u/.ssh/id") == "deny"
    assert macos.evaluate(t, "file-read-data", "/home/u/x") == "allow"


def test_user_cache_dir_follows_the_temp_dir():
    ctx = macos.Context(user_cache_dir="/private/var/folders/ab/cd/C", user_temp_dir="/private/var/folders/ab/cd/T")
    ws = Policy(FilesystemPolicy((FsRule("/", FsAccess.READ), FsRule("/private/var/folders/ab/cd/T", FsAccess.WRITE))))
    ro = Policy(FilesystemPolicy((FsRule("/", FsAccess.READ),)))
    assert macos.evaluate(macos.render_sbpl(ws, context=ctx), "file-write-create",
                          "/private/var/folders/ab/cd/C/clang/m.pcm") == "allow"
    assert macos.evaluate(macos.render_sbpl(ro, context=ctx), "file-write-create",
                          "/private/var/folders/ab/cd/C/clang/m.pcm") == "deny"


def test_user_dirs():
    assert user_dirs({"TMPDIR": "/tmp/"}) == (None, None)
    temp, _cache = user_dirs({"TMPDIR": "/var/folders/zz/abc123/T/"})
    assert temp is not None and temp.endswith("/zz/abc123/T")


# --- the base policy, group by group ---------------------------------------------------------

def _base() -> str:
    return macos.render_sbpl(Policy(FilesystemPolicy((FsRule("/", FsAccess.READ),))))


def test_groups_are_in_the_profile_in_order():
    t = _base()
    names = [g.name for g in _baseline.HEAD] + ["devices", "terminals"]
    pos = [t.index(f"; [{n}]") for n in names]
    assert pos == sorted(pos)
    assert t.index("; [filesystem]") < t.index("; [devices]")  # devices win over a policy's /dev rule


@pytest.mark.parametrize("op,target", [
    ("process-exec", "/bin/sh"), ("process-fork", None),
    ("sysctl-read", ("sysctl", "hw.ncpu")), ("sysctl-read", ("sysctl", "hw.optional.arm.FEAT_SHA3")),
    ("sysctl-read", ("sysctl", "kern.osproductversion")), ("sysctl-read", ("sysctl", "kern.proc.pid.123")),
    ("sysctl-write", ("sysctl", "kern.grade_cputype")), ("sysctl-write", ("sysctl", "kern.tcsm_enable")),
    ("mach-host-port", None), ("ipc-posix-sem", None), ("ipc-posix-shm-read-data", None),
    ("user-preference-read", None), ("mach-lookup", ("mach", "com.apple.cfprefsd.daemon")),
    ("mach-lookup", ("mach", "com.apple.system.opendirectoryd.libinfo")),
    ("mach-lookup", ("mach", "com.apple.system.opendirectoryd.membership")),
    ("mach-lookup", ("mach", "com.apple.system.notification_center")),
    ("mach-lookup", ("mach", "com.apple.logd")), ("mach-lookup", ("mach", "com.apple.PowerManagement.control")),
    ("mach-lookup", ("mach", "com.apple.bsd.dirhelper")),
    ("network-outbound", ("unix", "/private/var/run/syslog")),
    ("system-socket", ("socket-domain", "AF_UNIX")),
])
def test_base_allows(op, target):
    assert set(macos.evaluate_all(_base(), op, target).values()) == {"allow"}, (op, target)


@pytest.mark.parametrize("op,target", [
    ("sysctl-read", ("sysctl", "kern.proc.all")), ("sysctl-write", ("sysctl", "kern.hostname")),
    ("mach-lookup", ("mach", "com.apple.securityd.xpc")),  # the keychain: see docs/macos.md
    ("mach-lookup", ("mach", "com.apple.SecurityServer")),  # only with the network
    ("mach-lookup", ("mach", "com.apple.trustd.agent")),
    ("mach-lookup", ("mach", "com.apple.SystemConfiguration.DNSConfiguration")),
    ("network-outbound", ("unix", "/private/var/run/mDNSResponder")),  # name lookup is network
    ("network-outbound", ("ip", "1.1.1.1:443")), ("system-socket", ("socket-domain", "AF_INET")),
    ("file-write-data", "/dev/ttys004"),  # another session's terminal
    ("file-read-data", "/dev/ttys004"),
    ("process-info-pidinfo", None),  # only with (target same-sandbox), which the evaluator never matches
])
def test_base_denies(op, target):
    assert set(macos.evaluate_all(_base(), op, target).values()) == {"deny"}, (op, target)


@pytest.mark.parametrize("path,ops", [
    ("/dev/null", ("file-read-data", "file-write-data", "file-ioctl")),
    ("/dev/zero", ("file-read-data",)), ("/dev/urandom", ("file-read-data",)),
    ("/dev/dtracehelper", ("file-write-data", "file-ioctl")),
    ("/dev/fd/3", ("file-read-data", "file-write-data")), ("/dev/stdout", ("file-write-data",)),
    ("/dev/tty", ("file-read-data", "file-write-data", "file-ioctl")),
    ("/dev/ptmx", ("file-read-data", "file-write-data", "file-ioctl")),
    ("/dev/disk0", ("file-read-metadata",)),
])
def test_devices(path, ops):
    """Even under a policy that makes /dev read-only (``:minimal``)."""
    pol = Policy(FilesystemPolicy((FsRule("/dev", FsAccess.READ), FsRule("/usr", FsAccess.READ))))
    t = macos.render_sbpl(pol)
    for op in ops:
        assert set(macos.evaluate_all(t, op, path).values()) == {"allow"}, (path, op)
    assert set(macos.evaluate_all(t, "file-write-data", "/dev/disk0").values()) == {"deny"}
    assert '"/dev/pts' not in t and '"/dev/full' not in t


def test_terminals():
    t = macos.render_sbpl(_ws(), context=macos.Context(own_ttys=("/dev/ttys003",)))
    pty = ("com.apple.sandbox.pty",)
    for op in ("file-read-data", "file-write-data", "file-ioctl"):
        assert macos.evaluate(t, op, "/dev/ttys003") == "allow"  # the caller's own terminal
        assert macos.evaluate(t, op, "/dev/ttys011", extensions=pty) == "allow"  # openpty() in the sandbox
        assert macos.evaluate(t, op, "/dev/ttys011") == "deny"  # someone else's
    assert macos.evaluate(t, "pseudo-tty", None) == "allow"


def test_stdio_files(tmp_path):
    from macos._runner import own_files

    t = macos.render_sbpl(_ws(), context=macos.Context(own_files=(("/w2/out.log", True), ("/w2/in.txt", False))))
    assert set(macos.evaluate_all(t, "file-write-data", "/w2/out.log").values()) == {"allow"}
    assert set(macos.evaluate_all(t, "file-write-data", "/w2/in.txt").values()) == {"deny"}
    assert set(macos.evaluate_all(t, "file-read-data", "/w2/in.txt").values()) == {"allow"}
    assert set(macos.evaluate_all(t, "file-write-create", "/w2/other").values()) == {"deny"}
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    rfd = os.open(path, os.O_RDONLY)
    r, w = os.pipe()
    try:
        assert (str(path), True) in own_files([fd])  # pytest's captured stdio may be files too
        assert (str(path), False) in own_files([rfd])
        assert not [p for p, _ in own_files([r, w]) if p.startswith("pipe:")]
    finally:
        for x in (fd, rfd, r, w):
            os.close(x)


def test_network_groups():
    off = _base()
    on = macos.render_sbpl(Policy(FilesystemPolicy((FsRule("/", FsAccess.READ),)), NetworkPolicy(True)))
    checks = [("network-outbound", ("ip", "93.184.216.34:443")), ("network-bind", ("ip", "*:8080")),
              ("network-inbound", ("ip", "*:8080")), ("system-socket", ("socket-domain", "AF_INET")),
              ("network-outbound", ("unix", "/private/var/run/mDNSResponder")),
              ("mach-lookup", ("mach", "com.apple.SystemConfiguration.DNSConfiguration")),
              ("mach-lookup", ("mach", "com.apple.SystemConfiguration.configd")),
              ("mach-lookup", ("mach", "com.apple.trustd.agent")), ("mach-lookup", ("mach", "com.apple.trustd")),
              ("mach-lookup", ("mach", "com.apple.ocspd")), ("mach-lookup", ("mach", "com.apple.SecurityServer"))]
    for op, target in checks:
        assert set(macos.evaluate_all(on, op, target).values()) == {"allow"}, (op, target)
        assert set(macos.evaluate_all(off, op, target).values()) == {"deny"}, (op, target)
    # the network does not open AF_UNIX sockets beyond mDNSResponder
    assert macos.evaluate(on, "network-outbound", ("unix", "/private/var/run/docker.sock")) == "deny"


def test_a_policy_can_close_name_resolution():
    pol = Policy(FilesystemPolicy((FsRule("/", FsAccess.READ),)),
                 NetworkPolicy(True, (UnixSocketRule("/var/run/mDNSResponder", SocketAccess.NONE),)))
    t = macos.render_sbpl(pol)
    assert set(macos.evaluate_all(t, "network-outbound", ("unix", "/private/var/run/mDNSResponder")).values()) == {"deny"}


# --- the evaluator ---------------------------------------------------------------------------

MULTI = """
(version 1)
(deny default)
(allow file-read* (subpath "/a") (literal "/b") (regex #"^/c/[0-9]+$"))
(allow file-write* (require-all (subpath "/w") (require-not (subpath "/w/ro")) (require-not (literal "/w/lit"))))
(allow file-ioctl (require-any (literal "/d1") (literal "/d2")))
(deny file-read* (path "/a/no") (with message "t"))
"""


@pytest.mark.parametrize("op,target,want", [
    ("file-read-data", "/a/x", "allow"), ("file-read-data", "/b", "allow"),  # second filter OR'd
    ("file-read-data", "/b/x", "deny"), ("file-read-data", "/c/12", "allow"),  # third: a regex
    ("file-read-data", "/c/1x", "deny"), ("file-read-data", "/a/no", "deny"),
    ("file-write-create", "/w/f", "allow"), ("file-write-create", "/w/ro/f", "deny"),
    ("file-write-create", "/w/lit", "deny"), ("file-ioctl", "/d2", "allow"), ("file-ioctl", "/d3", "deny"),
])
def test_evaluator_filters(op, target, want):
    assert set(macos.evaluate_all(MULTI, op, target).values()) == {want}


def test_evaluator_refuses_what_it_does_not_know():
    with pytest.raises(SBPLSyntaxError):
        macos.evaluate('(version 1)(allow file-read* (vnode-kind "x"))', "file-read-data", "/x")
    with pytest.raises(SBPLSyntaxError):
        macos.parse('(allow file-read* (subpath "/x)')


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
    ("file-write-data", "/x/f", "deny"),          # filtered deny after an unfiltered allow
    ("file-write-data", "/q", "allow"),           # only the unfiltered rule matches
    ("file-write-data", "/x/y/f", "deny"),
    ("network-outbound", ("unix", "/s"), "allow"),
])
def test_evaluator_precedence_agreed(op, target, want):
    """Cases every model agrees on."""
    assert set(macos.evaluate_all(PREC, op, target).values()) == {want}


def test_models_differ_where_they_should():
    got = macos.evaluate_all(PREC, "file-write-create", "/x/y/f")
    assert got["specific-first"] == got["reported"] == "allow"  # file-write-create beats file-write*
    assert got["last-match"] == got["unfiltered-yields"] == "deny"
    got = macos.evaluate_all("(version 1)(deny file-write* (subpath \"/x\"))(allow file-write*)",
                             "file-write-data", "/x/f")
    assert got["last-match"] == got["specific-first"] == "allow"
    assert got["unfiltered-yields"] == got["reported"] == "deny"


def test_precedence_profile_separates_the_models():
    """The profile the macOS job measures must tell every pair of models apart."""
    root = "/private/var/tmp/p"
    text = PRECEDENCE_PROFILE.replace("@", root)
    answers = {m.name: tuple(macos.evaluate(text, op, p.replace("@", root), model=m) for op, p in PRECEDENCE_CASES)
               for m in macos.MODELS}
    assert len(set(answers.values())) == len(macos.MODELS), answers


# --- denial log ------------------------------------------------------------------------------

def test_log_parsing():
    line = json.dumps({"eventMessage": "Sandbox: python3(4242) deny(1) network-outbound /private/tmp/.X11-unix/X0"})
    assert macos.parse_log_line(line) == {"kind": "seatbelt", "process": "python3", "pid": 4242,
                                          "op": "network-outbound", "path": "/private/tmp/.X11-unix/X0",
                                          "verdict": "deny", "rule": "sandbox profile"}
    assert macos.parse_log_line(json.dumps({"eventMessage": "something else"})) is None
    assert macos.parse_log_line("not json") is None
    assert macos.parse_log_line("[1, 2]") is None


def test_log_attribution_by_tag():
    tag = "lsandbox-0123abcd"
    ours = json.dumps({"eventMessage": f"Sandbox: cat(77) deny(1) file-read-data /Users/u/.ssh/id\n{tag}"})
    same_line = json.dumps({"eventMessage": f"Sandbox: cat(77) deny(1) file-read-data /Users/u/.ssh/id {tag}"})
    other = json.dumps({"eventMessage": "Sandbox: Slack(90) deny(1) file-read-data /Users/u/.ssh/id\nlsandbox-ffff"})
    assert macos.parse_log_line(ours, tag)["path"] == "/Users/u/.ssh/id"
    assert macos.parse_log_line(same_line, tag)["path"] == "/Users/u/.ssh/id"
    assert macos.parse_log_line(other, tag) is None
    assert macos.parse_log_line(json.dumps({"eventMessage": f"{tag} end"}), tag) is None
    untagged = json.dumps({"eventMessage": "Sandbox: sh(77) deny(1) file-write-create /private/var/tmp/x"})
    assert macos.parse_log_line(untagged, tag) is None
    assert macos.parse_log_line(untagged, tag, frozenset({77}))["path"] == "/private/var/tmp/x"


def test_runner_pieces(tmp_path):
    from macos._runner import _make_socket_dir, _predicate, _remove_socket_dir, sandbox_exec_argv

    assert sandbox_exec_argv("(version 1)", ["-p", "x"]) == ["/usr/bin/sandbox-exec", "-p", "(version 1)", "--", "-p", "x"]
    assert 'eventMessage CONTAINS "lsandbox-ab"' in _predicate("lsandbox-ab")
    d, made = _make_socket_dir()
    open(os.path.join(d, "s"), "w").close()
    _remove_socket_dir(d, made)
    assert not os.path.exists(d)
    # a directory put in its place (the profile forbids the command to, the check is a second
    # line) is left alone
    d, made = _make_socket_dir()
    os.rename(d, d + ".moved")
    os.mkdir(d)
    _remove_socket_dir(d, made)
    assert os.path.isdir(d)
    os.rmdir(d)
    os.rmdir(d + ".moved")


def test_explain_macos(tmp_path, monkeypatch, capsys):
    import lsandbox.cli

    monkeypatch.chdir(tmp_path)
    assert lsandbox.cli.main(["explain", "--backend", "macos", "-p", ":workspace", "--network"]) == 0
    out = capsys.readouterr().out
    devices = next(ln for ln in out.splitlines() if ln.startswith("  rw "))
    assert "/dev/pts" not in devices and "/dev/full" not in devices and "/dev/dtracehelper" in devices
    assert "mDNSResponder" in out and "cannot be renamed" in out
    assert lsandbox.cli.main(["explain", "--backend", "macos", "-p", ":workspace", "--format", "sbpl"]) == 0
    assert "(deny default)" in capsys.readouterr().out


#: One query each group exists to answer; a new group without an entry here fails the test.
GROUP_PROBES = {
    "process": ("process-fork", None),
    "sysctl": ("sysctl-read", ("sysctl", "hw.memsize")),
    "mach-host": ("mach-host-port", None),
    "posix-ipc": ("ipc-posix-sem", None),
    "preferences": ("user-preference-read", None),
    "system-services": ("mach-lookup", ("mach", "com.apple.system.opendirectoryd.libinfo")),
    "unix-socket-create": ("system-socket", ("socket-domain", "AF_UNIX")),
    "devices": ("file-write-data", "/dev/null"),
    "terminals": ("file-ioctl", "/dev/ptmx"),
    "stdio-files": ("file-write-data", "/w2/out.log"),
    "ip": ("network-outbound", ("ip", "140.82.112.3:443")),
    "dns": ("network-outbound", ("unix", "/private/var/run/mDNSResponder")),
    "tls": ("mach-lookup", ("mach", "com.apple.trustd.agent")),
}


def test_every_group_is_pinned():
    groups = [*_baseline.HEAD, _baseline.devices(), _baseline.terminals(),
              _baseline.stdio_files((("/w2/out.log", True),)), *_baseline.network()]
    assert {g.name for g in groups} == set(GROUP_PROBES)
    net_groups = {g.name for g in _baseline.network()}
    ctx = macos.Context(own_files=(("/w2/out.log", True),))
    profiles = {on: macos.render_sbpl(Policy(FilesystemPolicy((FsRule("/", FsAccess.READ),)), NetworkPolicy(on)),
                                      context=ctx) for on in (False, True)}
    for g in groups:
        t = profiles[g.name in net_groups]
        assert f"; [{g.name}]" in t
        op, target = GROUP_PROBES[g.name]
        assert set(macos.evaluate_all(t, op, target).values()) == {"allow"}, g.name
        # and without the group's rules the answer is "deny"
        lines = {r.render() for r in g.rules}
        stripped = "\n".join(ln for ln in t.splitlines() if ln not in lines)
        assert set(macos.evaluate_all(stripped, op, target).values()) == {"deny"}, g.name


def test_grants_follow_the_commands_stdio_not_ours(tmp_path):
    """The profile grants the files the command's standard descriptors are, as the API gives
    them: not the caller's own stdout (a service logging to a file that runs a command with
    ``capture_output``: the sandbox could rewrite the service's log by name), and a file given
    as the command's stdout is granted."""
    from macos._runner import context

    ours, given = tmp_path / "service.log", tmp_path / "given.out"
    saved = os.dup(1)
    fd = os.open(ours, os.O_WRONLY | os.O_CREAT)
    gfd = os.open(given, os.O_WRONLY | os.O_CREAT)
    r, w = os.pipe()
    try:
        os.dup2(fd, 1)  # the caller's own stdout is a file
        piped = [p for p, _ in context({}, None, (), (r, w, w)).own_files]
        to_file = dict(context({}, None, (), (r, gfd, w)).own_files)
    finally:
        os.dup2(saved, 1)
        for x in (saved, fd, gfd, r, w):
            os.close(x)
    assert str(ours) not in piped
    assert to_file.get(str(given)) is True and str(ours) not in to_file


def test_keychain_files_unreadable_unless_named():
    """With the network on the profile grants com.apple.SecurityServer (TLS trust), which
    hands a reader of the keychain file the items whose access list trusts the tool: so the
    user's ``Library/Keychains`` is unreadable in every profile (and its parents cannot be
    moved), unless the policy names it."""
    ctx = macos.Context(home="/Users/u")
    ws = Policy(FilesystemPolicy((FsRule("/", FsAccess.READ), FsRule("/Users/u", FsAccess.WRITE))),
                NetworkPolicy(enabled=True))
    t = macos.render_sbpl(ws, context=ctx)
    kc = "/Users/u/Library/Keychains/login.keychain-db"
    assert set(macos.evaluate_all(t, "file-read-data", kc).values()) == {"deny"}
    assert set(macos.evaluate_all(t, "file-write-create", "/Users/u/Library/Keychains/x").values()) == {"deny"}
    assert set(macos.evaluate_all(t, "file-write-unlink", "/Users/u/Library").values()) == {"deny"}
    assert set(macos.evaluate_all(t, "file-read-data", "/Users/u/Library/Preferences/a.plist").values()) == {"allow"}
    assert set(macos.evaluate_all(t, "mach-lookup", ("mach", "com.apple.SecurityServer")).values()) == {"allow"}
    named = Policy(FilesystemPolicy((*ws.filesystem.rules, FsRule("/Users/u/Library/Keychains", FsAccess.READ))))
    t = macos.render_sbpl(named, context=ctx)
    assert set(macos.evaluate_all(t, "file-read-data", kc).values()) == {"allow"}
    assert "Keychains" not in macos.render_sbpl(ws)  # no home known (explain, the parity corpus)
    inside = Policy(FilesystemPolicy((*ws.filesystem.rules, FsRule("/Users/u/Library/Keychains/x", FsAccess.DENY))))
    t = macos.render_sbpl(inside, context=ctx)  # a rule inside decides its own path only
    assert set(macos.evaluate_all(t, "file-read-data", kc).values()) == {"deny"}
