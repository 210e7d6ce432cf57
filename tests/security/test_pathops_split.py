"""Issue 19: without namespaces, creation in the directories Landlock had to split for a
read-only carve-out (``.git``) is performed by the path-operation broker (``_pathops``),
and nothing it performs lands in a carve-out, outside the writable roots, or elsewhere than
the directory it decided on.

Shown to fail without the fix: without the filter B rules (``_split.notify_rules`` not added
in ``_filters.compile_filter_b``) the table's creations answer EACCES (the issue's table); with the
act performed by path (``os.open(f"/proc/{pid}/cwd/{path}")``) instead of relative to the
pinned parent, the swap race creates files outside; with ``_allowed`` returning None for
guarded names, ``.agents`` is created; with ``_as_target`` not applying the umask, the mode
test sees 0o644 instead of 0o640.
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
MODES = [("root-no-namespaces", False, NONS), ("nobody-no-namespaces", True, NONS)]
NONS_MODES = MODES
#: With namespaces: the left-hand column of the issue's table. (Shown to fail without the
#: re-entered cwd in _child: the command's inherited cwd was the directory under the mount
#: view's writable bind, so every relative write answered EROFS.)
WITH_NS = [pytest.param(False, {}, id="root"), pytest.param(True, {}, id="nobody")]


def _ws() -> str:
    """A git repository nobody can write (world-writable), with an existing subdirectory."""
    d = world_dir("lsb-split-")
    subprocess.run(["git", "init", "-q", d], check=True)
    os.makedirs(os.path.join(d, "src"))
    with open(os.path.join(d, "src", "b.py"), "w") as f:
        f.write("a\n")
    subprocess.run(["chmod", "-R", "a+rwX", d], check=True)
    return d


def _run(argv: list[str], ws: str, nobody: bool, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    e.update(env)
    return subprocess.run([*(NOBODY if nobody else []), LSANDBOX, "run", "--", *argv], capture_output=True,
                          text=True, env=e, cwd=ws, timeout=timeout, stdin=subprocess.DEVNULL)


TABLE = r"""
r() { "$@" >/dev/null 2>&1 && echo ok || echo fail; }
echo "new=$(r sh -c 'echo x > new.py')"
echo "mkdir=$(r mkdir build)"
echo "inbuild=$(r sh -c 'echo z > build/f && mkdir -p build/a/b && echo q > build/a/b/c')"
echo "append=$(r sh -c 'echo y >> src/b.py')"
echo "appendnew=$(r sh -c 'echo y >> new.py')"
echo "lock=$(r python3 -c 'import multiprocessing; multiprocessing.Lock()')"
echo "pool=$(r python3 -c 'import multiprocessing as m; from multiprocessing import shared_memory as sm
assert m.get_context("spawn").Pool(2).map(abs, [-1, -2]) == [1, 2]
s = sm.SharedMemory(create=True, size=10); t = sm.SharedMemory(s.name); t.close(); s.close(); s.unlink()')"
echo "gitadd=$(r git add new.py)"
echo "mv=$(r mv new.py moved.py)"
echo "rm=$(r rm build/f)"
"""


ABI_CLAMPED = [pytest.param(nobody, {**NONS, "LANDLOCK_MAX_ABI": abi}, id=f"{who}-no-namespaces-abi{abi}")
               for abi in ("1", "2") for nobody, who in ((False, "root"), (True, "nobody"))]


@pytest.mark.parametrize("nobody,env", [pytest.param(*m[1:], id=m[0]) for m in MODES] + ABI_CLAMPED + WITH_NS)
def test_issue_table(nobody, env):
    ws = _ws()
    try:
        r = _run(["sh", "-c", TABLE], ws, nobody, env)
        got = dict(line.split("=", 1) for line in r.stdout.split())
        assert got == {"new": "ok", "mkdir": "ok", "inbuild": "ok", "append": "ok", "appendnew": "ok",
                       "lock": "ok", "pool": "ok", "gitadd": "fail", "mv": "ok", "rm": "ok"}, r.stderr
        with open(os.path.join(ws, "moved.py")) as f:
            assert f.read() == "x\ny\n"
        with open(os.path.join(ws, "build", "a", "b", "c")) as f:
            assert f.read() == "q\n"
        assert not os.path.exists(os.path.join(ws, "build", "f"))
        st = os.stat(os.path.join(ws, "moved.py"))
        assert st.st_uid == (65534 if nobody else 0)
    finally:
        shutil.rmtree(ws, ignore_errors=True)


@pytest.mark.parametrize("nobody,env", [m[1:] for m in NONS_MODES], ids=[m[0] for m in NONS_MODES])
def test_venv_and_pip(nobody, env):
    ws = _ws()
    try:
        r = _run(["sh", "-c", "python3 -m venv .venv && .venv/bin/pip --version"], ws, nobody, env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.startswith("pip ") and os.path.join(ws, ".venv") in r.stdout
    finally:
        shutil.rmtree(ws, ignore_errors=True)


ATTACK = r"""
import ctypes, errno, json, os, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
R = {}
def t(name, f):
    try:
        f()
        R[name] = "ok"
    except OSError as e:
        R[name] = errno.errorcode.get(e.errno, str(e.errno))
