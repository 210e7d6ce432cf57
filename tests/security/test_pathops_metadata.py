"""Issue 19, item 2: without namespaces, file metadata (chmod, chown, utimes, extended
attributes; path and descriptor forms) is decided by path by the broker (``_metaops``):
refused outside the writable roots, performed on the pinned inode inside them.

Shown to fail without the fix: without filter B's metadata rules (``_split.meta_rules``
not added in ``_plan``), every ``*_outside`` answer is "ok" and the victim's mode, times
and attributes change; with ``_meta`` acting on ``/proc/<pid>/cwd/<path>`` instead of the
pin, the swap race changes the outside file's mode.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests._sandbox import LSANDBOX, PY, world_dir
from tests.security._hardening import NOBODY, Exchanger

pytestmark = [pytest.mark.kernel, pytest.mark.security]
NONS = {"LSANDBOX_NO_NAMESPACES": "1"}

PROBE = r"""
import errno, json, os, sys
R = {}
def t(name, f):
    try:
        f()
        R[name] = "ok"
    except OSError as e:
        R[name] = errno.errorcode.get(e.errno, str(e.errno))
V, L = sys.argv[1], sys.argv[2]
me = (os.getuid(), os.getgid())
for where, p in (("outside", V), ("inside", "mine")):
    if where == "inside":
        open(p, "w").close()
    t("chmod_" + where, lambda: os.chmod(p, 0o640))
    t("chown_" + where, lambda: os.chown(p, *me))
    t("utime_" + where, lambda: os.utime(p, (1, 1)))
    t("setxattr_" + where, lambda: os.setxattr(p, "user.x", b"1"))
    t("removexattr_" + where, lambda: os.removexattr(p, "user.y"))
    fd = os.open(p, os.O_RDONLY)
    t("fchmod_" + where, lambda: os.fchmod(fd, 0o640))
    t("fchown_" + where, lambda: os.fchown(fd, *me))
    t("futimens_" + where, lambda: os.utime(fd, (1, 1)))
    t("fsetxattr_" + where, lambda: os.setxattr(fd, "user.x", b"1"))
    os.close(fd)
t("chmod_via_symlink", lambda: os.chmod(L, 0o640))
t("lchown_symlink_inside", lambda: (os.symlink(V, "sl"), os.lchown("sl", *me)))
print("@@" + json.dumps(R))
"""


def _run(argv: list[str], ws: str, nobody: bool, env: dict[str, str]) -> dict:
    e = dict(os.environ)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    e.update(env)
    r = subprocess.run([*(NOBODY if nobody else []), LSANDBOX, "run", "--", *argv], capture_output=True, text=True,
                       env=e, cwd=ws, timeout=120, stdin=subprocess.DEVNULL)
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise AssertionError(f"probe failed: rc={r.returncode} stderr={r.stderr[-3000:]}")


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_metadata_decided_by_path(nobody):
    ws, out = world_dir("lsb-meta-ws-"), world_dir("lsb-meta-out-")
    subprocess.run(["git", "init", "-q", ws], check=True)
    subprocess.run(["chmod", "-R", "a+rwX", ws], check=True)
    victim = os.path.join(out, "victim")
    with open(victim, "w") as f:
        f.write("v")
    os.chmod(victim, 0o600)
    os.setxattr(victim, "user.y", b"keep")
    if nobody:
        os.chown(victim, 65534, 65534)
    os.symlink(victim, os.path.join(out, "link"))
    before = os.stat(victim)
    try:
        got = _run([PY, "-c", PROBE, victim, os.path.join(out, "link")], ws, nobody, NONS)
        for k, v in got.items():
            if k.endswith("_outside") or k == "chmod_via_symlink":
                assert v == "EACCES", (k, v)
        for k in ("chmod", "chown", "utime", "setxattr", "fchmod", "fchown", "futimens", "fsetxattr"):
            assert got[k + "_inside"] in ("ok", "ENOTSUP", "EOPNOTSUPP"), (k, got[k + "_inside"])
        assert got["removexattr_inside"] in ("ENODATA", "ENOTSUP", "EOPNOTSUPP")
        assert got["lchown_symlink_inside"] == "ok"
        after = os.stat(victim)
        assert (after.st_mode, after.st_mtime_ns, after.st_uid) == (before.st_mode, before.st_mtime_ns, before.st_uid)
        assert os.getxattr(victim, "user.y") == b"keep"
        assert os.stat(os.path.join(ws, "mine")).st_mode & 0o777 == 0o640
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


RACE = r"""
import json, os, sys
ok = refused = 0
for i in range(int(sys.argv[1])):
    try:
        os.chmod("src/a", 0o640 if i % 2 else 0o644)
        ok += 1
    except OSError:
        refused += 1
print("@@" + json.dumps({"ok": ok, "refused": refused}))
"""



@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_chmod_swap_race_never_reaches_outside(nobody):
    ws, out = world_dir("lsb-meta-ws-"), world_dir("lsb-meta-out-")
    subprocess.run(["git", "init", "-q", ws], check=True)
    os.makedirs(os.path.join(ws, "src"))
    inside, victim = os.path.join(ws, "src", "t"), os.path.join(out, "victim")
    for p in (inside, victim):
        with open(p, "w") as f:
            f.write("v")
        os.chmod(p, 0o600)
        if nobody:
            os.chown(p, 65534, 65534)
    subprocess.run(["chmod", "-R", "a+rwX", os.path.join(ws, "src")], check=True)
    os.chmod(inside, 0o600)
    os.symlink(inside, os.path.join(ws, "src", "a"))
    os.symlink(victim, os.path.join(ws, "src", "b"))
    racer = Exchanger(os.path.join(ws, "src", "a"), os.path.join(ws, "src", "b"))
    try:
        got = _run([PY, "-c", RACE, "3000"], ws, nobody, NONS)
        swaps = racer.stop()
        assert os.stat(victim).st_mode & 0o777 == 0o600, got
        assert got["ok"] > 0 and got["refused"] > 0 and swaps > 1000, (got, swaps)
    finally:
        racer.close()
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
