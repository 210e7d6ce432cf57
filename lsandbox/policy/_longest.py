"""Longest match, the one rule shape of every path policy, as one table all consumers share.

A rule covers its path and everything below it by whole components (``/tmp`` covers
``/tmp/x``, not ``/tmpx``); the deepest rule covering a path decides. A lookup walks the
path's ancestors in a dict, so it costs O(depth) whatever the number of rules: the broker
decides every connect with it, and the policy model, the plan, the provenance check and the
C fast path's exported table (``linux/_fastpath``) answer exactly as it does.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Generic, TypeVar

    V = TypeVar("V")

    class _Base(Generic[V]):
        pass
else:
    V = None

    class _Base:
        def __class_getitem__(cls, item: object) -> type:
            return cls


def ancestors(path: str) -> Iterator[str]:
    """``path``, then every prefix of it that ends before a ``/`` (``/`` for the first),
    deepest first: exactly the rule paths that cover ``path``."""
    probe = path
    while True:
        yield probe
        if probe == "/":
            return
        cut = probe.rfind("/")
        if cut < 0:
            return
        probe = probe[:cut] or "/"


class PathTable(_Base[V]):
    """Rule path -> value, looked up by longest match."""

    __slots__ = ("_map",)

    def __init__(self, items: Mapping[str, V] | Iterable[tuple[str, V]] = ()) -> None:
        self._map: dict[str, V] = dict(items)

    def match(self, path: str) -> tuple[str, V] | None:
        """(rule path, value) of the deepest rule covering ``path``, or None."""
        m = self._map
        for probe in ancestors(path):
            if probe in m:
                return probe, m[probe]
        return None

    def get(self, path: str) -> V | None:
        """The value of the deepest rule covering ``path``, or None."""
        hit = self.match(path)
        return None if hit is None else hit[1]

    def parent(self, path: str) -> tuple[str, V] | None:
        """The deepest rule covering ``path`` other than a rule at ``path`` itself."""
        m = self._map
        for probe in ancestors(path):
            if probe != path and probe in m:
                return probe, m[probe]
        return None

    def __len__(self) -> int:
        return len(self._map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __contains__(self, path: object) -> bool:
        return path in self._map

    def items(self) -> Iterable[tuple[str, V]]:
        return self._map.items()