def sc(name, nr, *args):
    a = [ctypes.c_char_p(x) if isinstance(x, bytes) else ctypes.c_long(x) for x in args]
    r = libc.syscall(ctypes.c_long(nr), *a)
    R[name] = "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
    if r >= 0 and name.startswith(("open", "creat")):
        os.close(r)
NR = dict(open=2, creat=85, openat=257, mkdir=83, mknod=133, symlink=88, link=86, rename=82, renameat2=316,
          unlink=87, rmdir=84)
OC = os.O_CREAT | os.O_WRONLY
with open("victim", "w") as f:
    f.write("v")
hooks = os.open(".git/hooks", os.O_PATH | os.O_DIRECTORY)
for target in (b".git/hooks/x", b".agents", b".codex", b".lsandbox", b".git"):
    k = target.decode()
    sc("open " + k, NR["open"], target, OC, 0o644)
    sc("creat " + k, NR["creat"], target, 0o644)
    sc("openat " + k, NR["openat"], -100, target, OC, 0o644)
    sc("mkdir " + k, NR["mkdir"], target, 0o755)
    sc("mkfifo " + k, NR["mknod"], target, 0o10644, 0)
    sc("symlink " + k, NR["symlink"], b"/etc/passwd", target)
    sc("link " + k, NR["link"], b"victim", target)
    sc("rename " + k, NR["rename"], b"victim", target)
    sc("exchange " + k, NR["renameat2"], -100, b"victim", -100, target, 2)
sc("openat hooks-dirfd", NR["openat"], hooks, b"y", OC, 0o644)
TMP = os.O_TMPFILE | os.O_WRONLY
OUTSIDE = OUT + ""
for target in (b".git", b".git/hooks", b".git/hooks/", OUTSIDE.encode()):
    sc("tmpfile in " + target.decode().replace(OUTSIDE, "outside"), NR["openat"], -100, target, TMP, 0o644)
