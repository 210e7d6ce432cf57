"""Committed generated modules (``scripts/generate.py``): regenerating each gives the same
bytes, so the committed file is what its generator makes of its source and nobody edited it
by hand; the precompiled filters are what the rule compiler gives now; and a launch uses
them without importing the compiler."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("_generate", os.path.join(ROOT, "scripts", "generate.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


@pytest.mark.parametrize("rel", sorted(GEN.generated()))  # type: ignore[attr-defined]
def test_regenerating_gives_the_same_bytes(rel):
    with open(os.path.join(ROOT, rel), "rb" if rel.endswith(".bin") else "r") as f:
        committed = f.read()
    assert GEN.generated()[rel]() == committed, f"{rel}: run `make generate`"  # type: ignore[attr-defined]


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_precompiled_filter_is_what_the_compiler_gives(arch):
    from lsandbox.linux import _filters as f

    for key in itertools.product((False, True), repeat=len(f.A_PARAMS)):
        kw = dict(zip(f.A_PARAMS, key, strict=True))
        assert f.filter_a_bytes(arch, **kw) == f.compile_filter_a(arch, **kw).to_bytes(), kw
    for key in itertools.product((False, True), repeat=len(f.B_PARAMS)):
        kw = dict(zip(f.B_PARAMS, key, strict=True))
        assert f.filter_b_bytes(arch, **kw) == f.compile_filter_b(arch, **kw).to_bytes(), kw
    with pytest.raises(ValueError):
        f.filter_a_bytes("mips", network=False, unix_dgram=False, truncate_guard=False)


def test_a_damaged_filter_table_is_refused(tmp_path, monkeypatch):
    """A launch never installs a program read from a table that is not one (wrong magic),
    was cut short or is missing: the read fails with SetupError (``lsandbox: error: ...``),
    naming ``make generate``; a program the damage did not reach reads back whole."""
    from lsandbox import SetupError
    from lsandbox.linux import _filters as f

    calls = [(f.filter_a_bytes, dict(zip(f.A_PARAMS, key, strict=True)))
             for key in itertools.product((False, True), repeat=len(f.A_PARAMS))]
    calls += [(f.filter_b_bytes, dict(zip(f.B_PARAMS, key, strict=True)))
              for key in itertools.product((False, True), repeat=len(f.B_PARAMS))]
    good = [read("x86_64", **kw) for read, kw in calls]
    with open(f.path("x86_64"), "rb") as src:
        table = src.read()
    for damaged, all_refused in ((b"x" + table[1:], True), (table[:f.HEADER_SIZE - 1], True),
                                 (table[:-8], False), (None, True)):
        bad = tmp_path / "table.bin"
        if damaged is None:
            bad.unlink()
        else:
            bad.write_bytes(damaged)
        monkeypatch.setattr(f, "path", lambda arch, bad=bad: str(bad))
        refused = 0
        for (read, kw), want in zip(calls, good, strict=True):
            try:
                assert read("x86_64", **kw) == want, kw
            except SetupError as e:
                assert "make generate" in str(e)
                refused += 1
        assert refused == len(calls) if all_refused else refused >= 1


def test_the_committed_ffi_modules_declare_the_uapi_layouts():
    from landlock._ffi import ffi as ll
    from landlock._ffi import ffi_packed
    from seccomp_bpf._ffi import ffi as sb

    assert ffi_packed.sizeof("struct landlock_path_beneath_attr") == 12
    assert ll.sizeof("struct landlock_ruleset_attr") == 24
    assert sb.sizeof("struct sock_filter") == 8


NEVER_ON_THE_RUN_PATH = ("seccomp_bpf._asm", "seccomp_bpf._compiler", "seccomp_bpf._disasm",
                         "seccomp_bpf._simulate", "cffi", "pycparser")


@pytest.mark.skipif(sys.platform != "linux", reason="the Linux launcher")
@pytest.mark.parametrize("args", [["run", "--", "true"], ["run", "--log-denials", "--", "true"],
                                  ["run", "--profile", ":workspace", "--", "true"]])
def test_a_launch_imports_no_compiler(tmp_path, args):
    """A real launch (supervisor and the forked child: ``-X importtime`` reports both on the
    one stderr) installs the precompiled filters and never imports the rule compiler, the
    assembler or cffi's C parser."""
    code = f"import lsandbox.cli as c\nraise SystemExit(c.main({args!r}))"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "lsandbox.linux._filters" in imported  # the launch went through the precompiled table
    assert not imported & set(NEVER_ON_THE_RUN_PATH), sorted(imported & set(NEVER_ON_THE_RUN_PATH))
