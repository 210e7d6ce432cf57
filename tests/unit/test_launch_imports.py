"""What a real ``lsandbox run -- true`` imports: the console script under ``-X importtime`` (the
supervisor and its forked children report on the one stderr).

Every module on that path is paid by every sandboxed command, so the modules a CLI usually
pays for and lsandbox does not need to launch are pinned out here; a change that brings one
back in should import it where it is used (see ``lsandbox/cli/__init__.py``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._sandbox import LSANDBOX

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the Linux launcher")

#: Standard library modules not needed to launch (``signal``: the launcher uses ``_signal``,
#: the same functions without the enum wrappers; ``collections.abc``: its names are only
#: annotations on the launch path; ``threading``: the lazy broker's thread is a ``_thread``).
HEAVY_STDLIB = ("argparse", "re", "typing", "dataclasses", "ctypes", "pickle", "subprocess", "socket",
                "json", "inspect", "shutil", "tempfile", "logging", "importlib.util", "signal",
                "gettext", "locale", "weakref", "copy", "ipaddress", "difflib", "selectors",
                "asyncio", "contextlib", "textwrap", "string", "datetime", "warnings", "tomllib",
                "collections.abc", "threading")
#: Parts of lsandbox (and its dependencies) that serve other commands, the API, or a command
#: that actually connects (the broker is imported on the first notification). The launch
#: builds and applies Landlock rules as ints (``landlock._rights``, ``RawRuleset``) and
#: installs precompiled filters: the IntFlag and Enum classes of ``landlock._access`` and
#: ``_ruleset`` and seccomp_bpf's rule model (``_rules``, ``_insn``) are for API users; the
#: TOML line scanner (``_toml_lines``) is for config files.
NOT_FOR_A_LAUNCH = ("lsandbox._api", "lsandbox.linux._broker", "lsandbox.linux._connector",
                    "lsandbox.linux._fastpath", "lsandbox.linux._pathops", "lsandbox.linux._metaops",
                    "lsandbox.linux._identity", "lsandbox.linux._audit", "lsandbox.linux._prefork",
                    "lsandbox.linux._explain", "lsandbox.linux._doctor", "lsandbox.linux._refusals",
                    "lsandbox.linux._filter_a", "lsandbox.proxy", "lsandbox.cli._explain",
                    "lsandbox.cli._check", "lsandbox.cli._doctor", "macos", "seccomp_bpf._asm",
                    "seccomp_bpf._compiler", "seccomp_bpf._disasm", "seccomp_bpf._simulate",
                    "cffi", "pycparser", "prctl", "pyroute2", "landlock._access", "landlock._ruleset",
                    "seccomp_bpf._rules", "seccomp_bpf._insn", "lsandbox.policy._toml_lines",
                    # the other architecture's syscall table
                    "seccomp_bpf._syscalls_aarch64" if os.uname().machine == "x86_64" else "seccomp_bpf._syscalls_x86_64")


def _launch_imports(tmp_path, *args: str) -> list[str]:
    """The modules imported, in the order their imports completed."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-X", "importtime", LSANDBOX, "run", *args, "--", "true"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return [line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
            if line.startswith("import time:") and "imported package" not in line]


def _unwanted(imported: list[str]) -> list[str]:
    return sorted(m for m in set(imported) if m in HEAVY_STDLIB
                  or any(m == p or m.startswith(p + ".") or m.startswith(p + "_") for p in NOT_FOR_A_LAUNCH))


@pytest.mark.parametrize("args", [(), ("--profile", ":read-only"), ("--profile", ":workspace", "--chdir", ".")])
def test_a_cli_launch_imports_only_what_it_needs(tmp_path, args):
    """(``--log-denials`` is not here: reported refusals come from the broker, which is then
    imported in the background at once.)"""
    imported = _launch_imports(tmp_path, *args)
    assert "lsandbox.linux._child" in imported  # the launch went through the console script's path
    assert not _unwanted(imported), _unwanted(imported)


def test_the_supervisor_collects_garbage_again_once_the_sandbox_runs(tmp_path):
    """``console()`` pauses the cyclic garbage collector for the launch; the supervisor then
    waits for the command (and its broker serves it, maybe for hours) with collection on,
    the launch's objects frozen out of its sight."""
    code = """
import gc, os, sys
from lsandbox.linux import _launcher
real_wait = _launcher.wait
def wait(launch, *a, **k):
    os.write(2, f"@@ {gc.isenabled()} {gc.get_freeze_count() > 0}\\n".encode())
    return real_wait(launch, *a, **k)
_launcher.wait = wait
sys.argv = ["lsandbox", "run", "--", "true"]
import lsandbox.cli
lsandbox.cli.console()
"""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "@@ True True" in r.stderr, r.stderr[-2000:]


def test_the_child_imports_nothing_after_the_fork(tmp_path):
    """The forked child restricts itself (Landlock) and then installs its filters: every
    module that takes must be loaded by the supervisor before the fork. Here the policy
    denies reading the repository and ``features()`` is replaced by its own answer (its
    probes import the kernel interfaces): a module the child imported late would fail the
    launch with EACCES."""
    from lsandbox.linux._features import features

    f = features()
    if f.landlock_abi < 1:
        pytest.skip("without Landlock a policy that denies reading is refused")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = f"""
import sys
import lsandbox
from lsandbox.linux import _launcher
from lsandbox.linux._features import Features
_launcher.features = lambda: Features({f.landlock_abi}, {f.user_notif}, {f.namespaces}, {f.root})
pol = lsandbox.load_policy(None, ":workspace", cwd={str(tmp_path)!r}, search=False, deny=[{root!r}])
r = lsandbox.run(["true"], policy=pol, capture_output=True)
sys.stderr.write(str(r.error or ""))
sys.exit(r.returncode)
"""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


def test_what_the_child_uses_of_the_libraries_is_loaded_with_its_module():
    """``landlock`` and ``seccomp_bpf`` load most names on first use (PEP 562). The pre-forked
    launcher (``_prefork``) forks sandboxes from a copy of its caller made earlier, so the
    names the child's code takes from them must be loaded by importing the child's modules,
    never resolved later (in a child that Landlock may already forbid to read them)."""
    import ast
    import inspect
    import textwrap

    from lsandbox.linux import _child, _unix_filter

    used: set[tuple[str, str]] = set()
    for source in (inspect.getsource(_child), inspect.getsource(_unix_filter.install_and_hand_over)):
        tree = ast.parse(textwrap.dedent(source))
        in_annotation: set[int] = set()  # annotations are strings at run time (PEP 563)
        for node in ast.walk(tree):
            ann = (node.annotation if isinstance(node, (ast.arg, ast.AnnAssign))
                   else node.returns if isinstance(node, ast.FunctionDef) else None)
            if ann is not None:
                in_annotation.update(id(n) for n in ast.walk(ann))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in ("sb", "ll") and id(node) not in in_annotation):
                used.add(("seccomp_bpf" if node.value.id == "sb" else "landlock", node.attr))
    assert ("seccomp_bpf", "install_filter") in used and ("landlock", "RESTRICT_LOG_NEW_EXEC_ON") in used
    code = f"""
import sys
import lsandbox.linux._child
class NoImport:
    def find_spec(self, name, path=None, target=None):
        raise ImportError("imported after the child's modules: " + name)
sys.meta_path.insert(0, NoImport())
for module, name in {sorted(used)!r}:
    getattr(sys.modules[module], name)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
