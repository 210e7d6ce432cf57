"""Where each key of a TOML document is, by line.

``tomllib`` gives values but no positions, and every load error must name ``FILE:LINE``.
This is a small line scanner (not a parser: ``tomllib`` already validated the document)
that follows table headers, dotted keys and one-line inline tables, and records the line
where each key path first appears. Lookups fall back to the nearest enclosing key, so an
error always names a line even for constructs the scanner does not track (multi-line
strings' contents, multi-line inline arrays).
"""

from __future__ import annotations

TYPE_CHECKING = False  # ``typing`` stays off the launch path; type checkers see True
if TYPE_CHECKING:
    import re

_bare: re.Pattern[str] | None = None  # compiled on first use: no ``re`` when no config is read
KeyPath = tuple[str, ...]


def _bare_key() -> re.Pattern[str]:
    global _bare
    if _bare is None:
        import re

        _bare = re.compile(r"[A-Za-z0-9_-]+")
    return _bare


def _parse_key(text: str, i: int) -> tuple[list[str], int]:
    """Parse a (dotted) key starting at ``text[i]``; return its parts and the next index."""
    parts: list[str] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        c = text[i]
        if c == '"':
            j = i + 1
            buf = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    buf.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(esc, esc))
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
        elif c == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            parts.append(text[i + 1 : j])
            i = j + 1
        else:
            m = _bare_key().match(text, i)
            if not m:
                break
            parts.append(m.group(0))
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        break
    return parts, i


class LineIndex:
    """Key path -> 1-based line number for one TOML document."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        table: KeyPath = ()
        aot_counts: dict[KeyPath, int] = {}
        in_multiline: str | None = None
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_multiline:
                if in_multiline in line:
                    in_multiline = None
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                parts, _ = _parse_key(line, 2)
                path = tuple(parts)
                idx = aot_counts.get(path, 0)
                aot_counts[path] = idx + 1
                table = path + (str(idx),)
                self._record(table, lineno)
                continue
            if line.startswith("["):
                parts, _ = _parse_key(line, 1)
                table = tuple(parts)
                self._record(table, lineno)
                continue
            parts, i = _parse_key(line, 0)
            if not parts or i >= len(line) or line[i] != "=":
                continue
            path = table + tuple(parts)
            self._record(path, lineno)
            rest = line[i + 1 :].lstrip()
            if rest.startswith('"""') or rest.startswith("'''"):
                if rest.count(rest[:3]) == 1:
                    in_multiline = rest[:3]
            elif rest.startswith("{"):
                self._scan_inline(rest, path, lineno)

    def _scan_inline(self, text: str, base: KeyPath, lineno: int) -> None:
        """Record keys of a one-line inline table (nested ones too)."""
        i = 1
        n = len(text)
        while i < n:
            while i < n and text[i] in " \t,":
                i += 1
            if i >= n or text[i] == "}":
                return
            parts, i = _parse_key(text, i)
            if not parts or i >= n or text[i] != "=":
                return
            path = base + tuple(parts)
            self._record(path, lineno)
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == "{":
                depth, j = 0, i
                while j < n:
                    if text[j] == "{":
                        depth += 1
                    elif text[j] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                self._scan_inline(text[i : j + 1], path, lineno)
                i = j + 1
            else:
                # skip a scalar or array value
                depth = 0
                quote = ""
                while i < n:
                    c = text[i]
                    if quote:
                        if c == "\\" and quote == '"':
                            i += 2
                            continue
                        if c == quote:
                            quote = ""
                    elif c in "\"'":
                        quote = c
                    elif c == "[":
                        depth += 1
                    elif c == "]":
                        depth -= 1
                    elif c in ",}" and depth == 0:
                        break
                    i += 1

    def _record(self, path: KeyPath, lineno: int) -> None:
        self._lines.setdefault(path, lineno)
        for k in range(1, len(path)):
            self._lines.setdefault(path[:k], lineno)

    def line(self, path: KeyPath) -> int:
        """Line of ``path``, or of its nearest recorded ancestor (1 if none)."""
        for k in range(len(path), 0, -1):
            if path[:k] in self._lines:
                return self._lines[path[:k]]
        return 1
