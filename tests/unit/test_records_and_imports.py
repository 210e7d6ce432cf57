"""lsandbox_records (the dataclasses stand-in) and the import diet it exists for."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import ClassVar

import pytest

from lsandbox_records import Record, field


class Point(Record):
    x: int
    y: int = 0
    label: str = field(default="", compare=False)


class Bag(Record, frozen=False):
    items: list[int] = field(default_factory=list)


def test_record_semantics():
    p = Point(1, label="a")
    assert (p.x, p.y, p.label) == (1, 0, "a")
    assert p == Point(1, 0, "b") and hash(p) == hash(Point(1, 0, "b"))  # label not compared
    assert p != Point(2) and repr(p) == "Point(x=1, y=0, label='a')"
    with pytest.raises(AttributeError):
        p.x = 3  # type: ignore[misc]
    assert p.replace(y=5) == Point(1, 5)
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, x=2)  # type: ignore[misc]
    a, b = Bag(), Bag()
    a.items.append(1)
    assert b.items == [] and a != b
    with pytest.raises(TypeError):
        hash(a)


class Derived(Point):
    """Fields of a base record come first; ``ClassVar`` and ``init=False`` as in dataclasses."""

    KIND: ClassVar[str] = "derived"
    z: int = 0
    _cache: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cache", self.x + self.y + self.z)


def test_record_behaves_as_the_dataclass_it_declares():
    d = Derived(1, 2, "l", 3)
    assert (d.x, d.y, d.label, d.z, d._cache, Derived.KIND) == (1, 2, "l", 3, 6, "derived")
    assert repr(d) == "Derived(x=1, y=2, label='l', z=3)"
    assert d == Derived(1, 2, "other", 3) and d != Derived(1, 2, "l", 4)
    assert d.replace(z=4)._cache == 7
    assert Derived.__match_args__ == ("x", "y", "label", "z")
    with pytest.raises(TypeError):
        Derived(1, _cache=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        d.replace(_cache=5)
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(Record):  # noqa: F841
            a: int = 0
            b: int
    with pytest.raises(ValueError):
        field(default=1, default_factory=list)


TYPED = """\
from typing import ClassVar
from lsandbox_records import Record, field

class P(Record):
    K: ClassVar[int] = 1
    x: int
    label: str = field(default="", compare=False)
    _c: int = field(init=False, repr=False, compare=False)

class M(Record, frozen=False):
    items: list[int] = field(default_factory=list)

p = P(1, label="a")
reveal_type(p.replace(x=2))
m = M()
m.items = [1]
match p:
    case P(x, label):
        reveal_type(x)
P(1, _c=3)
p.x = 2
"""


def test_type_checkers_see_what_records_do(tmp_path):
    """What mypy infers from ``dataclass_transform`` is what :class:`Record` does at run time
    (the test above): ``init=False`` is not a parameter, frozen is read-only, ``frozen=False``
    is mutable, ``__match_args__`` lists the init fields."""
    pytest.importorskip("mypy")
    (tmp_path / "snippet.py").write_text(TYPED)
    out = subprocess.run([sys.executable, "-m", "mypy", "--python-version", "3.10",
                          "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                          str(tmp_path / "snippet.py")],
                         capture_output=True, text=True, cwd=tmp_path).stdout
    lines = out.splitlines()
    assert len(lines) == 4, out  # two reveals, two errors: nothing else is reported
    assert "snippet.P" in lines[0] and "int" in lines[1], out
    assert "error" in lines[2] and '"_c"' in lines[2], out
    assert "error" in lines[3] and '"x"' in lines[3] and "read-only" in lines[3], out


def test_the_run_path_imports_no_heavy_modules(tmp_path):
    """`lsandbox run` starts a fresh interpreter per sandbox: what it imports is launch time.
    These modules cost 2-10 ms each and the run path needs none of them (argparse, re, json,
    gettext and locale: a plain ``run -- CMD`` is parsed without argparse, no config file
    means no TOML, the syscall tables are a generated module; the filtering proxy (asyncio, h11,
    ipaddress) only in runs with network.domains)."""
    code = ("import sys\nimport lsandbox.cli as c\n"
            "rc = c.main(['run', '--', 'true'])\n"
            "heavy = {'typing', 'dataclasses', 'inspect', 'tomllib', 'subprocess', 'tempfile', "
            "'platform', 'difflib', 'shutil', 'random', 'argparse', 're', 'json', 'gettext', "
            "'locale', 'socket', 'selectors', 'importlib', 'warnings', 'ipaddress', 'asyncio', "
            "'h11', 'urllib', 'lsandbox.proxy'}\n"
            "print(sorted(heavy & set(sys.modules)), rc)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}  # no user config file
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env=env).stdout.split("\n")[-2]
    assert out == "[] 0", out
