"""The layer rules of ARCHITECTURE.md, checked on the source: every import (lazy ones and
``TYPE_CHECKING`` ones included) points down the picture, never up or sideways."""

from __future__ import annotations

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("lsandbox", "seccomp_bpf", "landlock", "macos", "lsandbox_records")


def _is_module(dotted: str) -> bool:
    path = os.path.join(REPO, *dotted.split("."))
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def _imports() -> dict[str, set[str]]:
    """module -> the repository modules it imports."""
    out: dict[str, set[str]] = {}
    for top in PACKAGES:
        for root, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(root, f), REPO)[:-3].replace(os.sep, ".")
                is_pkg = rel.endswith(".__init__")
                mod = rel[: -len(".__init__")] if is_pkg else rel
                package = mod if is_pkg else mod.rpartition(".")[0]
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    tree = ast.parse(fh.read())
                targets: set[str] = set()
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        targets.update(a.name for a in node.names)
                    elif isinstance(node, ast.ImportFrom):
                        if node.level:
                            parts = package.split(".")
                            base = ".".join(parts[: len(parts) - node.level + 1])
                            base = f"{base}.{node.module}" if node.module else base
                        else:
                            base = node.module or ""
                        for a in node.names:
                            sub = f"{base}.{a.name}"
                            targets.add(sub if _is_module(sub) else base)
                out[mod] = {t for t in targets if t.split(".")[0] in PACKAGES}
    return out


def _within(mod: str, prefixes: tuple[str, ...]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


IMPORTS = _imports()

# (layer, what it may import from this repository besides itself)
ALLOWED = (
    ("lsandbox_records", ()),
    ("seccomp_bpf", ("lsandbox_records",)),
    ("landlock", ("lsandbox_records",)),
    ("lsandbox.policy", ("lsandbox_records", "lsandbox._errors")),
    ("lsandbox.proxy", ("lsandbox_records", "lsandbox._errors", "lsandbox.policy")),
)
# (layer, what it must never import)
FORBIDDEN = (
    ("macos", ("lsandbox.linux", "lsandbox.cli", "landlock", "seccomp_bpf")),
    ("lsandbox.linux", ("lsandbox.cli", "macos")),
)


def test_the_import_graph_is_read_as_python_resolves_it():
    assert "lsandbox.policy._model" in IMPORTS["lsandbox.policy"]  # from ._model import ...
    assert "lsandbox._errors" in IMPORTS["lsandbox.policy._loader"]  # from .._errors import ...
    assert {"landlock", "seccomp_bpf"} <= IMPORTS["lsandbox.linux._plan"]  # import x as y


@pytest.mark.parametrize("layer, allowed", ALLOWED)
def test_lower_layers_import_only_what_is_below_them(layer, allowed):
    bad = sorted(f"{m} -> {t}" for m, ts in IMPORTS.items() if _within(m, (layer,))
                 for t in ts if not _within(t, (layer, *allowed)))
    assert not bad, bad


@pytest.mark.parametrize("layer, forbidden", FORBIDDEN)
def test_backends_do_not_reach_sideways_or_up(layer, forbidden):
    bad = sorted(f"{m} -> {t}" for m, ts in IMPORTS.items() if _within(m, (layer,))
                 for t in ts if _within(t, forbidden))
    assert not bad, bad


def test_only_the_cli_imports_the_cli():
    bad = sorted(f"{m} -> {t}" for m, ts in IMPORTS.items() if not _within(m, ("lsandbox.cli",))
                 for t in ts if _within(t, ("lsandbox.cli",)))
    assert not bad, bad
