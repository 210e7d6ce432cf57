"""The public API, pinned (after trio's ``_tests/test_exports.py``): the names ``lsandbox``
exports, that ``dir(lsandbox)`` shows them and nothing private, where each one lives, and the
signatures of the entry points. A change here is a change of the API: make it on purpose,
here and in the changelog, never as a side effect of a refactor."""

from __future__ import annotations

import inspect
import subprocess
import sys

import lsandbox

EXPORTS = [
    "CommandNotExecutableError", "CommandNotFoundError", "CompletedSandbox", "Denial",
    "FilesystemPolicy", "FsAccess", "FsRule", "NetworkPolicy", "Policy", "PolicyError", "Sandbox", "SandboxError",
    "SetupError", "SocketAccess", "UnenforceableError", "UnixSocketRule", "load_policy", "run",
]

SIGNATURES = {
    "run": "(args: 'Sequence[str]', *, policy: 'Policy | None' = None, capture_output: 'bool' = "
           "False, text: 'bool' = False, timeout: 'float | None' = None, input: 'Any' = None, "
           "cwd: 'str | None' = None, env: 'Mapping[str, str] | None' = None, check: 'bool' = "
           "False, stdout: 'Any' = None, stderr: 'Any' = None, log_denials: 'bool' = False, "
           "pass_fds: 'Sequence[int]' = ()) -> 'CompletedSandbox'",
    "Sandbox": "(args: 'Sequence[str]', *, policy: 'Policy | None' = None, stdin: 'Any' = None, "
               "stdout: 'Any' = None, stderr: 'Any' = None, cwd: 'str | None' = None, "
               "env: 'Mapping[str, str] | None' = None, text: 'bool' = False, "
               "log_denials: 'bool' = False, pass_fds: 'Sequence[int]' = ()) -> 'None'",
    "load_policy": "(config: 'str | None' = None, profile: 'str | None' = None, *, "
                   "cwd: 'str | None' = None, writable: 'Sequence[str]' = (), "
                   "allow_unix_sockets: 'Sequence[str]' = (), allow_domains: 'Sequence[str]' = (), "
                   "network: 'bool | None' = None, requirements: 'str | None' = None, "
                   "search: 'bool' = True, env: 'Mapping[str, str] | None' = None, "
                   "read: 'Sequence[str]' = (), deny: 'Sequence[str]' = (), "
                   "setenv: 'Sequence[str] | Mapping[str, str]' = (), "
                   "unsetenv: 'Sequence[str]' = (), clearenv: 'bool' = False) -> 'Policy'",
}

SANDBOX_MEMBERS = ["communicate", "denial_notes", "denials", "fs_denials_unobservable", "kill",
                   "poll", "send_signal", "socket_dir", "terminate", "wait"]

COMPLETED_ATTRIBUTES = ["args", "returncode", "stdout", "stderr", "denials", "error",
                        "fs_denials_unobservable", "denial_notes", "hints"]

ERRORS = {  # name -> the builtins it also is (so `except ValueError` keeps working)
    "SandboxError": (Exception,),
    "PolicyError": (ValueError,),
    "UnenforceableError": (ValueError,),
    "SetupError": (OSError,),
    "CommandNotFoundError": (FileNotFoundError,),
    "CommandNotExecutableError": (PermissionError,),
}


def test_all_is_exactly_the_public_api():
    assert lsandbox.__all__ == EXPORTS


def test_every_export_resolves_and_lives_in_a_private_module():
    for name in EXPORTS:
        obj = getattr(lsandbox, name)
        module = obj.__module__
        assert module.startswith("lsandbox."), (name, module)
        assert any(part.startswith("_") for part in module.split(".")[1:]), (name, module)


def _dir_in_fresh_interpreter(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"import lsandbox\n{code}\nprint(dir(lsandbox))"],
                         capture_output=True, text=True, check=True).stdout
    return eval(out)  # noqa: S307 - the repr of a list of str printed by our own child


def test_dir_shows_the_exports_and_dunders_only():
    """Neither ``TYPE_CHECKING``, the lazy-import table, ``annotations`` (from the
    ``__future__`` import) nor a submodule bound by importing it."""
    for code in ("", "import lsandbox.cli, lsandbox.policy, lsandbox._api; lsandbox.run"):
        names = _dir_in_fresh_interpreter(code)
        private = [n for n in names if n not in EXPORTS and not (n.startswith("__") and n.endswith("__"))]
        assert private == [], (code, private)
        assert set(EXPORTS) <= set(names)
    assert not hasattr(lsandbox, "TYPE_CHECKING")


def test_star_import_gives_the_exports():
    ns: dict[str, object] = {}
    exec("from lsandbox import *", ns)  # noqa: S102
    assert sorted(k for k in ns if k != "__builtins__") == EXPORTS


def test_unknown_attribute_is_an_attribute_error():
    try:
        lsandbox.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("lsandbox.no_such_name resolved")


def test_entry_point_signatures():
    for name, expected in SIGNATURES.items():
        assert str(inspect.signature(getattr(lsandbox, name))) == expected, name


def test_sandbox_and_result_members():
    assert [m for m in dir(lsandbox.Sandbox) if not m.startswith("_")] == SANDBOX_MEMBERS
    done = lsandbox.CompletedSandbox(["true"], 0)
    assert list(vars(done)) == COMPLETED_ATTRIBUTES
    assert issubclass(lsandbox.CompletedSandbox, subprocess.CompletedProcess)


def test_error_hierarchy():
    for name, builtins in ERRORS.items():
        cls = getattr(lsandbox, name)
        assert issubclass(cls, lsandbox.SandboxError)
        for b in builtins:
            assert issubclass(cls, b), (name, b)
