"""Ruleset attributes per ABI, without applying them (ABI 8 and 9 cannot be enforced here)."""

from __future__ import annotations

import os

import landlock as ll


def test_rights_pinned_per_abi():
    assert ll.AccessFs.from_all(1) == ll.AccessFs(0x1FFF)
    assert ll.AccessFs.from_all(2) & ll.AccessFs.REFER
    assert not ll.AccessFs.from_all(2) & ll.AccessFs.TRUNCATE
    assert ll.AccessFs.from_all(5) & ll.AccessFs.IOCTL_DEV
    assert ll.AccessFs.from_all(8) == ll.AccessFs.from_all(5)
    assert ll.AccessFs.from_all(9) & ll.AccessFs.RESOLVE_UNIX
    assert ll.AccessNet.from_all(3) == 0 and ll.AccessNet.from_all(4) == 3
    assert ll.Scope.from_all(5) == 0 and ll.Scope.from_all(6) == 3
    assert ll.RestrictFlags.from_all(7) == 7 and ll.RestrictFlags.from_all(8) & ll.RestrictFlags.TSYNC


def test_attr_for_abi_8_and_9(monkeypatch):
    monkeypatch.setattr(ll._abi, "_cached", 9)  # a kernel with ABI 9: only the attr is built
    rs = ll.Ruleset(handled_fs=ll.AccessFs.from_all(9), handled_net=ll.AccessNet.from_all(9),
                    scoped=ll.Scope.from_all(9))
    assert rs.attr() == (0x1FFFF, 3, 3, 24)
    rs8 = ll.Ruleset(handled_fs=ll.AccessFs.from_all(9), max_abi=8)
    assert rs8.attr()[0] == 0xFFFF and rs8.dropped_fs == ll.AccessFs.RESOLVE_UNIX
    assert ll.attr_size(3) == 8 and ll.attr_size(4) == 16


def test_env_clamp(monkeypatch):
    monkeypatch.setenv("LANDLOCK_MAX_ABI", "3")
    assert ll.abi_version() == min(3, ll.kernel_abi())
    assert ll.Ruleset(handled_fs=ll.AccessFs.from_all(7)).dropped_fs == (
        ll.AccessFs.IOCTL_DEV if ll.kernel_abi() >= 3 else ll.Ruleset(handled_fs=ll.AccessFs.from_all(7)).dropped_fs)


def test_refer_on_abi_1_is_a_note_not_a_drop():
    rs = ll.Ruleset(handled_fs=ll.AccessFs.from_all(2), max_abi=1)
    assert rs.dropped_fs == 0 and any("REFER" in n for n in rs.notes)


def test_plan_splits_only_where_needed(tmp_path):
    read = ll.AccessFs.from_read(7)
    write = read | ll.AccessFs.from_write(7)
    w = tmp_path / "w"
    for d in ("a", "b", ".git"):
        (w / d).mkdir(parents=True)
    (w / "f").write_text("x")
    (w / "link").symlink_to("/etc")
    plan = dict(ll.plan_path_rules({str(w): write, str(w / ".git"): read}))
    assert plan[str(w)] == read  # the split dir keeps only what every descendant has
    assert plan[str(w / "a")] == write and plan[str(w / "f")] == write
    assert plan[str(w / ".git")] == read
    assert str(w / "link") not in plan  # symlinks get no rule
    plain = ll.plan_path_rules({str(w): write, str(w / "a"): write})
    assert plain == [(str(w), write), (str(w / "a"), write)]
    deny = dict(ll.plan_path_rules({str(tmp_path): read, str(w / "a"): ll.AccessFs(0)}))
    assert deny[str(tmp_path)] == ll.AccessFs.READ_DIR and deny[str(w)] == ll.AccessFs.READ_DIR
    assert str(w / "a") not in deny and deny[str(w / "b")] == read


def test_plan_refuses_huge_dirs(tmp_path):
    for i in range(50):
        (tmp_path / f"e{i}").mkdir()
    try:
        ll.plan_path_rules({str(tmp_path): ll.AccessFs.READ_FILE, str(tmp_path / "e1"): ll.AccessFs(0)},
                           max_entries=10)
    except ll.PlanError as e:
        assert "too many" in str(e)
    else:
        raise AssertionError("no PlanError")
    assert os.path.isdir(tmp_path)


