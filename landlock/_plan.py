"""From longest-match rules to Landlock rules.

Landlock only grants: the rights at a path are the union of the rules on it and on all its
ancestors. A policy, though, says "``/`` readable, except ``~/.ssh``" or "``/w`` writable,
except ``/w/.git`` read-only": the most specific rule decides. :func:`plan_path_rules`
bridges the two. A rule whose rights are a superset of everything below it is emitted as is.
Otherwise its directory is *split*: the directory itself gets only the rights every
descendant rule also has (so nothing leaks downwards), plus ``READ_DIR`` when the rule had it
(so ``ls`` of the chain still works), and each of its entries is handled recursively, getting
the directory's rights unless a rule below says otherwise.

What this cannot cover, by construction:

* Names, not contents, of a denied directory stay listable when one of its ancestors keeps
  ``READ_DIR`` (``READ_DIR`` on a split directory applies to its whole subtree).
* Entries created *after* the rules are built inside a split directory get only the split
  directory's reduced rights: they fail closed (e.g. no new top-level file in a writable root
  that holds a read-only ``.git`` — unless the caller protects ``.git`` another way, such as
  a read-only bind mount, and leaves the carve-out out of the rules).
* Symlinks among enumerated entries get no rule (their targets keep their own rights), and
  rules on paths that do not exist are dropped (there is nothing to grant).
* A split directory with more than ``max_entries`` entries is refused (:class:`PlanError`)
  rather than enumerated for minutes.
"""

from __future__ import annotations

import os
import stat

from ._rights import FS_READ_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._access import AccessFs


class PlanError(ValueError):
    pass


def _within(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def plan_path_rules(
    rules: Mapping[str, AccessFs], *, max_entries: int = 20_000
) -> list[tuple[str, AccessFs]]:
    """Landlock path-beneath rules equivalent to longest-match ``rules`` (canonical paths)."""
    from ._access import AccessFs

    return [(p, AccessFs(r)) for p, r in plan_raw_path_rules(rules, max_entries=max_entries)]


def plan_raw_path_rules(rules: Mapping[str, int], *, max_entries: int = 20_000) -> list[tuple[str, int]]:
    """:func:`plan_path_rules` on plain int rights (``_rights``), giving plain ints."""
    out: list[tuple[str, int]] = []
    budget = [max_entries]
    below = {p: int(r) for p, r in rules.items()}
    for top, sub in _nearest(below):
        _emit(top, below[top], sub, out, budget)
    return out


def _order(path: str) -> str:
    """Sort key putting every path right before its descendants (``/a``, ``/a/b``, ``/a-b``)."""
    return path.replace("/", "\0")


def _nearest(below: dict[str, int]) -> list[tuple[str, dict[str, int]]]:
    """The paths of ``below`` under none of the others, each with the rules below it: one
    pass in :func:`_order`, where a path's descendants follow it."""
    out: list[tuple[str, dict[str, int]]] = []
    for p in sorted(below, key=_order):
        if out and _within(p, out[-1][0]):
            out[-1][1][p] = below[p]
        else:
            out.append((p, {}))
    return out


def _emit(path: str, rights: int, below: dict[str, int], out: list, budget: list[int]) -> None:
    if all((r & rights) == rights for r in below.values()):
        if rights:
            out.append((path, rights))
        for n, sub in _nearest(below):
            _emit(n, below[n], sub, out, budget)
        return
    inter = rights
    for r in below.values():
        inter &= r
    own = inter | (rights & FS_READ_DIR)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        if inter:
            out.append((path, inter))
        return
    if own:
        out.append((path, own))
    try:
        entries = os.listdir(path)
    except OSError as e:
        raise PlanError(f"cannot list {path} to split its rights: {e.strerror}") from None
    budget[0] -= len(entries)
    if budget[0] < 0:
        raise PlanError(f"too many directory entries to enumerate while splitting rights at {path}")
    base = path.rstrip("/") + "/"
    by_name: dict[str, dict[str, int]] = {}  # the rules below, by the entry they are under
    for p, r in below.items():
        by_name.setdefault(p[len(base):].split("/", 1)[0], {})[p] = r
    for name in sorted(entries):
        child = base + name
        group = by_name.get(name)
        if not group:
            try:
                if stat.S_ISLNK(os.lstat(child).st_mode):
                    continue
            except FileNotFoundError:
                continue
            if rights & ~own:
                out.append((child, rights))
            continue
        child_rights = group.pop(child, rights)
        _emit(child, child_rights, group, out, budget)


def readonly_except(writable: list[str], abi: int) -> list[tuple[str, AccessFs]]:
    """Read (and execute) everything, write only below ``writable``."""
    from ._access import AccessFs

    rules = {"/": AccessFs.from_read(abi)}
    rules.update({w: AccessFs.from_read(abi) | AccessFs.from_write(abi) for w in writable})
    return plan_path_rules(rules)


def readable_except(denied: list[str], abi: int) -> list[tuple[str, AccessFs]]:
    """Read everything except ``denied`` paths (neither read nor execute)."""
    from ._access import AccessFs

    rules = {"/": AccessFs.from_read(abi)}
    rules.update({d: AccessFs(0) for d in denied})
    return plan_path_rules(rules)
