"""An evaluator for the SBPL subset lsandbox emits, with Seatbelt's precedence as others
measured it:

* among the rules on one operation that have a filter, the last matching one wins;
* a rule without a filter does not override a matching filtered one (it decides only when
  no filtered rule matches);
* a rule naming the specific operation (``file-write-create``) beats one on its wildcard
  parent (``file-write*``), whatever their order;
* ``default`` applies only when nothing matched.

It parses the *printed* profile, so the parity tests check what really goes to
``sandbox-exec``. Queries: ``evaluate(text, op, path)`` for file operations,
``evaluate(text, "network-outbound", ("unix", path))`` / ``("ip", "127.0.0.1:80")`` for sockets.
"""

from __future__ import annotations

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
        elif c == '"':
            i += 1
            buf = []
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
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
            out.append(("str", "".join(buf)))
            i += 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n()";':
                j += 1
            out.append(("sym", text[i:j]))
            i = j
    return out


def parse(text: str) -> list[list[Any]]:
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


@dataclass
class Rule:
    verdict: str
    ops: list[str]
    filter: list[Any] | None


def _rules(text: str) -> tuple[str, list[Rule]]:
    default = "deny"
    rules = []
    for form in parse(text):
        if not isinstance(form, list) or not form or form[0] not in (("sym", "allow"), ("sym", "deny")):
            continue
        verdict = form[0][1]
        ops = [x[1] for x in form[1:] if isinstance(x, tuple) and x[0] == "sym"]
        filters = [x for x in form[1:] if isinstance(x, list)]
        if ops == ["default"]:
            default = verdict
            continue
        rules.append(Rule(verdict, ops, filters[0] if filters else None))
    return default, rules


def _path_matches(flt: list[Any], path: str) -> bool:
    kind = flt[0][1]
    arg = flt[1][1]
    if kind == "subpath":
        return arg == "/" or path == arg or path.startswith(arg.rstrip("/") + "/")
    if kind == "literal":
        return path == arg
    if kind == "prefix":
        return path.startswith(arg)
    return False


def _ip_matches(addr: Any, target: str) -> bool:
    """``"localhost:PORT"`` / ``"localhost:*"`` / ``"*:PORT"`` (the forms SBPL allows) against
    ``"HOST:PORT"``; SBPL's ``localhost`` covers the loopback addresses."""
    host, _, port = str(addr[1]).rpartition(":")
    t_host, _, t_port = target.rpartition(":")
    t_host = t_host.strip("[]")
    host_ok = host == "*" or (host == "localhost" and (t_host in ("localhost", "::1")
                                                        or t_host.startswith("127.")))
    return host_ok and port in ("*", t_port)


def _matches(flt: list[Any], target: Any) -> bool:
    head = flt[0][1]
    if head in ("subpath", "literal", "prefix"):
        return isinstance(target, str) and _path_matches(flt, target)
    if head in ("remote", "local"):
        if not isinstance(target, tuple):
            return False
        kind = flt[1][1]
        if kind == "unix-socket":
            return target[0] == "unix" and (len(flt) < 3 or _path_matches(flt[2], target[1]))
        if kind in ("ip", "tcp", "udp"):
            return target[0] == "ip" and (len(flt) < 3 or _ip_matches(flt[2], target[1]))
        return False
    if head in ("target", "global-name"):
        return False  # not used by the parity probes
    return False


def _op_matches(rule_op: str, op: str) -> int:
    """2: exact operation, 1: wildcard parent (``file-write*``), 0: no match."""
    if rule_op == op:
        return 2
    if rule_op.endswith("*") and op.startswith(rule_op[:-1]):
        return 1
    return 0


def evaluate(text: str, op: str, target: Any) -> str:
    default, rules = _rules(text)
    for level in (2, 1):  # a specific operation beats its wildcard parent
        filtered = None
        unfiltered = None
        for r in rules:
            if not any(_op_matches(o, op) == level for o in r.ops):
                continue
            if r.filter is None:
                unfiltered = r.verdict
            elif _matches(r.filter, target):
                filtered = r.verdict
        if filtered is not None:
            return filtered
        if unfiltered is not None:
            return unfiltered
    return default