sc("tmpfile in hooks-dirfd", NR["openat"], hooks, b".", TMP, 0o644)
os.symlink(".git/hooks", "to_hooks")
sc("tmpfile through symlink to hooks", NR["openat"], -100, b"to_hooks", TMP, 0o644)
sc("rename .git away", NR["rename"], b".git", b"notgit")
sc("unlink .git/config", NR["unlink"], b".git/config")
sc("rmdir .git/hooks", NR["rmdir"], b".git/hooks")
sc("link from .git", NR["link"], b".git/config", b"cfg")
sc("link from outside", NR["link"], OUT_FILE.encode(), b"outside")
sc("open through symlink to .git", NR["open"], b"victim", OC, 0o644)
os.symlink(".git/hooks/z", "dangling")  # brokered symlink in the root
sc("open dangling into .git", NR["open"], b"dangling", OC, 0o644)
os.symlink(OUT + "/viaLink", "out_link")
sc("open dangling outside", NR["open"], b"out_link", OC, 0o644)
print("@@" + json.dumps(R))
"""


def _parse(r: subprocess.CompletedProcess) -> dict:
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise AssertionError(f"probe failed: rc={r.returncode} stderr={r.stderr[-3000:]}")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of x86_64")
@pytest.mark.parametrize("nobody,env", [m[1:] for m in NONS_MODES], ids=[m[0] for m in NONS_MODES])
def test_no_creation_in_carve_outs_through_any_call(nobody, env):
    ws, out = _ws(), world_dir("lsb-split-out-")
    before = sorted(os.listdir(os.path.join(ws, ".git")))
    hooks = sorted(os.listdir(os.path.join(ws, ".git", "hooks")))
    out_file = os.path.join(out, "secret")
    with open(out_file, "w") as f:
        f.write("s")
    os.chmod(out_file, 0o666)
    try:
        code = ATTACK.replace("OUT_FILE", repr(out_file)).replace("OUT +", repr(out) + " +")
        R = _parse(_run([PY, "-c", code], ws, nobody, env))
        for k, v in R.items():
            if k.startswith(("open ", "creat ", "openat ", "mkdir ", "mkfifo ", "symlink ", "link ",
                             "rename ", "exchange ")) and not k.endswith((".git", "victim")):
                # exchange needs both names to exist: the kernel answers ENOENT first
                assert v in ("EACCES", "EPERM") or (k.startswith("exchange ") and v == "ENOENT"), (k, v)
        # .git exists: creating it answers EEXIST where the kernel checks existence first
        for k in ("open .git", "creat .git", "openat .git", "mkdir .git", "mkfifo .git", "symlink .git",
                  "link .git", "rename .git", "exchange .git"):
            assert R[k] in ("EACCES", "EEXIST", "EISDIR", "EPERM"), (k, R[k])
        for k in ("tmpfile in .git", "tmpfile in .git/hooks", "tmpfile in .git/hooks/", "tmpfile in outside",
                  "tmpfile in hooks-dirfd", "tmpfile through symlink to hooks"):
            assert R[k] in ("EACCES", "EPERM"), (k, R[k])
        for k in ("openat hooks-dirfd", "rename .git away", "unlink .git/config", "rmdir .git/hooks",
                  "link from .git", "link from outside", "open dangling into .git", "open dangling outside"):
            assert R[k] in ("EACCES", "EPERM"), (k, R[k])
        assert R["open through symlink to .git"] == "ok"  # victim is a plain file in the root
        assert sorted(os.listdir(os.path.join(ws, ".git"))) == before
        assert sorted(os.listdir(os.path.join(ws, ".git", "hooks"))) == hooks
        for name in (".agents", ".codex", ".lsandbox", "notgit", "cfg", "outside"):
            assert not os.path.lexists(os.path.join(ws, name)), name
        assert os.listdir(out) == ["secret"]
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


SEMANTICS = r"""
import errno, json, os, sys, threading
R = {}
def t(name, f):
    try:
        v = f()
        R[name] = "ok" if v is None or isinstance(v, int) else v
        if isinstance(v, int) and name.startswith("open"):
            os.close(v)
    except OSError as e:
        R[name] = errno.errorcode.get(e.errno, str(e.errno))