def test_the_uapi_bits():
    """The numbers both layers share (``_rights``), as ``include/uapi/linux/landlock.h`` has them."""
    fs = ["EXECUTE", "WRITE_FILE", "READ_FILE", "READ_DIR", "REMOVE_DIR", "REMOVE_FILE", "MAKE_CHAR",
          "MAKE_DIR", "MAKE_REG", "MAKE_SOCK", "MAKE_FIFO", "MAKE_BLOCK", "MAKE_SYM", "REFER", "TRUNCATE",
          "IOCTL_DEV", "RESOLVE_UNIX"]
    assert [(m.name, m.value) for m in ll.AccessFs] == [(n, 1 << i) for i, n in enumerate(fs)]
    assert [getattr(ll, f"FS_{n}") for n in fs] == [1 << i for i in range(len(fs))]
    net = ["BIND_TCP", "CONNECT_TCP", "BIND_UDP", "CONNECT_SEND_UDP"]
    assert [(m.name, m.value) for m in ll.AccessNet] == [(n, 1 << i) for i, n in enumerate(net)]
    assert [(m.name, m.value) for m in ll.Scope] == [("ABSTRACT_UNIX_SOCKET", 1), ("SIGNAL", 2)]
    flags = ["LOG_SAME_EXEC_OFF", "LOG_NEW_EXEC_ON", "LOG_SUBDOMAINS_OFF", "TSYNC"]
    assert [(m.name, m.value) for m in ll.RestrictFlags] == [(n, 1 << i) for i, n in enumerate(flags)]
    assert [ll.since_abi(m) for m in ll.AccessFs] == [1] * 13 + [2, 3, 5, 9]
    assert [ll.since_abi(m) for m in ll.AccessNet] == [4, 4, 10, 10]


def test_the_int_layer_is_the_flag_layer():
    for abi in range(ll.LATEST_ABI + 2):
        assert ll.fs_all(abi) == ll.AccessFs.from_all(abi)
        assert ll.fs_write(abi) == ll.AccessFs.from_write(abi)
        assert ll.net_all(abi) == ll.AccessNet.from_all(abi)
        assert ll.scope_all(abi) == ll.Scope.from_all(abi)
        assert ll.restrict_flags_all(abi) == ll.RestrictFlags.from_all(abi)
    assert ll.FS_READ == ll.AccessFs.from_read(7) and ll.FS_FILE_RIGHTS == ll.AccessFs.file_rights()


def test_raw_ruleset_is_what_ruleset_applies(monkeypatch, tmp_path):
    """The plan's RawRuleset (ints) holds what a Ruleset of the same rights would pass."""
    monkeypatch.setattr(ll._abi, "_cached", 9)
    for abi in (1, 3, 5, 6, 9):
        rs = ll.Ruleset(handled_fs=ll.AccessFs.from_all(9), handled_net=ll.AccessNet.from_all(9),
                        scoped=ll.Scope.from_all(9), max_abi=abi)
        raw = ll.RawRuleset(abi, ll.fs_all(9), ll.net_all(9), ll.scope_all(9))
        assert rs.attr() == raw.attr()
        write = ll.AccessFs.from_read(9) | ll.AccessFs.from_write(9)
        rs.add_path(str(tmp_path), write).add_net_port(443, ll.AccessNet.CONNECT_TCP)
        raw.add_path(str(tmp_path), int(write)).add_net_port(443, ll.NET_CONNECT_TCP)
        assert rs._raw.rules == raw.rules and rs._raw.ports == raw.ports
        assert raw.rules[0][2] == int(write) & ll.FS_FILE_RIGHTS & raw.handled_fs
    assert ll.plan_raw_path_rules({str(tmp_path): 13}) == [(str(tmp_path), 13)]


def test_the_int_layer_creates_no_enum():
    """A launcher builds and applies its ruleset from ints: importing the package, asking the
    ABI, planning rules and building a RawRuleset create no enum class (``enum`` is not even
    imported), and seccomp_bpf's kernel interface and tables do not load its rule model."""
    import subprocess
    import sys

    code = ("import sys, landlock as ll, seccomp_bpf as sb\n"
            "ll.abi_version(); ll.plan_raw_path_rules({'/': ll.FS_READ})\n"
            "ll.RawRuleset(ll.abi_version(), ll.fs_all(7)).add_path('/', ll.FS_READ)\n"
            "sb.install_filter; sb.syscall_number('read'); sb.FLAG_NEW_LISTENER; sb.RET_USER_NOTIF\n"
            "print(sorted(m for m in sys.modules if m == 'enum' or m.startswith(('landlock.', 'seccomp_bpf.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out)  # noqa: S307 - a list of str printed by our own child
    assert "enum" not in loaded, loaded
    assert not {"landlock._access", "landlock._ruleset", "seccomp_bpf._rules", "seccomp_bpf._insn"} & set(loaded)
