"""Init's fork of the command (``_child._fork_command``): the C path (``_fastpath_child.h``, vfork)
and the Python path give the command the same process state and the supervisor the same
reports and exit codes, step for step: signals unblocked and SIGPIPE/SIGXFSZ back to their
defaults, PDEATHSIG, its own process group; a failed step before ``execve`` reported as
SETUP at step INIT and exit 125; a failed ``execve`` as EXEC with "<argv0>: strerror" and exit
126 or 127. Run as root and as nobody, each case once per path, in a forked child that holds
init's signal mask as init does."""

from __future__ import annotations

import os
import struct
import sys

import pytest

from tests._sandbox import PY, rmtree, world_dir
from tests._util import run_in_child

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(sys.platform != "linux", reason="Linux")]
USERS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])


def _compiled() -> bool:
    from lsandbox.linux._fastpath import child_module

    return child_module() is not None


PATHS = pytest.mark.parametrize("path", [
    pytest.param("c", marks=pytest.mark.skipif(not _compiled(), reason="_fastpath_c not built (make setup)")),
    "python",
])


class _Spec:
    def __init__(self, argv: list[str], executable: str, report_fd: int, env: dict | None = None) -> None:
        self.argv, self.executable, self.report_fd = tuple(argv), executable, report_fd
        self.env = dict(os.environ) if env is None else env
        self.tty, self.prepared = None, None


def _fork(path: str, argv: list[str], executable: str | None = None, env: dict | None = None,
          refuse_setpgid: bool = False) -> tuple[int, list[tuple], bytes]:
    """In a child of the test: init's mask blocked, the command forked by ``path``, its wait
    status, the reports and its stdout."""
    import signal

    from lsandbox.linux import _child
    from lsandbox.linux._reports import read_all

    _child._executor = None
    if path == "c":
        _child.use_executor()
        assert _child._executor is not None
    mask = set(_child.FORWARDED) | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    r, w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe()
    os.dup2(out_w, 1)
    os.close(out_w)
    if refuse_setpgid:
        _refuse_setpgid()
    pid = _child._fork_command(_Spec(argv, executable or argv[0], w, env), mask)
    os.close(w)
    os.close(1)
    out = b""
    while chunk := os.read(out_r, 65536):
        out += chunk
    status = os.waitpid(pid, 0)[1]
    return status, [(x.kind, x.step, x.errno, x.text) for x in read_all(r)], out


def _refuse_setpgid() -> None:
    """A seccomp filter of this process: setpgid fails with EPERM (everything else allowed)."""
    import seccomp_bpf as sb

    nr = sb.syscall_number("setpgid")
    ld, jeq, ret = 0x20, 0x15, 0x06
    prog = [(ld, 0, 0, 0), (jeq, 0, 1, nr), (ret, 0, 0, 0x00050000 | 1), (ret, 0, 0, 0x7FFF0000)]
    import _prctl

    _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, 1)
    sb.install_filter(b"".join(struct.pack("=HBBI", *i) for i in prog))


def _run(nobody: bool, path: str, argv: list[str], executable: str | None = None, env: dict | None = None,
         refuse_setpgid: bool = False) -> tuple[int, list[tuple], bytes]:
    return run_in_child(_fork, path, argv, executable, env, refuse_setpgid, as_nobody=nobody).unwrap()


@USERS
@PATHS
def test_the_command_runs_with_init_s_signals_unblocked_its_own_group_and_pdeathsig(path, nobody):
    code = ("import ctypes, os; libc = ctypes.CDLL(None); v = ctypes.c_int(); libc.prctl(2, ctypes.byref(v));"
            "print(v.value, os.getpgrp() == os.getpid(), open('/proc/self/status').read())")
    status, reports, out = _run(nobody, path, [PY, "-S", "-c", code])
    assert os.waitstatus_to_exitcode(status) == 0 and reports == []
    deathsig, own_group, proc = out.decode().split(" ", 2)
    assert (int(deathsig), own_group) == (9, "True")
    fields = dict(line.split(":\t", 1) for line in proc.splitlines() if ":\t" in line)
    assert int(fields["SigBlk"], 16) == 0
    status, _, out = _run(nobody, path, ["cat", "/proc/self/status"], "/bin/cat")
    fields = dict(line.split(":\t", 1) for line in out.decode().splitlines() if ":\t" in line)
    sigpipe, sigxfsz = 1 << 12, 1 << 24
    assert int(fields["SigIgn"], 16) & (sigpipe | sigxfsz) == 0  # ignored in the Python that forked it
    assert int(fields["SigBlk"], 16) == 0