OC = os.O_CREAT | os.O_WRONLY
os.umask(0o027)
t("open new", lambda: os.open("n1", OC, 0o666))
R["mode n1"] = oct(os.stat("n1").st_mode & 0o7777)
t("mkdir new", lambda: os.mkdir("d1", 0o777))
R["mode d1"] = oct(os.stat("d1").st_mode & 0o7777)
t("mkfifo", lambda: os.mkfifo("f1", 0o666))
R["mode f1"] = oct(os.stat("f1").st_mode & 0o7777)
fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o666)  # an unnamed file in the split root
R["tmpfile"] = (oct(os.fstat(fd).st_mode & 0o7777), os.write(fd, b"t"), os.fstat(fd).st_nlink)
os.close(fd)
t("tmpfile in d1/", lambda: os.open("d1/", os.O_TMPFILE | os.O_RDWR, 0o600))
t("tmpfile in a file", lambda: os.open("n1", os.O_TMPFILE | os.O_RDWR, 0o600))
t("tmpfile missing", lambda: os.open("nodir", os.O_TMPFILE | os.O_RDWR, 0o600))
t("tmpfile read-only", lambda: os.open(".", os.O_TMPFILE | os.O_RDONLY, 0o600))
t("tmpfile no O_DIRECTORY", lambda: os.open(".", 0o20000000 | os.O_RDWR, 0o600))
os.umask(0o022)
t("open excl existing", lambda: os.open("n1", OC | os.O_EXCL, 0o644))
os.symlink("nowhere", "sl")
t("open excl symlink", lambda: os.open("sl", OC | os.O_EXCL, 0o644))
t("open nofollow symlink", lambda: os.open("sl", OC | os.O_NOFOLLOW, 0o644))
t("open follows dangling", lambda: os.open("sl", OC, 0o644))
R["nowhere"] = os.path.exists("nowhere")
t("mkdir existing", lambda: os.mkdir("d1"))
t("open missing dir", lambda: os.open("nodir/x", OC, 0o644))
t("open under file", lambda: os.open("n1/x", OC, 0o644))
t("open trailing slash", lambda: os.open("newdir/", OC, 0o644))
t("open dir for write", lambda: os.open("d1", OC, 0o644))
t("open long name", lambda: os.open("x" * 256, OC, 0o644))
t("mkdir long name", lambda: os.mkdir("y" * 256))
t("open 255 name", lambda: os.open("z" * 255, OC, 0o644))
t("open cloexec", lambda: os.open("n2", OC | os.O_CLOEXEC, 0o644))
fd = os.open("n3", OC | os.O_CLOEXEC, 0o644)
R["cloexec kept"] = not os.get_inheritable(fd)
os.close(fd)
fd = os.open("n4", OC, 0o644)
R["inheritable kept"] = os.get_inheritable(fd)
R["append"] = os.write(fd, b"abc")
os.close(fd)
t("open trunc existing", lambda: os.open("n4", OC | os.O_TRUNC, 0o644))
R["size n4"] = os.stat("n4").st_size
t("rename noreplace", lambda: os.rename("n2", "n3"))
t("rename onto dir", lambda: os.rename("n3", "d1"))
t("rmdir nonempty", lambda: (os.open("d1/x", OC, 0o644), os.rmdir("d1"))[1])
t("unlink dir", lambda: os.unlink("d1"))
t("link dir", lambda: os.link("d1", "d2"))
t("link file", lambda: os.link("n4", "n5"))
t("symlink existing", lambda: os.symlink("a", "n5"))
d = os.open("d1", os.O_PATH | os.O_DIRECTORY)
t("openat dirfd", lambda: os.open("viafd", OC, 0o644, dir_fd=d))
R["viafd"] = os.path.exists("d1/viafd")
res = {}
def other_cwd():
    pid = os.fork()
    if pid == 0:
        os.chdir("d1")
        try:
            os.close(os.open("fromchild", OC, 0o644))
            os._exit(0)
        except OSError:
            os._exit(1)
    res["child"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    res["thread"] = os.open("fromthread", OC, 0o644, dir_fd=d)
th = threading.Thread(target=other_cwd)
th.start(); th.join()
R["child cwd"] = (res["child"], os.path.exists("d1/fromchild"), os.path.exists("fromchild"))
R["thread dirfd"] = os.path.exists("d1/fromthread")
print("@@" + json.dumps(R, sort_keys=True))
"""


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_semantics_and_errors_are_the_kernels(nobody):
    """The same script, brokered (the repository root is split) and unsandboxed: identical
    results, modes (umask applied) and errors."""
    ws, plain = _ws(), world_dir("lsb-split-plain-")
    try:
        got = _parse(_run([PY, "-c", SEMANTICS], ws, nobody, NONS))
        e = dict(os.environ)
        want = _parse(subprocess.run([*(NOBODY if nobody else []), PY, "-c", SEMANTICS], capture_output=True,
                                     text=True, env=e, cwd=plain, timeout=60))
        assert got == want
        assert got["mode n1"] == "0o640" and got["mode d1"] == "0o750" and got["open long name"] == "ENAMETOOLONG"
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(plain, ignore_errors=True)


RACE = r"""
import json, os, sys
made = refused = 0
for i in range(int(sys.argv[1])):
    for path in (f"src/a/f{i}", f"src/a/sub{i}"):
        try:
            if "/f" in path:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            else:
                os.mkdir(path)
            made += 1
        except OSError:
            refused += 1
print("@@" + json.dumps({"made": made, "refused": refused}))
"""



@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_parent_swap_race_creates_nothing_outside(nobody):
    """A racing process exchanges the parent (a symlink to the split repository root) with a
    symlink to a directory outside the writable roots (writable by the user: only the
    sandbox protects it) as fast as it can, while the sandboxed command creates files and
    directories through it, thousands of times. (The racer runs outside the sandbox: inside,
    its renames would be brokered too, serialized with the creations.) Everything made lands
    in the root, nothing outside."""
    ws, out = _ws(), world_dir("lsb-split-race-")
    os.symlink(ws, os.path.join(ws, "src", "a"))
    os.symlink(out, os.path.join(ws, "src", "b"))
    racer = Exchanger(os.path.join(ws, "src", "a"), os.path.join(ws, "src", "b"))
    try:
        got = _parse(_run([PY, "-c", RACE, "1500"], ws, nobody, NONS, timeout=300))
        swaps = racer.stop()
        assert os.listdir(out) == [], f"{len(os.listdir(out))} entries created outside ({got})"
        inside = [e for e in os.listdir(ws) if e.startswith(("f", "sub"))]
        assert len(inside) == got["made"]
        assert got["made"] > 0 and got["refused"] > 0 and swaps > 1000, (got, swaps)
    finally:
        racer.close()
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


NPM = ("export HOME=$PWD/.home npm_config_cache=$PWD/.npmcache; npm init -y >/dev/null && "
       "npm install --no-audit --no-fund --offline \"$1\" >/dev/null && node -e 'console.log(require(\"tinypkg\"))'")


@pytest.mark.skipif(not shutil.which("npm") or not shutil.which("node"), reason="npm/node not installed")
@pytest.mark.parametrize("nobody,env", [m[1:] for m in NONS_MODES], ids=[m[0] for m in NONS_MODES])
def test_npm_install_from_a_local_tarball(nobody, env):
    ws, src = _ws(), world_dir("lsb-split-npm-")
    try:
        with open(os.path.join(src, "package.json"), "w") as f:
            json.dump({"name": "tinypkg", "version": "1.0.0", "main": "index.js"}, f)
        with open(os.path.join(src, "index.js"), "w") as f:
            f.write("module.exports = 42\n")
        subprocess.run(["npm", "pack", "--silent"], cwd=src, check=True, capture_output=True, timeout=120)
        tgz = os.path.join(src, "tinypkg-1.0.0.tgz")
        os.chmod(tgz, 0o644)
        r = _run(["sh", "-c", NPM, "sh", tgz], ws, nobody, env, timeout=300)
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stderr[-2000:]
        assert os.path.isdir(os.path.join(ws, "node_modules", "tinypkg"))
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)
