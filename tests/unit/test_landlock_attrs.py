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
