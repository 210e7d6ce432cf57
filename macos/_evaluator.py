"""An evaluator for the SBPL lsandbox emits, under several models of Seatbelt's precedence.

What is established (Apple's own profiles rely on it, and every reference profile is written
for it): ``(deny default)`` decides only when no rule matched, and among the rules on one
operation **the last matching rule wins**. A rule lists one or more operations and zero or
more filters; a rule with several filters matches when **any** of them does (they are OR'd;
``require-all`` / ``require-any`` / ``require-not`` combine filters explicitly). Modifiers
such as ``(with message "...")`` are not filters.

Two further rules were reported by others, without a measurement we could cite:

* ``unfiltered_yields``: a rule without a filter does not override a matching filtered one
  (it decides only when no filtered rule matches);
* ``specific_first``: a rule naming the specific operation (``file-write-create``) beats one on
  its wildcard parent (``file-write*``), whatever their order.

So the evaluator takes a :class:`Model`; :data:`MODELS` holds the four combinations. The
profile writer is built so that every parity verdict is the same under all four (the tests
check that), and the macOS workflow runs :data:`PRECEDENCE_PROFILE` under real
``sandbox-exec`` to measure which model Seatbelt follows.

It parses the *printed* profile, so the tests check what really goes to ``sandbox-exec``.
Queries: ``evaluate(text, op, path)`` for file operations; ``("unix", path)`` and
``("ip", "127.0.0.1:80")`` for sockets; ``("mach", name)``, ``("sysctl", name)``,
``("socket-domain", "AF_UNIX")`` for the other filters we write. ``extensions`` lists the
sandbox extensions the object carries (a pty opened in the sandbox has
``com.apple.sandbox.pty``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class SBPLSyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[Any]:
    out: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif c in " \t\r\n":
            i += 1
        elif c in "()":
            out.append(c)
            i += 1
        elif c == '"' or text.startswith('#"', i):
            kind = "regex" if c == "#" else "str"
            i += 2 if kind == "regex" else 1
            buf = []
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                    if i >= n:
                        break
                    esc = text[i]
                    if esc == "x":
                        buf.append(chr(int(text[i + 1:i + 3], 16)))
                        i += 3
                        continue
                    buf.append({"n": "\n", "t": "\t", "r": "\r"}.get(esc, esc))
                else:
                    buf.append(text[i])
                i += 1
            if i >= n:
                raise SBPLSyntaxError("unterminated string")
            out.append((kind, "".join(buf)))
            i += 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n()";':
                j += 1
            out.append(("sym", text[i:j]))
            i = j
    return out


def parse(text: str) -> list[Any]:
    toks = _tokens(text)
    pos = 0

    def read() -> Any:
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "(":
            lst = []
            while pos < len(toks) and toks[pos] != ")":
                lst.append(read())
            if pos >= len(toks):
                raise SBPLSyntaxError("missing )")
            pos += 1
            return lst
        if t == ")":
            raise SBPLSyntaxError("unexpected )")
        return t

    forms = []
    while pos < len(toks):
        forms.append(read())
    return forms


@dataclass(frozen=True)
class Model:
    """A model of Seatbelt's precedence (see the module docstring)."""

    name: str
    unfiltered_yields: bool
    specific_first: bool


MODELS: tuple[Model, ...] = (
    Model("last-match", False, False),
    Model("reported", True, True),
    Model("unfiltered-yields", True, False),
    Model("specific-first", False, True),
)
REPORTED = MODELS[1]


@dataclass
class Rule:
    verdict: str
    ops: list[str]
    filters: list[Any]  # OR'd; empty: the rule has no filter


def _is_modifier(x: Any) -> bool:
    return isinstance(x, list) and bool(x) and x[0] == ("sym", "with")


def rules(text: str) -> tuple[str, list[Rule]]:
    """The default verdict and the allow/deny rules, in order."""
    default = "deny"
    out = []
    for form in parse(text):
        if not isinstance(form, list) or not form or form[0] not in (("sym", "allow"), ("sym", "deny")):
            continue
        verdict = form[0][1]
        ops = [x[1] for x in form[1:] if isinstance(x, tuple) and x[0] == "sym"]
        filters = [x for x in form[1:] if isinstance(x, list) and not _is_modifier(x)]
        if ops == ["default"]:
            default = verdict
            continue
        out.append(Rule(verdict, ops, filters))
    return default, out


def _arg(flt: list[Any], i: int = 1) -> str:
    return flt[i][1]


def _path_matches(kind: str, arg: str, path: str) -> bool:
    if kind == "subpath":
        return arg == "/" or path == arg or path.startswith(arg.rstrip("/") + "/")
    if kind in ("literal", "path", "path-literal"):
        return path == arg
    if kind == "prefix":
        return path.startswith(arg)
    if kind == "regex":
        return re.search(arg, path) is not None
    raise SBPLSyntaxError(f"unknown path filter {kind}")


_PATH_FILTERS = ("subpath", "literal", "path", "path-literal", "prefix", "regex")


