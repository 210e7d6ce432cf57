"""The broker's decision without a kernel: the pure ``decide``, the shared longest-match
table against the definition, and the C fast path's exported table against both."""

from __future__ import annotations

import errno
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsandbox.linux import _fastpath
from lsandbox.linux._broker_decide import ALLOWED, Denied, Quiet, UnixRules, decide, decide_abstract
from lsandbox.linux._probes import QUIET_PROBES
from lsandbox.linux._provenance import Provenance
from lsandbox.policy._longest import PathTable, ancestors
from lsandbox.policy._model import (
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
)
from lsandbox.policy._paths import is_within


def _policy(sockets: dict[str, str], writable: tuple[str, ...] = (), allow_all: bool = False,
            read: tuple[str, ...] = ()) -> Policy:
    rules = tuple(UnixSocketRule(p, SocketAccess(a)) for p, a in sockets.items())
    fs = FilesystemPolicy(tuple(FsRule(p, FsAccess.WRITE) for p in writable)
                          + tuple(FsRule(p, FsAccess.READ) for p in read if p not in writable))
    return Policy(fs, NetworkPolicy(False, rules, allow_all))


def _rules(*a: object, **kw: object) -> UnixRules:
    return UnixRules.from_policy(_policy(*a, **kw))  # type: ignore[arg-type]


def test_deepest_rule_decides() -> None:
    r = _rules({"/run": "allow", "/run/secret": "none"})
    assert decide(r, "/run/x.sock", "connect") == ALLOWED
    assert decide(r, "/run/secret/x.sock", "connect") == Denied("/run/secret/x.sock", "/run/secret = none")
    assert decide(r, "/runx", "connect") == Denied("/runx", "no rule")
    assert decide(r, "/run/secret", "sendto") == Denied("/run/secret", "/run/secret = none")


def test_allow_all_and_quiet_probes() -> None:
    probe = next(iter(QUIET_PROBES))
    assert decide(_rules({}), probe, "connect") == Quiet(errno.ENOENT)
    assert decide(_rules({}), probe, "bind") == Denied(probe, "no rule")
    assert decide(_rules({}, allow_all=True), "/anything", "connect") == ALLOWED
    assert decide(_rules({"/x": "none"}, allow_all=True), "/x/y", "connect") == Denied("/x/y", "/x = none")


def test_bind_needs_a_writable_directory() -> None:
    r = _rules({"/w": "allow", "/r": "allow"}, writable=("/w",), read=("/r",))
    assert decide(r, "/w/s", "bind") == ALLOWED
    assert decide(r, "/r/s", "bind") == Denied("/r/s", "bind: /r is not writable")
    assert decide(r, "/r/s", "connect") == ALLOWED


def test_abstract_names() -> None:
    assert decide_abstract(_rules({}), "@x", "connect") == Denied("@x", "abstract names are not brokered",
                                                                  errno.ECONNREFUSED)
    assert decide_abstract(_rules({}), "@x", "bind").err == errno.EACCES  # type: ignore[union-attr]
    assert decide_abstract(_rules({}, allow_all=True), "@x", "sendto") == ALLOWED


# -- generated rule sets and paths ---------------------------------------------------------
_names = st.sampled_from(["a", "b", "ab", "a.b", "x y", "\u00e9", "..a", "a\\b"])
_paths = st.lists(_names, max_size=5).map(lambda parts: "/" + "/".join(parts))
_rule_sets = st.dictionaries(_paths, st.sampled_from(["allow", "none"]), max_size=8)
_writable = st.lists(_paths, max_size=4, unique=True).map(tuple)


def _reference(path: str, keys: list[str]) -> str | None:
    """Longest match by its definition: the longest rule path that ``path`` is within."""
    best = None
    for k in keys:
        if is_within(path, k) and (best is None or len(k) > len(best)):
            best = k
    return best


@settings(max_examples=300, deadline=None)
@given(_rule_sets, _paths)
def test_table_is_longest_match(rules: dict[str, str], path: str) -> None:
    table = PathTable(rules)
    ref = _reference(path, list(rules))
    assert table.match(path) == (None if ref is None else (ref, rules[ref]))
    assert all(is_within(path, a) for a in ancestors(path))


@settings(max_examples=300, deadline=None)
@given(_rule_sets, _paths, st.sampled_from(["connect", "sendto"]))
def test_decide_matches_the_model(rules: dict[str, str], path: str, op: str) -> None:
    pol = _policy(rules)
    v = decide(UnixRules.from_policy(pol), path, op)  # type: ignore[arg-type]
    allowed = pol.network.unix_socket_access(path) == SocketAccess.ALLOW
    assert (v == ALLOWED) == allowed
    assert isinstance(v, Quiet) == (not allowed and pol.network.rule_for(path) is None
                                    and path in QUIET_PROBES)


needs_c = pytest.mark.skipif(_fastpath.lib is None, reason=f"C fast path: {_fastpath.why_not}")


@needs_c
@settings(max_examples=500, deadline=None)
@given(_rule_sets, _writable, st.booleans(), st.sampled_from(["", "/a/b", "/ab"]), _paths)
def test_c_table_agrees_with_python(rules: dict[str, str], writable: tuple[str, ...], allow_all: bool,
                                    socket_dir: str, path: str) -> None:
    """The C table's verdict and exposure are the Python decision's and ``Provenance``'s, so
    what C connects on its own (allowed, nothing to check) is what Python would allow."""
    pol = _policy(rules, writable, allow_all)
    ur = UnixRules.from_policy(pol)
    prov = Provenance(pol, socket_dir, time.time_ns(), snapshot=False)
    table = _fastpath.export_rules(ur, prov.rename_roots())
    got = _fastpath.lookup(table, path)
    rule = ur.table.get(path)
    want = 0 if rule is None else (_fastpath.R_ALLOW if rule.access == SocketAccess.ALLOW else _fastpath.R_NONE)
    assert got & (_fastpath.R_ALLOW | _fastpath.R_NONE) == want
    assert bool(got & _fastpath.R_EXPOSE) == prov.exposed(path)
    fast = not got & _fastpath.R_EXPOSE and (got & _fastpath.R_ALLOW or (not got & _fastpath.R_NONE and allow_all))
    assert bool(fast) == (decide(ur, path, "connect") == ALLOWED and not prov.exposed(path))


@needs_c
def test_c_table_with_many_rules() -> None:
    rules = {f"/n/{i:04d}": "allow" if i % 2 else "none" for i in range(2000)}
    ur = UnixRules.from_policy(_policy(rules))
    table = _fastpath.export_rules(ur, ())
    for i in (0, 1, 1999):
        want = _fastpath.R_ALLOW if i % 2 else _fastpath.R_NONE
        assert _fastpath.lookup(table, f"/n/{i:04d}/s") == want
    assert _fastpath.lookup(table, "/n/x") == 0
