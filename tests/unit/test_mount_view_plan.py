"""Policy -> the mount view's plan (lsandbox.linux._mount_view.plan_view), without mounting."""

from __future__ import annotations

import os

from lsandbox.linux._mount_view import MASK, READ_ONLY, TMPFS, WRITE, plan_view
from lsandbox.policy import FilesystemPolicy, FsAccess, FsRule, Policy


def _policy(*rules: tuple[str, str]) -> Policy:
    return Policy(filesystem=FilesystemPolicy(tuple(FsRule(p, FsAccess(a)) for p, a in rules)))


def test_order_clones_carve_outs_and_masks(tmp_path):
    ws, sock = str(tmp_path / "ws"), str(tmp_path / "sock")
    for d in (ws, f"{ws}/.git", f"{ws}/secret", f"{ws}/.git/w", sock):
        os.makedirs(d, exist_ok=True)
    pol = _policy(("/", "read"), (ws, "write"), (f"{ws}/.git", "read"), (f"{ws}/.git/w", "write"),
                  (f"{ws}/secret", "deny"), (f"{ws}/missing", "deny"))
    v = plan_view(pol, sock, [f"{ws}/.git"], ["/dev/shm"] if os.path.isdir("/dev/shm") else [])
    steps = [s for s in v.steps if s[0] != TMPFS]
    assert steps == [(WRITE, sock), (WRITE, ws), (READ_ONLY, f"{ws}/.git"), (WRITE, f"{ws}/.git/w"),
                     (MASK, f"{ws}/secret")]  # parents first; a missing path has nothing to mount
    assert set(v.clones) == {ws, f"{ws}/.git/w", sock}  # cloned before / turns read-only
    assert v.readonly_root and v.nodev and v.proc and not v.proc_writable


def test_socket_dir_inside_a_write_root_is_not_cloned_twice(tmp_path):
    ws = str(tmp_path)
    os.mkdir(f"{ws}/sock")
    v = plan_view(_policy(("/", "read"), (ws, "write")), f"{ws}/sock", [], [])
    assert v.clones == (ws,)


def test_a_deny_holding_allowed_paths_is_named_not_masked(tmp_path):
    home = str(tmp_path)
    os.makedirs(f"{home}/ws")
    v = plan_view(_policy(("/", "read"), (home, "deny"), (f"{home}/ws", "write")), f"{home}/ws", [], [])
    assert (MASK, home) not in v.steps and (WRITE, f"{home}/ws") in v.steps
    assert any("not masked" in n and home in n for n in v.notes)


def test_writable_root_is_named(tmp_path):
    v = plan_view(_policy(("/", "write")), str(tmp_path), [], [])
    assert not v.readonly_root and not v.nodev and v.clones == ()
    assert any("/ is writable" in n for n in v.notes)


def test_masks_inside_proc_wait_for_the_fresh_procfs(tmp_path):
    v = plan_view(_policy(("/", "read"), ("/proc/sys", "deny")), str(tmp_path), [], [])
    assert v.proc and v.proc_masks == ("/proc/sys",) and (MASK, "/proc/sys") not in v.steps
    assert any("below /proc" in n for n in v.notes)
    v = plan_view(_policy(("/", "read"), ("/proc", "deny")), str(tmp_path), [], [])
    assert not v.proc and (MASK, "/proc") in v.steps  # no procfs over the mask


def test_classic_lists_mount_points(tmp_path, monkeypatch):
    monkeypatch.setenv("LSANDBOX_NO_MOUNT_SETATTR", "1")
    v = plan_view(_policy(("/", "read")), str(tmp_path), [], [])
    assert v.classic and "/" in v.mounts and "/proc" in v.mounts
    monkeypatch.delenv("LSANDBOX_NO_MOUNT_SETATTR")
    assert not plan_view(_policy(("/", "read")), str(tmp_path), [], []).classic