def _matches(flt: list[Any], target: Any, ext: frozenset[str]) -> bool:
    head = flt[0][1]
    if head == "require-not":
        return not _matches(flt[1], target, ext)
    if head == "require-all":
        return all(_matches(f, target, ext) for f in flt[1:])
    if head == "require-any":
        return any(_matches(f, target, ext) for f in flt[1:])
    if head in _PATH_FILTERS:
        return isinstance(target, str) and _path_matches(head, _arg(flt), target)
    if head == "extension":
        return _arg(flt) in ext
    if head in ("remote", "local"):
        if not isinstance(target, tuple):
            return False
        kind = _arg(flt)
        if kind == "unix-socket":
            if target[0] != "unix":
                return False
            return len(flt) < 3 or _matches(flt[2], target[1], ext)
        if kind in ("ip", "tcp", "udp"):
            return target[0] == "ip" and (len(flt) < 3 or _arg(flt, 2) in ("*:*", target[1]))
        return False
    if head in ("global-name", "local-name"):
        return isinstance(target, tuple) and target == ("mach", _arg(flt))
    if head == "sysctl-name":
        return isinstance(target, tuple) and target == ("sysctl", _arg(flt))
    if head == "sysctl-name-prefix":
        return isinstance(target, tuple) and target[0] == "sysctl" and target[1].startswith(_arg(flt))
    if head == "socket-domain":
        return isinstance(target, tuple) and target == ("socket-domain", _arg(flt))
    if head in ("target", "iokit-registry-entry-class", "vnode-type"):
        return False  # not asked by the tests
    raise SBPLSyntaxError(f"unknown filter {head}")


def _op_level(rule_op: str, op: str) -> int:
    """2: exact operation, 1: wildcard parent (``file-write*``), 0: no match."""
    if rule_op == op:
        return 2
    if rule_op.endswith("*") and op.startswith(rule_op[:-1]):
        return 1
    return 0


def _decide(rs: list[Rule], target: Any, ext: frozenset[str], model: Model) -> str | None:
    last = filtered = unfiltered = None
    for r in rs:
        if not r.filters:
            last = unfiltered = r.verdict
        elif any(_matches(f, target, ext) for f in r.filters):
            last = filtered = r.verdict
    if model.unfiltered_yields:
        return filtered if filtered is not None else unfiltered
    return last


def evaluate(text: str, op: str, target: Any, *, model: Model = REPORTED,
             extensions: tuple[str, ...] = ()) -> str:
    default, rs = rules(text)
    ext = frozenset(extensions)
    if model.specific_first:
        for level in (2, 1):
            got = _decide([r for r in rs if any(_op_level(o, op) == level for o in r.ops)], target, ext, model)
            if got is not None:
                return got
        return default
    got = _decide([r for r in rs if any(_op_level(o, op) for o in r.ops)], target, ext, model)
    return default if got is None else got


def evaluate_all(text: str, op: str, target: Any, *, extensions: tuple[str, ...] = ()) -> dict[str, str]:
    """The verdict under every model in :data:`MODELS`."""
    return {m.name: evaluate(text, op, target, model=m, extensions=extensions) for m in MODELS}


#: A profile whose verdicts tell the models apart; ``PRECEDENCE_CASES`` are the probes. It
#: starts from ``(allow default)`` so that the probing interpreter itself runs whatever the
#: answer; every case is matched by at least one rule, so the default never decides.
#: The macOS workflow runs each case under real ``sandbox-exec`` (tests/parity/test_precedence_macos.py).
PRECEDENCE_PROFILE = """\
(version 1)
(allow default)
(allow file-read*)
(deny file-read* (subpath "@/a/b"))
(allow file-read* (subpath "@/a/b/c"))
(allow file-write* (require-any (subpath "@/a") (subpath "@/m")))
(deny file-write* (subpath "@/x") (literal "@/lit"))
(allow file-write*)
(deny file-write* (subpath "@/y"))
(allow file-write-create (subpath "@/y/z"))
(deny file-write* (subpath "@/y/z"))
(deny file-write-create (subpath "@/w"))
(allow file-write* (subpath "@/w"))
(deny file-write* (require-all (subpath "@/a") (require-not (subpath "@/a/keep"))) (literal "@/m/f"))
"""

#: (operation the probe performs, path under the scratch root ``@``).
PRECEDENCE_CASES: tuple[tuple[str, str], ...] = (
    ("file-read-data", "@/a/f"),         # only the unfiltered allow
    ("file-read-data", "@/a/b/f"),       # a later filtered deny
    ("file-read-data", "@/a/b/c/f"),     # a still later, deeper allow
    ("file-write-create", "@/a/keep/f"),  # require-any allowed it; require-not spares it
    ("file-write-create", "@/a/g"),      # require-all denies it
    ("file-write-create", "@/m/f"),      # second filter of a multi-filter deny
    ("file-write-create", "@/m/g"),      # second filter of a multi-filter allow
    ("file-write-create", "@/x/f"),      # filtered deny, later unfiltered allow
    ("file-write-create", "@/lit"),      # the literal filter of the same rule
    ("file-write-create", "@/q"),        # only the unfiltered allow
    ("file-write-create", "@/y/f"),      # filtered deny after the unfiltered allow
    ("file-write-create", "@/y/z/f"),    # specific allow, later wildcard deny
    ("file-write-create", "@/w/f"),      # specific deny, later wildcard allow
)
