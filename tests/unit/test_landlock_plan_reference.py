"""``landlock.plan_raw_path_rules`` against a plain reference implementation.

The planner groups the rules below a directory by the entry they are under, in one pass (it
runs on every launch); the reference below is the definition, written for clarity: each
directory entry looks at every rule below. On random trees (directories, files, symlinks)
and random rules (on existing and missing paths), both give the same set of rules."""

from __future__ import annotations

import os
import stat
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import landlock as ll
from landlock._rights import FS_READ_DIR


def _within(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def reference(rules: dict[str, int]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    paths = sorted(rules)
    for top in [p for p in paths if not any(q != p and _within(p, q) for q in paths)]:
        _emit(top, rules[top], {p: rules[p] for p in paths if p != top and _within(p, top)}, out)
    return out


def _emit(path: str, rights: int, below: dict[str, int], out: list) -> None:
    if all((r & rights) == rights for r in below.values()):
        if rights:
            out.append((path, rights))
        for n in [p for p in below if not any(q != p and _within(p, q) for q in below)]:
            _emit(n, below[n], {p: r for p, r in below.items() if p != n and _within(p, n)}, out)
        return
    inter = rights
    for r in below.values():
        inter &= r
    own = inter | (rights & FS_READ_DIR)
    try:
        st_ = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st_.st_mode):
        if inter:
            out.append((path, inter))
        return
    if own:
        out.append((path, own))
    for name in sorted(os.listdir(path)):
        child = path.rstrip("/") + "/" + name
        sub = {p: r for p, r in below.items() if _within(p, child)}
        if not sub:
            try:
                if stat.S_ISLNK(os.lstat(child).st_mode):
                    continue
            except FileNotFoundError:
                continue
            if rights & ~own:
                out.append((child, rights))
            continue
        _emit(child, sub.pop(child, rights), sub, out)


NAMES = ["a", "a-b", "a.b", "b", "c"]
RIGHTS = [0, ll.FS_READ_FILE, ll.FS_READ_DIR, ll.FS_READ_FILE | ll.FS_WRITE_FILE, 0b1101, 0b1001, 0b1111]
rel_paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
kinds = st.sampled_from(["dir", "file", "link"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=st.dictionaries(rel_paths, kinds, max_size=12),
       rules=st.dictionaries(st.one_of(st.just(""), rel_paths), st.sampled_from(RIGHTS), min_size=1, max_size=6))
def test_planner_matches_the_reference(tree, rules):
    with tempfile.TemporaryDirectory() as root:
        for rel in sorted(tree):
            path = os.path.join(root, rel)
            parent = os.path.dirname(path)
            if not os.path.isdir(parent) or os.path.lexists(path):
                continue  # under a file or a symlink, or made already as a parent
            if tree[rel] == "dir":
                os.mkdir(path)
            elif tree[rel] == "file":
                open(path, "w").close()
            else:
                os.symlink(root, path)
        full = {(os.path.join(root, r) if r else root): v for r, v in rules.items()}
        assert _outcome(ll.plan_raw_path_rules, full) == _outcome(reference, full)


def _outcome(plan, rules):
    """The sorted rules, or the error (a rule below a file: lsandbox's policy refuses those
    paths before planning, with one clear error)."""
    try:
        return sorted(plan(rules))
    except OSError as e:
        return type(e)
