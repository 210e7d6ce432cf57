"""What a brokered bind creates is what the command would have created: the socket's mode
follows the command's umask (not the supervisor's), and the kernel's errors come back
unchanged. Compared with the same binds run bare, as the same user."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys

import pytest

from tests._sandbox import LSANDBOX, PY, rmtree, world_dir
from tests._util import run_in_child
from tests.security._unix_helpers import brokered, policy, shared_dir
from tests.security.test_unix_broker import broker_mode  # noqa: F401 - autouse: both brokers

pytestmark = [pytest.mark.kernel, pytest.mark.security]
AS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])


def _binds(base: str) -> list[str]:
    def bind(path: str) -> str:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(path)
            return oct(stat.S_IMODE(os.stat(path).st_mode))
        except OSError as e:
            return errno.errorcode[e.errno or 0]
        finally:
            s.close()

    out = []
    for mask in (0o077, 0o022, 0o000, 0o027):
        os.umask(mask)
        out.append(bind(f"{base}/u{mask:03o}"))
    out += [bind(f"{base}/u077"),  # EADDRINUSE
            bind(f"{base}/nodir/x"),  # ENOENT
            bind(f"{base}/file/x"),  # ENOTDIR
            bind(f"{base}/ro/x")]  # EACCES for nobody (a root-owned 0755 directory)
    return out


def _world(d: str, name: str) -> str:
    base = f"{d}/{name}"
    os.mkdir(base)
    os.chmod(base, 0o777)
    os.mkdir(f"{base}/ro", 0o755)
    open(f"{base}/file", "w").close()
    return base


@AS
def test_bind_applies_the_commands_umask_and_returns_the_kernels_errors(nobody):
    d = shared_dir()
    try:
        bare = run_in_child(_binds, _world(d, "bare"), as_nobody=nobody).unwrap()
        assert bare[0] == "0o700" and bare[4:7] == ["EADDRINUSE", "ENOENT", "ENOTDIR"], bare
        assert bare[7] == ("EACCES" if nobody else "0o750")  # (umask 027 from the last loop)
        pol = policy({d: "allow"}, writable=(d,))
        res, events = brokered(_binds, _world(d, "sbx"), pol=pol, as_nobody=nobody)
        assert res == bare, (res, bare)
        assert events == []
    finally:
        rmtree(d)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux")
@pytest.mark.parametrize("ns", [True, False], ids=["ns", "no-ns"])
@AS
def test_umask_077_gives_a_0700_socket_through_lsandbox_run(ns, nobody, broker_mode):  # noqa: F811
    d = world_dir("lsb-umask-")
    env = {k: v for k, v in os.environ.items() if k not in ("LSANDBOX_BROKER_NO_FASTPATH", "LSANDBOX_NO_NAMESPACES")}
    if broker_mode == "python":
        env["LSANDBOX_BROKER_NO_FASTPATH"] = "1"
    if not ns:
        env["LSANDBOX_NO_NAMESPACES"] = "1"
    code = ("import os, socket, stat, sys; os.umask(0o077); s = socket.socket(socket.AF_UNIX); "
            "s.bind(sys.argv[1]); print(oct(stat.S_IMODE(os.stat(sys.argv[1]).st_mode)))")
    pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if nobody else []
    try:
        for where in (f"{d}/s", "$LSANDBOX_SOCKET_DIR/s"):  # an allowlisted place, the socket dir
            argv = [*pre, LSANDBOX, "run", "-w", d, "--allow-unix-socket", d, "--", "sh", "-c",
                    f'exec {PY} -c "$0" "{where}"', code]
            res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stderr
            assert res.stdout.split() == ["0o700"], (where, res.stdout, res.stderr)
    finally:
        rmtree(d)
