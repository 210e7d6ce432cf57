"""Truncation on LTS kernels (issue 12, finding 6): Landlock handles truncate only from ABI 3
(Ubuntu 22.04 has ABI 1, Debian 12 ABI 2), and ABI 1-2 checks an open by its access mode
alone, so ``truncate(path)`` and ``open(O_RDONLY|O_TRUNC)`` would empty a file outside the
writable roots. Filter A refuses both below ABI 3; a file outside keeps its contents.

The victim file is mode 0666, so that for nobody too only the sandbox stands in the way.
Shown to fail without the fix: with ``truncate_guard`` returning False in
``lsandbox.linux._plan``, every ABI 1/2 case below empties the victim.
"""

from __future__ import annotations

import os
import shutil

import pytest

import landlock as ll
from tests._sandbox import world_dir
from tests.security._hardening import probe

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(ll.kernel_abi() < 1, reason="no Landlock on this kernel")]

TRUNC = r"""
W, V = sys.argv[1:3]
t("truncate_outside", lambda: os.truncate(V, 0))
t("open_rdonly_trunc_outside", lambda: os.close(os.open(V, os.O_RDONLY | os.O_TRUNC)))
t("open_mode3_trunc_outside", lambda: os.close(os.open(V, 3 | os.O_TRUNC)))
t("open_wronly_trunc_outside", lambda: os.close(os.open(V, os.O_WRONLY | os.O_TRUNC)))
mine = os.path.join(W, "mine")
with open(mine, "w") as f:
    f.write("0123456789")
def ftrunc():
    fd = os.open(mine, os.O_WRONLY)
    os.ftruncate(fd, 5)
    os.close(fd)
t("ftruncate_inside", ftrunc)
t("open_wronly_trunc_inside", lambda: os.close(os.open(mine, os.O_WRONLY | os.O_TRUNC)))
t("truncate_inside", lambda: os.truncate(mine, 0))
R["victim"] = open(V).read()
"""

CONTENT = "precious data"


@pytest.fixture
def files():
    w, out = world_dir("lsb-trunc-w-"), world_dir("lsb-trunc-o-")
    victim = os.path.join(out, "victim")
    with open(victim, "w") as f:
        f.write(CONTENT)
    os.chmod(victim, 0o666)
    yield w, victim
    shutil.rmtree(w, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def _contents(path: str) -> str:
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize("abi", ["1", "2"])
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
@pytest.mark.parametrize("ns", [False, True], ids=["no-namespaces", "namespaces"])
def test_truncate_refused_below_abi_3(files, abi, nobody, ns):
    w, victim = files
    env = {"LANDLOCK_MAX_ABI": abi, **({} if ns else {"LSANDBOX_NO_NAMESPACES": "1"})}
    got = probe(TRUNC, [w, victim], nobody=nobody, env=env, flags=("-w", w))
    assert {k: got[k] for k in ("truncate_outside", "open_rdonly_trunc_outside",
                                "open_mode3_trunc_outside")} == dict.fromkeys(
        ("truncate_outside", "open_rdonly_trunc_outside", "open_mode3_trunc_outside"), "EACCES"), got
    # an open for writing outside: Landlock (EACCES), or the read-only mount view first (EROFS)
    assert got["open_wronly_trunc_outside"] == ("EROFS" if ns else "EACCES"), got
    assert got["victim"] == CONTENT and _contents(victim) == CONTENT
    # a descriptor opened for writing still truncates; truncate(2) by path is the price
    assert got["ftruncate_inside"] == got["open_wronly_trunc_inside"] == "ok"
    assert got["truncate_inside"] == "EACCES"


@pytest.mark.skipif(ll.kernel_abi() < 3, reason="Landlock ABI 3 (truncate) is not on this kernel")
@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_from_abi_3_landlock_decides(files, nobody):
    """With Landlock TRUNCATE no guard is compiled in: truncate(2) works inside the roots and
    Landlock refuses it outside."""
    w, victim = files
    got = probe(TRUNC, [w, victim], nobody=nobody, env={"LANDLOCK_MAX_ABI": "3", "LSANDBOX_NO_NAMESPACES": "1"},
                flags=("-w", w))
    assert got["truncate_outside"] == got["open_rdonly_trunc_outside"] == "EACCES"
    assert got["truncate_inside"] == "ok" and _contents(victim) == CONTENT


def test_truncation_is_real_unsandboxed(files):
    """The probe is real: outside the sandbox O_RDONLY|O_TRUNC empties the file."""
    _w, victim = files
    code = ("V = sys.argv[1]\nt('rdonly_trunc', lambda: os.close(os.open(V, os.O_RDONLY | os.O_TRUNC)))\n"
            "R['victim'] = open(V).read()")
    assert probe(code, [victim], nobody=True, env={}, sandboxed=False) == {"rdonly_trunc": "ok", "victim": ""}
