"""Value objects with dataclass semantics, without importing ``dataclasses``.

``lsandbox run`` is a fresh interpreter per sandbox, and ``import dataclasses`` pulls in
``inspect``, ``ast``, ``dis`` and ``tokenize``, none of which the sandbox needs. A
:class:`Record` subclass behaves as ``@dataclass(frozen=True)`` would on the same class body,
and ``dataclass_transform`` tells type checkers exactly that:

- every annotated name of the class body is a field (underscore names too; ``ClassVar``
  names are not), fields of a base record come first; a field without a default after one
  with a default is a ``TypeError`` when the class is created;
- ``__init__`` takes the fields positionally or by keyword, then calls ``__post_init__``;
  ``field(default_factory=...)`` builds a default per instance; ``field(init=False)``
  fields are not parameters (they get their default, or ``__post_init__`` sets them);
- ``__eq__``/``__hash__`` over the fields with ``compare=True`` (``field(compare=False)``
  for provenance or timings), ``__repr__`` over those with ``repr=True``;
- frozen by default (assignment raises ``AttributeError``; ``__post_init__`` may use
  ``object.__setattr__``); ``class R(Record, frozen=False)`` is mutable and unhashable;
- :meth:`Record.replace` is ``dataclasses.replace``.

Like ``seccomp_bpf`` and ``landlock`` this package imports nothing of lsandbox's.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, TypeVar

    from typing_extensions import dataclass_transform

    _R = TypeVar("_R", bound="Record")
else:
    def dataclass_transform(**_kw: object) -> Callable[[type], type]:
        return lambda cls: cls

__all__ = ["Record", "field"]


class _Missing:
    """No default (a sentinel distinct from every value, ``None`` included)."""


class _Field:
    __slots__ = ("default", "factory", "init", "repr", "compare")

    def __init__(self, default: object, factory: Callable[[], Any] | None, init: bool,
                 repr: bool, compare: bool) -> None:
        self.default, self.factory = default, factory
        self.init, self.repr, self.compare = init, repr, compare


def field(*, default: Any = _Missing, default_factory: Callable[[], Any] | None = None,
          init: bool = True, repr: bool = True, compare: bool = True) -> Any:
    """A field with options, as ``dataclasses.field``: ``default_factory`` builds a default per
    instance (lists, dicts); ``init=False`` keeps it out of ``__init__``; ``compare=False``
    out of equality and hash; ``repr=False`` out of ``repr``."""
    if default is not _Missing and default_factory is not None:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, init, repr, compare)


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__qualname__", "")
    return isinstance(text, str) and text.split("[", 1)[0].rsplit(".", 1)[-1] == "ClassVar"


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """Base class: annotate the fields (in order) on the subclass."""

    # Per class, computed by __init_subclass__ (declared here so each lookup is typed).
    # All fields, in order, each with its _Field (a plain default becomes one).
    _spec: ClassVar[tuple[tuple[str, _Field], ...]] = ()
    _init: ClassVar[tuple[str, ...]] = ()      # the __init__ parameters, in order
    _positional: ClassVar[int] = 0             # len(_init) when every field is in _init, else -1
    _compared: ClassVar[tuple[str, ...]] = ()  # __eq__/__hash__
    _shown: ClassVar[tuple[str, ...]] = ()     # __repr__
    _frozen: ClassVar[bool] = True

    def __init_subclass__(cls, *, frozen: bool = True, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # The class's own annotations, in order (Python 3.14 evaluates them lazily: ask the
        # class when they are not in its namespace).
        own = cls.__dict__.get("__annotations__")
        if own is None:
            own = getattr(cls, "__annotations__", {})
        spec = dict(getattr(cls, "_spec", ()))  # inherited fields first, as dataclasses do
        for name, annotation in own.items():
            if _is_classvar(annotation):
                continue
            value = cls.__dict__.get(name, _Missing)
            if isinstance(value, _Field):
                spec[name] = value
                if value.default is _Missing:
                    delattr(cls, name)  # an unset init=False field must not read the spec
                else:
                    setattr(cls, name, value.default)
            else:
                spec[name] = _Field(value, None, True, True, True)
        missing_default = ""
        for name, f in spec.items():
            if not f.init:
                continue
            has_default = f.default is not _Missing or f.factory is not None
            if not has_default and missing_default:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default follows "
                                f"field {missing_default!r} with one")
            if has_default:
                missing_default = name
        cls._spec = tuple(spec.items())
        cls._init = tuple(n for n, f in spec.items() if f.init)
        cls._positional = len(cls._init) if len(cls._init) == len(spec) else -1
        cls._compared = tuple(n for n, f in spec.items() if f.compare)
        cls._shown = tuple(n for n, f in spec.items() if f.repr)
        setattr(cls, "__match_args__", cls._init)  # noqa: B010 - mypy rejects the assignment
        cls._frozen = frozen
        if not frozen:
            cls.__hash__ = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kw: Any) -> None:
        init = self._init
        setter = object.__setattr__
        if not kw and len(args) == self._positional:
            # the common case, kept short: filters build thousands of records
            for name, value in zip(init, args, strict=True):
                setter(self, name, value)
            self.__post_init__()
            return
        if len(args) > len(init):
            raise TypeError(f"{type(self).__name__}() takes {len(init)} arguments, {len(args)} given")
        values = dict(zip(init, args, strict=False))  # fewer args than fields: defaults
        for key, value in kw.items():
            if key not in init or key in values:
                raise TypeError(f"{type(self).__name__}() got an unexpected or repeated argument {key!r}")
            values[key] = value
        for name, f in self._spec:
            if name in values:
                value = values[name]
            elif f.factory is not None:
                value = f.factory()
            elif f.default is not _Missing:
                value = f.default
            elif f.init:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            else:
                continue  # init=False without a default: __post_init__ sets it
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
        assert isinstance(other, Record)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._shown)
        return f"{type(self).__name__}({inner})"

    def replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` (``dataclasses.replace``: ``init=False`` fields are
        recomputed by ``__post_init__``, not copied)."""
        for key in changes:
            if key not in self._init:
                raise TypeError(f"{type(self).__name__}.replace() got an unexpected argument {key!r}")
        values = {n: getattr(self, n) for n in self._init}
        values.update(changes)
        return type(self)(**values)
