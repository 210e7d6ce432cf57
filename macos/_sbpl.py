"""A small SBPL AST and printer.

SBPL is a Scheme dialect, and a profile is only as safe as its printer: no value that comes
from a policy (a path, a profile name, a socket directory) may end a string, a comment or a
rule early. So there are exactly two places user text can appear, and both escape it:

* strings, through :func:`quote`: backslashes, double quotes and every control character are
  escaped (a newline in a path must never end a rule early);
* comments, through :func:`comment`: a comment runs to the end of the line, so a newline in a
  profile name would start a live rule; every character that is not printable is escaped.

Regular expressions (``#"..."``) are written only from fixed patterns in this package
(:class:`Regex` refuses anything else), never from policy values.
"""

from __future__ import annotations

from dataclasses import dataclass

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(s: str) -> str:
    """``s`` as an SBPL string literal that reads back as exactly ``s``."""
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def comment(text: str) -> str:
    """One ``;`` comment line; anything that could end the line is escaped."""
    safe = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return f"; {safe}"


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


#: The only regular expressions we write: fixed device-name patterns.
_FIXED_REGEXES = frozenset({r"^/dev/ttys[0-9]+$"})


@dataclass(frozen=True)
class Regex:
    """``#"pattern"``: only for the fixed patterns above (no policy value is ever a regex)."""

    pattern: str

    def __post_init__(self) -> None:
        if self.pattern not in _FIXED_REGEXES:
            raise ValueError(f"not one of our fixed SBPL regexes: {self.pattern!r}")

    def render(self) -> str:
        return f'#"{self.pattern}"'


Atom = Sym | Str | Regex


@dataclass(frozen=True)
class List:
    items: tuple[Atom | List, ...]

    def render(self) -> str:
        return "(" + " ".join(i.render() for i in self.items) + ")"


def sexp(*items: object) -> List:
    """A list from symbols (plain ``str``), :class:`Str`, :class:`Regex` and lists."""
    conv: list[Atom | List] = []
    for i in items:
        if isinstance(i, (Sym, Str, Regex, List)):
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


def global_name(name: str) -> List:
    return sexp("global-name", Str(name))


def sysctl_name(name: str) -> List:
    return sexp("sysctl-name", Str(name))


def sysctl_prefix(prefix: str) -> List:
    return sexp("sysctl-name-prefix", Str(prefix))


def with_message(tag: str) -> List:
    """``(with message TAG)``: Seatbelt appends TAG to this rule's denial log lines."""
    return sexp("with", "message", Str(tag))


@dataclass
class Profile:
    """Rules in order, each with an optional comment line printed above it."""

    rules: list[List]
    comments: dict[int, str]

    def render(self) -> str:
        lines = []
        for i, r in enumerate(self.rules):
            if i in self.comments:
                lines.append(comment(self.comments[i]))
            lines.append(r.render())
        return "\n".join(lines) + "\n"
