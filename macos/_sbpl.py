"""A small SBPL AST and printer.

SBPL is a Scheme dialect: strings are double-quoted with backslash escapes. Paths can hold
any byte but NUL, so every string goes through :func:`quote`, which escapes backslashes,
quotes and control characters (a newline in a path must never end a rule early).
"""

from __future__ import annotations

from dataclasses import dataclass


def quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@dataclass(frozen=True)
class Sym:
    name: str

    def render(self) -> str:
        return self.name


@dataclass(frozen=True)
class Str:
    value: str

    def render(self) -> str:
        return quote(self.value)


@dataclass(frozen=True)
class List:
    items: tuple[Sym | Str | List, ...]

    def render(self) -> str:
        return "(" + " ".join(i.render() for i in self.items) + ")"


def sexp(*items: object) -> List:
    conv: list[Sym | Str | List] = []
    for i in items:
        if isinstance(i, (Sym, Str, List)):
            conv.append(i)
        elif isinstance(i, str):
            conv.append(Sym(i))
        else:
            raise TypeError(i)
    return List(tuple(conv))


def subpath(p: str) -> List:
    return sexp("subpath", Str(p))


def literal(p: str) -> List:
    return sexp("literal", Str(p))


@dataclass
class Profile:
    rules: list[List]
    comments: dict[int, str]

    def render(self) -> str:
        lines = []
        for i, r in enumerate(self.rules):
            if i in self.comments:
                lines.append(f"; {self.comments[i]}")
            lines.append(r.render())
        return "\n".join(lines) + "\n"