def _exec_failures(nobody: bool, path: str, tmp: str) -> list[tuple]:
    script = os.path.join(tmp, "noexec")
    with open(script, "w") as f:
        f.write("not a program\n")
    os.chmod(script, 0o755)
    cases = [(["no-such\ncmd"], os.path.join(tmp, "missing")), (["adir"], tmp), (["noexec"], script)]
    out = []
    for argv, exe in cases:
        status, reports, _ = _run(nobody, path, argv, exe)
        out.append((os.waitstatus_to_exitcode(status), reports))
    return out


@USERS
def test_a_failed_execve_is_reported_alike_by_both_paths(nobody):
    tmp = world_dir("lsb-cmdfork-")
    try:
        python = _exec_failures(nobody, "python", tmp)
        assert python == [
            (127, [(3, 9, 2, "no-such cmd: No such file or directory")]),
            (126, [(3, 9, 13, "adir: Permission denied")]),
            (126, [(3, 9, 8, "noexec: Exec format error")]),
        ]
        if _compiled():
            assert _exec_failures(nobody, "c", tmp) == python
    finally:
        rmtree(tmp)


@USERS
def test_a_failed_step_before_execve_is_a_setup_report_from_both_paths(nobody):
    results = [_run(nobody, p, ["true"], "/bin/true", refuse_setpgid=True)[:2]
               for p in (["python", "c"] if _compiled() else ["python"])]
    for status, reports in results:
        assert os.waitstatus_to_exitcode(status) == 125
        assert reports == [(2, 8, 1, "[Errno 1] Operation not permitted")]


@PATHS
def test_what_os_execve_refuses_takes_the_python_path(path):
    """An argv or environment ``os.execve`` refuses (a NUL byte, a name holding "="): the C path
    is not taken, and the report is Python's own."""
    status, reports, _ = _run(False, path, ["true"], "/bin/true", env={"A=B": "1"})
    assert os.waitstatus_to_exitcode(status) == 126
    assert reports == [(3, 9, 0, "true: illegal environment variable name")]


def test_report_constants_match_the_c_executor():
    from lsandbox.linux._fastpath_build import CHILD_HEADER
    from lsandbox.linux._reports import Kind, Step

    with open(CHILD_HEADER) as f:
        src = f.read()
    for name, value in (("KIND_SETUP", Kind.SETUP), ("KIND_EXEC", Kind.EXEC), ("STEP_INIT", Step.INIT),
                        ("STEP_EXEC", Step.EXEC)):
        assert f"#define LSB_{name} {value}\n" in src


def test_init_stage_and_securebits_constants_match_the_c_executor():
    from lsandbox.linux import _caps, _child
    from lsandbox.linux._fastpath_build import CHILD_HEADER

    with open(CHILD_HEADER) as f:
        src = f.read()
    stages = ("PDEATHSIG", "PROCFS", "CHDIR", "CAPS", "RESTRICT", "FILTER_B", "HANDOVER", "FILTER_A", "DONE")
    for name in stages:
        assert f"LSB_S_{name} = {getattr(_child, 'S_' + name)}" in src
    assert f"#define LSB_SECUREBITS {_caps.SECUREBITS:#X}".replace("0X", "0x") in src
    assert f"#define LSB_SECBIT_KEEP_CAPS {_caps.SECBIT_KEEP_CAPS:#x}" in src


def _serve(path: str, argv: list[str]) -> tuple[list[tuple], bytes]:
    """``_child._init`` in a child of the test (C: lsb_serve_init, or Python): a helper
    process sends this init SIGUSR1 after a moment; the reports and the command's output."""
    import signal
    import time

    from lsandbox.linux import _child
    from lsandbox.linux._reports import read_all

    _child._executor = None
    if path == "c":
        _child.use_executor()
    r, w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(r)
        os.close(out_r)
        os.dup2(out_w, 1)
        me = os.getpid()
        if os.fork() == 0:  # the sender: also a child init must reap
            time.sleep(0.5)
            os.kill(me, signal.SIGUSR1)
            os._exit(0)
        try:
            _child._init(_Spec(argv, argv[0], w))
        finally:
            os._exit(126)
    os.close(w)
    os.close(out_w)
    out = b""
    while chunk := os.read(out_r, 65536):
        out += chunk
    assert os.waitpid(init, 0)[1] == 0
    return [(x.kind, x.value, x.text) for x in read_all(r)], out


@USERS
@PATHS
def test_init_forwards_signals_reaps_and_reports_the_command_s_status(path, nobody):
    script = "trap 'echo got; exit 9' USR1; (sleep 0.1; exit 3) & while :; do sleep 0.05; done"
    reports, out = run_in_child(_serve, path, ["/bin/sh", "-c", script], as_nobody=nobody).unwrap()
    assert out == b"got\n"
    assert reports == [(4, 9 << 8, "")]  # STATUS: exit 9, once (the sender, another child, reaped on the way)
