"""Value objects without ``dataclasses``: a standalone helper for lsandbox's libraries.

Why: ``lsandbox run`` is a fresh interpreter per sandbox, and ``import dataclasses`` pulls in
``inspect`` (and ``ast``, ``dis``, ``tokenize``...): about 10 ms, a sixth of a whole launch,
spent on nothing the sandbox needs. :class:`Record` gives what the packages used
dataclasses for, from the class annotations, with no code generation:

- ``__init__`` taking the fields positionally or by keyword, defaults from class
  attributes (``field(default_factory=...)`` for mutable ones), then ``__post_init__``;
- ``__eq__``/``__hash__`` over the fields (minus ``compare_exclude``), ``__repr__``;
- frozen by default (assignment raises ``AttributeError``; ``__post_init__`` may use
  ``object.__setattr__``), ``frozen=False`` for mutable records (then unhashable);
- :meth:`Record.replace` (``dataclasses.replace``).

``dataclass_transform`` tells type checkers the same. Like ``seccomp_bpf`` and ``landlock``
this package imports nothing of lsandbox's, so all three can use it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    _R = TypeVar("_R", bound="Record")
else:
    def dataclass_transform(**_kw: object) -> Callable[[type], type]:
        return lambda cls: cls

__all__ = ["Record", "field"]


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A default built per instance (lists, dicts)."""
    return _Factory(default_factory)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """Base class: annotate the fields (in order) on the subclass."""

    _fields: tuple[str, ...] = ()
    _compared: tuple[str, ...] = ()
    _frozen: bool = True

    def __init_subclass__(cls, *, frozen: bool = True, compare_exclude: tuple[str, ...] = (),
                          **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # The class's own annotations, in order (Python 3.14 evaluates them lazily: ask the
        # class when they are not in its namespace)
        own = cls.__dict__.get("__annotations__")
        if own is None:
            own = getattr(cls, "__annotations__", {})
        names = tuple(n for n in own if not n.startswith("_"))
        cls._fields = names
        cls._compared = tuple(n for n in names if n not in compare_exclude)
        cls._frozen = frozen
        if not frozen:
            cls.__hash__ = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kw: Any) -> None:
        fields = self._fields
        if not kw and len(args) == len(fields):  # the common case, kept short: filters build thousands
            for name, value in zip(fields, args, strict=True):
                object.__setattr__(self, name, value)
            self.__post_init__()
            return
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        values = dict(zip(fields, args, strict=False))  # fewer args than fields: defaults
        for key, value in kw.items():
            if key not in fields or key in values:
                raise TypeError(f"{type(self).__name__}() got an unexpected or repeated argument {key!r}")
            values[key] = value
        setter = object.__setattr__
        for name in fields:
            if name in values:
                value = values[name]
            else:
                value = getattr(type(self), name, _Factory)
                if value is _Factory:
                    raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
                if isinstance(value, _Factory):
                    value = value.make()
            setter(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        """Validation/normalization hook, as in dataclasses."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._frozen:
            raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")
        object.__delattr__(self, name)

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self._compared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        values = {n: getattr(self, n) for n in self._fields}
        values.update(changes)
        return type(self)(**values)
