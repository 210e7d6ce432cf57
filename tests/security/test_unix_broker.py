"""The AF_UNIX broker against adversarial workloads (filter B in a forked child, the real
broker in this process). Every denial test also shows the probe works without the broker."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import threading
import time

import pytest

from lsandbox.linux._features import pidfd_thread_available
from tests._util import run_in_child
from tests.security._unix_helpers import Server, brokered, policy, shared_dir, try_connect

pytestmark = [pytest.mark.kernel, pytest.mark.security]

_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture(autouse=True, params=["fastpath", "python"])
def broker_mode(request, monkeypatch):
    """Every test runs against both brokers: with the compiled fast path (the common connect
    in C, decided on the exported rule table or in Python) and in pure Python (what runs
    where the module is not built)."""
    from lsandbox.linux import _fastpath

    if request.param == "python":
        monkeypatch.setattr(_fastpath, "lib", None)
    elif _fastpath.lib is None:
        pytest.skip(f"broker fast path: {_fastpath.why_not}")
    return request.param


@pytest.fixture
def d():
    path = shared_dir()
    servers: list[Server] = []
    yield path, servers
    for s in servers:
        s.close()


AS = pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])


def _srv(fx, name: str, kind: int = socket.SOCK_STREAM) -> Server:
    path, servers = fx
    os.makedirs(os.path.dirname(f"{path}/{name}"), mode=0o777, exist_ok=True)
    s = Server(f"{path}/{name}", kind)
    servers.append(s)
    return s


@AS
def test_allowed_vs_unlisted(d, nobody):
    ok, bad = _srv(d, "ok/s"), _srv(d, "bad")
    assert try_connect(bad.path) == "ok"  # the probe works unsandboxed
    bad.reset()
    res, events = brokered(lambda: [try_connect(ok.path), try_connect(bad.path)],
                           as_nobody=nobody, pol=policy({f"{d[0]}/ok": "allow"}))
    assert res == ["ok", "EACCES"]
    assert ok.settle() == 1 and bad.settle() == 0
    assert events == [{"kind": "unix_socket", "op": "connect", "path": bad.path, "pid": events[0]["pid"],
                       "process": "python", "verdict": "deny", "rule": "no rule"}]


@AS
def test_none_inside_allowed_dir_and_relative_paths(d, nobody):
    ok, no = _srv(d, "a/ok"), _srv(d, "a/sub/no")

    def work():
        os.chdir(f"{d[0]}/a/sub")
        return [try_connect("../ok"), try_connect("no"), try_connect("./../sub/no"), try_connect(no.path)]

    pol = policy({f"{d[0]}/a": "allow", f"{d[0]}/a/sub": "none"})
    res, events = brokered(work, pol=pol, as_nobody=nobody)
    assert res == ["ok", "EACCES", "EACCES", "EACCES"]
    assert {e["rule"] for e in events} == {f"{d[0]}/a/sub = none"}
    assert ok.settle() == 1 and no.settle() == 0


@AS
def test_symlinks_into_and_out_of_the_allowed_set(d, nobody):
    ok, bad = _srv(d, "allowed/ok"), _srv(d, "bad")
    os.symlink(ok.path, f"{d[0]}/in")  # outside the set, pointing in
    os.symlink(bad.path, f"{d[0]}/allowed/out")  # inside the set, pointing out
    os.symlink("out", f"{d[0]}/allowed/out2")  # relative, two hops
    assert try_connect(f"{d[0]}/allowed/out2") == "ok"
    bad.reset()
    res, _ = brokered(lambda: [try_connect(f"{d[0]}/in"), try_connect(f"{d[0]}/allowed/out"),
                               try_connect(f"{d[0]}/allowed/out2")],
                      as_nobody=nobody, pol=policy({f"{d[0]}/allowed": "allow"}))
    assert res == ["ok", "EACCES", "EACCES"]
    assert bad.settle() == 0


@AS
def test_proc_self_fd_magic_links(d, nobody):
    ok, bad = _srv(d, "allowed/ok"), _srv(d, "bad")

    def work():
        b = os.open(bad.path, os.O_PATH)
        g = os.open(ok.path, os.O_PATH)
        return [try_connect(f"/proc/self/fd/{b}"), try_connect(f"/dev/fd/{b}"),
                try_connect(f"/proc/thread-self/fd/{b}"), try_connect(f"/proc/self/fd/{g}")]

    assert run_in_child(work).unwrap()[0] == "ok"  # unsandboxed the magic link reaches it
    bad.reset()
    res, _ = brokered(work, as_nobody=nobody, pol=policy({f"{d[0]}/allowed": "allow"}))
    assert res == ["EACCES", "EACCES", "EACCES", "ok"]
    assert bad.settle() == 0


def _abstract_work(name: str, dname: str, mine: str) -> list[str]:
    """connect, sendto, sendmsg and sendmmsg to abstract names, and a bind of one."""
    out = [try_connect(name)]
    for how in ("sendto", "sendmsg"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if how == "sendto":
                s.sendto(b"x", dname)
            else:
                s.sendmsg([b"x"], [], 0, dname)
            out.append("ok")
        except OSError as e:
            out.append(errno.errorcode[e.errno or 0])
        finally:
            s.close()
    b = socket.socket(socket.AF_UNIX)
    try:
        b.bind(mine)
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode[e.errno or 0])
    finally:
        b.close()
    return out


@AS
def test_abstract_names(d, nobody):
    """A refused abstract name answers ECONNREFUSED, as a name that does not exist (libxcb
    falls back to the path only on ECONNREFUSED/ENOENT), for connect and sends; a bind of one
    is refused with EACCES (it could squat a name outside programs use: @/tmp/.X11-unix/X0)."""
    srv = socket.socket(socket.AF_UNIX)
    name = f"\0lsb-abstract-{os.getpid()}"
    srv.bind(name)
    srv.listen(8)
    dsrv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dname = f"\0lsb-abstract-d-{os.getpid()}"
    dsrv.bind(dname)
    dsrv.setblocking(False)
    mine = f"\0lsb-abstract-mine-{os.getpid()}"
    try:
        assert run_in_child(_abstract_work, name, dname, mine, as_nobody=nobody).unwrap() == ["ok"] * 4
        while True:
            try:
                dsrv.recv(16)
            except BlockingIOError:
                break
        res, events = brokered(_abstract_work, name, dname, mine, pol=policy({"/": "allow"}), as_nobody=nobody)
        assert res == ["ECONNREFUSED", "ECONNREFUSED", "ECONNREFUSED", "EACCES"], res
        assert [e["path"][:14] for e in events] == ["@lsb-abstract-"] * 4, events
        with pytest.raises(BlockingIOError):
            dsrv.recv(16)  # nothing was delivered
        res, _ = brokered(_abstract_work, name, dname, mine, pol=policy(allow_all=True), as_nobody=nobody)
        assert res == ["ok"] * 4
    finally:
        srv.close()
        dsrv.close()


def _send_all(bad: str, good: str) -> list[str]:
    out = []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        for how in ("sendto", "sendmsg", "connect"):
            s = socket.socket(socket.AF_UNIX, kind)
            try:
                if how == "sendto":
                    s.sendto(b"x", bad)
                elif how == "sendmsg":
                    s.sendmsg([b"x"], [], 0, bad)
                else:
                    s.connect(bad)
                    s.send(b"x")
                out.append("ok")
            except OSError as e:
                out.append(errno.errorcode[e.errno or 0])
            finally:
                s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"a", good)
    s.sendmsg([b"b", b"c"], [], 0, good)
    s.connect(good)
    s.send(b"d")
    s.close()
    return out


@AS
def test_datagrams_to_denied_path_never_delivered(d, nobody):
    bad, log = _srv(d, "bad", socket.SOCK_DGRAM), _srv(d, "dev/log", socket.SOCK_DGRAM)
    assert run_in_child(_send_all, bad.path, log.path).unwrap() == ["ok"] * 6
    assert bad.settle() == 6
    bad.reset()
    log.reset()
    res, events = brokered(_send_all, bad.path, log.path, as_nobody=nobody, pol=policy({log.path: "allow"}))
    assert res == ["EACCES"] * 6
    assert {e["op"] for e in events} == {"sendto", "sendmsg", "connect"}
    assert bad.settle() == 0 and log.settle() == 3


@AS
def test_flipping_sun_path_race(d, nobody):
    ok, bad = _srv(d, "allowed/s0"), _srv(d, "denied_/s1")
    assert len(ok.path) == len(bad.path)
    a, b = (struct.pack("=H", socket.AF_UNIX) + p.encode() + b"\0" for p in (ok.path, bad.path))

    def work():
        buf = ctypes.create_string_buffer(a, 110)
        stop = []
        flips = [0]

        def flipper():
            while not stop:
                ctypes.memmove(buf, b, len(b))
                ctypes.memmove(buf, a, len(a))
                flips[0] += 1

        t = threading.Thread(target=flipper)
        t.start()
        res = {"ok": 0, "denied": 0, "other": 0}
        for _ in range(3000):
            s = socket.socket(socket.AF_UNIX)
            r = _libc.connect(s.fileno(), buf, len(a))
            e = ctypes.get_errno()
            res["ok" if r == 0 else "denied" if e == errno.EACCES else "other"] += 1
            s.close()
        stop.append(1)
        t.join()
        res["flips"] = flips[0]
        return res

    for _ in range(5):  # a busy machine can starve the flipper: retry the demonstration
        unsandboxed = run_in_child(work).unwrap()
        if bad.settle() > 0:
            break
    assert bad.settle() > 0  # without the broker the flipped address does get through
    for _ in range(3):
        bad.reset()
        ok.reset()
        res, _ = brokered(work, as_nobody=nobody, pol=policy({f"{d[0]}/allowed": "allow"}))
        assert bad.settle() == 0  # the property: never a single accept on the denied server
        assert ok.settle() == res["ok"], (res, unsandboxed)
        if res["ok"] > 0 and res["denied"] > 0 and res["flips"] > 3000:
            break
    # the race really ran: both addresses were read by the broker, and memory kept flipping
    assert res["ok"] > 0 and res["denied"] > 0 and res["flips"] > 3000, res


def test_dup2_swapping_inet_and_unix_sockets(d):
    bad = _srv(d, "bad")
    addr = struct.pack("=H", socket.AF_UNIX) + bad.path.encode() + b"\0"

    def work():
        inet = socket.socket(socket.AF_INET)
        fd = 50
        stop = []

        def swapper():
            while not stop:
                u = socket.socket(socket.AF_UNIX)
                os.dup2(u.fileno(), fd)
                u.close()
                time.sleep(0.0003)
                os.dup2(inet.fileno(), fd)
                time.sleep(0.0003)

        os.dup2(inet.fileno(), fd)
        t = threading.Thread(target=swapper)
        t.start()
        seen: dict[str, int] = {}
        n = 0
        deadline = time.monotonic() + 10
        # at least 1,000 connects, and on until both sockets were hit (the swapper thread can
        # be starved for a while on a busy 2-core machine)
        while n < 1000 or (len(seen) < 2 and time.monotonic() < deadline):
            r = _libc.connect(fd, addr, len(addr))
            k = "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]
            seen[k] = seen.get(k, 0) + 1
            n += 1
            if n % 200 == 0:
                time.sleep(0.001)  # let the swapper run
        stop.append(1)
        t.join()
        return seen

    assert run_in_child(work).unwrap().get("ok", 0) > 0
    bad.reset()
    res, _ = brokered(work, pol=policy(network=True))
    assert bad.settle() == 0 and "ok" not in res
    assert res.get("EACCES", 0) > 0 and res.get("EAFNOSUPPORT", 0) + res.get("EINVAL", 0) > 0, res


@AS
def test_planted_hard_link(d, nobody):
    secret = _srv(d, "secret/docker.sock")
    os.makedirs(f"{d[0]}/x11", exist_ok=True)
    os.link(secret.path, f"{d[0]}/x11/X9")
    assert try_connect(f"{d[0]}/x11/X9") == "ok"  # the planted link reaches the secret
    secret.reset()
    res, events = brokered(lambda: try_connect(f"{d[0]}/x11/X9"), as_nobody=nobody, pol=policy({f"{d[0]}/x11": "allow"}))
    assert res == "EACCES" and "hard links" in events[0]["rule"]
    assert secret.settle() == 0


def _sockdir_work(sockdir: str, outside: str) -> list[str]:
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(f"{sockdir}/srv")
    srv.listen(4)
    out = []
    pid = os.fork()
    if pid == 0:  # a grandchild of the broker's target tree
        code = 0 if try_connect(f"{sockdir}/srv") == "ok" else 3
        os._exit(code)
    c, _ = srv.accept()
    c.close()
    out.append(os.waitpid(pid, 0)[1] == 0 and "grandchild-ok" or "grandchild-failed")
    b = socket.socket(socket.AF_UNIX)
    try:
        b.bind(outside)
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode[e.errno or 0])
    return out


def test_socket_dir_between_sandboxed_processes_and_grandchildren(d):
    sockdir = shared_dir()
    res, _ = brokered(_sockdir_work, sockdir, f"{d[0]}/outside", pol=policy(), socket_dir=sockdir)
    assert res == ["grandchild-ok", "EACCES"]
    assert not os.path.exists(f"{d[0]}/outside")
    os.unlink(f"{sockdir}/srv")
    writable = policy({d[0]: "allow"}, writable=(d[0],))
    res, _ = brokered(_sockdir_work, sockdir, f"{d[0]}/outside", pol=writable, socket_dir=sockdir)
    assert res == ["grandchild-ok", "ok"] and os.path.exists(f"{d[0]}/outside")


def test_dangerously_allow_all_unix_sockets(d):
    bad = _srv(d, "bad")
    res, _ = brokered(lambda: try_connect(bad.path), pol=policy(allow_all=True))
    assert res == "ok" and bad.settle() == 1
    res, _ = brokered(lambda: try_connect(bad.path), pol=policy({bad.path: "none"}, allow_all=True))
    assert res == "EACCES"


def test_long_path_over_sun_path_limit(d):
    deep = d[0] + "/" + "/".join(["d" * 40] * 4)
    os.makedirs(deep)
    srv = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(deep)
    try:
        srv.bind("s")
        srv.listen(1)
    finally:
        os.chdir(cwd)

    def work():
        os.chdir(deep)
        return try_connect("s")

    try:
        assert len(deep + "/s") > 108
        assert brokered(work, pol=policy({d[0]: "allow"}))[0] == "ok"
    finally:
        srv.close()


def test_as_nobody_confused_deputy(d):
    ok = _srv(d, "pub/ok")
    priv = _srv(d, "priv/s")
    os.chmod(f"{d[0]}/priv", 0o700)  # root's: nobody may not search it
    assert try_connect(priv.path) == "ok"  # the (root) supervisor could
    priv.reset()
    res, events = brokered(lambda: [try_connect(ok.path), try_connect(priv.path)],
                           pol=policy({d[0]: "allow"}), as_nobody=True)
    assert res == ["ok", "EACCES"] and priv.settle() == 0 and ok.settle() == 1
    assert events == []  # refused by DAC as the target, not by policy


def test_suite_core_as_unprivileged_supervisor(d):
    ok, bad = _srv(d, "ok"), _srv(d, "bad")

    def whole():
        return brokered(lambda: [try_connect(ok.path), try_connect(bad.path)],
                        pol=policy({ok.path: "allow"}))[0]

    assert run_in_child(whole, as_nobody=True).unwrap() == ["ok", "EACCES"]
    assert bad.settle() == 0


def test_full_backlog_does_not_stall_others_and_dead_targets_free_the_broker(d):
    ok = _srv(d, "ok")
    full = socket.socket(socket.AF_UNIX)
    full.bind(f"{d[0]}/full")
    full.listen(0)  # never accepted: the second connect blocks

    def work():
        first = socket.socket(socket.AF_UNIX)
        first.connect(f"{d[0]}/full")
        t = threading.Thread(target=lambda: socket.socket(socket.AF_UNIX).connect(f"{d[0]}/full"),
                             daemon=True)
        t.start()
        time.sleep(0.2)
        alive = t.is_alive()  # still blocked in the brokered connect
        start = time.monotonic()
        res = try_connect(ok.path)
        return alive, res, time.monotonic() - start  # then exit with the thread still blocked

    try:
        alive, res, took = brokered(work, pol=policy({d[0]: "allow"}))[0]
        assert alive and res == "ok" and took < 1.0
        start = time.monotonic()
        assert brokered(lambda: try_connect(ok.path), pol=policy({d[0]: "allow"}))[0] == "ok"
        assert time.monotonic() - start < 3
    finally:
        full.close()


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class _MMsg(ctypes.Structure):
    _fields_ = (("name", ctypes.c_char_p), ("namelen", ctypes.c_uint), ("iov", ctypes.POINTER(_IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int), ("_pad", ctypes.c_int), ("msg_len", ctypes.c_uint))


def _fd_passing_and_sendmmsg(good: str, bad: str) -> tuple:
    a, b = socket.socketpair()
    r, w = os.pipe()
    os.write(w, b"through SCM_RIGHTS")
    socket.send_fds(a, [b"m"], [r])
    _, fds, _, _ = socket.recv_fds(b, 1, 1)
    passed = os.read(fds[0], 100)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    data = ctypes.create_string_buffer(b"hello", 5)
    iov = _IoVec(ctypes.addressof(data), 5)
    results = []
    for dest in (good, bad):
        addr = struct.pack("=H", socket.AF_UNIX) + dest.encode() + b"\0"
        msgs = (_MMsg * 2)(*[_MMsg(addr, len(addr), ctypes.pointer(iov), 1, None, 0, 0, 0, 0)] * 2)
        n = _libc.sendmmsg(s.fileno(), msgs, 2, 0)
        results.append((n, ctypes.get_errno() if n < 0 else 0, [m.msg_len for m in msgs]))
    return passed, results


def test_sendmsg_fd_passing_and_sendmmsg(d):
    good, bad = _srv(d, "good", socket.SOCK_DGRAM), _srv(d, "bad", socket.SOCK_DGRAM)
    passed, results = brokered(_fd_passing_and_sendmmsg, good.path, bad.path, pol=policy({good.path: "allow"}))[0]
    assert passed == b"through SCM_RIGHTS"
    assert results == [(2, 0, [5, 5]), (-1, errno.EACCES, [0, 0])]
    assert good.settle() == 2 and bad.settle() == 0


def test_fallback_without_pidfd_getfd(d):
    """A supervisor where pidfd_getfd is refused (Docker's default profile without
    CAP_SYS_PTRACE) still brokers AF_UNIX connects, via NOTIF_ADDFD."""
    import seccomp_bpf as sb

    ok, bad = _srv(d, "ok"), _srv(d, "bad")

    def work():
        s = socket.socket(socket.AF_UNIX)
        s.connect(ok.path)
        peer = s.getpeername()  # the fd number now holds a socket connected to the server
        flags = s.getblocking()
        s.close()
        return try_connect(bad.path), flags, peer

    def supervisor():
        sb.set_no_new_privs()
        f = sb.Filter(sb.native_arch(), [sb.Rule("pidfd_getfd", sb.errno(errno.EPERM))], sb.ALLOW)
        sb.install_filter(sb.compile_filter(f))
        from lsandbox.linux import _broker_sys

        with pytest.raises(PermissionError):  # the normal path is really unavailable here
            _broker_sys.pidfd_getfd(os.pidfd_open(os.getpid()), 0)
        return brokered(work, pol=policy({ok.path: "allow"}))

    (res, blocking, peer), events = run_in_child(supervisor).unwrap()
    assert res == "EACCES" and blocking and peer == ok.path and ok.settle() == 1 and bad.settle() == 0
    assert events[0]["path"] == bad.path


def test_fast_path_serves_plain_connects_and_defers_the_rest(d, broker_mode):
    """The C fast path takes plain absolute connects (allowed and denied: Python decides
    both) and hands everything else (relative paths, symlinks, datagrams) to Python
    untouched; the answers are the same in both modes."""
    ok, bad = _srv(d, "ok/s"), _srv(d, "bad")
    os.symlink(ok.path, f"{d[0]}/ok/link")

    def work():
        from tests.security._broker_cases import no_caps

        no_caps()  # as the launcher's command: a target holding capabilities costs one retry
        os.chdir(f"{d[0]}/ok")
        return [try_connect(ok.path), try_connect(bad.path), try_connect("s"),
                try_connect(f"{d[0]}/ok/link")]

    stats: dict = {}
    res, _ = brokered(work, pol=policy({f"{d[0]}/ok": "allow"}), stats=stats)
    assert res == ["ok", "EACCES", "ok", "ok"]
    assert ok.settle() == 3 and bad.settle() == 0
    if broker_mode == "fastpath" and pidfd_thread_available():
        assert stats == {"fast": 2, "slow": 2}
    else:  # Python alone, or a kernel before 6.9: no thread pidfds, the fast path defers all
        assert stats == {"fast": 0, "slow": 4}


def test_fast_path_is_built_under_make_test(broker_mode):
    """`make test` builds the fast path first (and sets LSANDBOX_EXPECT_FASTPATH): a broken
    build must fail CI instead of silently benchmarking and testing only the Python broker."""
    from lsandbox.linux import _fastpath

    if broker_mode == "python":
        pytest.skip("a check of the fast path's build")
    if os.environ.get("LSANDBOX_EXPECT_FASTPATH") != "1":
        pytest.skip("only under `make test`")
    assert _fastpath.lib is not None, _fastpath.why_not


def test_fast_and_python_brokers_agree_on_odd_addresses(d, monkeypatch, broker_mode):
    """Differential: raw sockaddrs of every awkward shape (no NUL in a full sun_path, an
    embedded NUL, addrlen too short or too long, another family on an AF_UNIX socket) get
    the same answers from the C fast path and from the Python broker."""
    from lsandbox.linux import _fastpath

    if broker_mode == "python":
        pytest.skip("runs both brokers itself (in the fastpath variant)")
    if _fastpath.lib is None:
        pytest.skip(f"broker fast path: {_fastpath.why_not}")
    ok = _srv(d, "ok/s")
    long_dir = f"{d[0]}/ok/" + "l" * (106 - len(f"{d[0]}/ok/"))
    os.makedirs(long_dir, exist_ok=True)
    full = socket.socket(socket.AF_UNIX)  # a sun_path of exactly 108 bytes: no room for a NUL
    here = os.getcwd()
    os.chdir(long_dir)
    try:
        full.bind("x")  # (Python refuses the absolute 108-byte path; the kernel takes it)
    finally:
        os.chdir(here)
    full.listen(64)
    full_path = long_dir + "/x"
    assert len(full_path.encode()) == 108
    fam = struct.pack("=H", socket.AF_UNIX)
    cases = [fam + ok.path.encode() + b"\0", fam + full_path.encode(),
             fam + ok.path.encode() + b"\0garbage", fam, fam + b"/", fam + b"\0abstract",
             struct.pack("=H", socket.AF_INET) + b"\0" * 14, fam + b"x" * 150]

    def work():
        out = []
        for raw in cases:
            s = socket.socket(socket.AF_UNIX)
            buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
            r = _libc.connect(s.fileno(), buf, len(raw))
            out.append("ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
            s.close()
        return out

    pol = policy({f"{d[0]}/ok": "allow"})
    fast, _ = brokered(work, pol=pol)
    monkeypatch.setattr(_fastpath, "lib", None)
    slow, _ = brokered(work, pol=pol)
    full.close()
    assert fast == slow, (fast, slow)
    assert fast[:3] == ["ok", "ok", "ok"] and fast[5] == "ECONNREFUSED"  # abstract: as absent


def test_kernels_without_pidfd_thread(d, monkeypatch):
    """Before Linux 6.9 a pidfd names a thread-group leader only. The broker then uses the
    leader's, after kcmp shows the calling thread shares its descriptor table: connects from
    the main thread and from other threads both work (emulated here by the clamp)."""
    monkeypatch.setenv("LSANDBOX_NO_PIDFD_THREAD", "1")
    ok, bad = _srv(d, "ok/s"), _srv(d, "bad")

    def work():
        out = [try_connect(ok.path)]
        t = threading.Thread(target=lambda: out.extend([try_connect(ok.path), try_connect(bad.path)]))
        t.start()
        t.join()
        return out

    stats: dict = {}
    res, _ = brokered(work, pol=policy({f"{d[0]}/ok": "allow"}), stats=stats)
    assert res == ["ok", "ok", "EACCES"]
    assert ok.settle() == 2 and bad.settle() == 0
    assert stats["fast"] == 0  # the fast path needs thread pidfds; the Python broker serves all


# A thread with its own descriptor table (clone without CLONE_FILES) connects: the broker
# must take the socket from *that* table. With thread pidfds (Linux >= 6.9) it can; before,
# the leader's table is the only one reachable and the broker must refuse, not connect
# whatever the leader holds at that number.
OWN_TABLE_THREAD = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
static volatile int done, result;
static struct sockaddr_un sa;
static int thread(void *arg) {
    (void)arg;
    long s = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    long r = syscall(SYS_connect, s, &sa, sizeof sa);
    result = r == 0 ? 0 : errno;
    done = 1;
    syscall(SYS_exit, 0);
    return 0;
}
int main(int argc, char **argv) {
    static char stack[1 << 16];
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
    int decoy = socket(AF_UNIX, SOCK_STREAM, 0);  /* the leader holds a socket too */
    (void)decoy;
    if (clone(thread, stack + sizeof stack, CLONE_VM | CLONE_FS | CLONE_SIGHAND | CLONE_THREAD
              | CLONE_SYSVSEM, NULL) < 0) return 2;
    while (!done) ;
    printf("%s\n", result == 0 ? "ok" : strerrorname_np(result));
    return 0;
}
"""


def test_thread_with_its_own_fd_table(d, tmp_path, monkeypatch):
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src, exe = tmp_path / "t.c", tmp_path / "t"
    src.write_text(OWN_TABLE_THREAD)
    subprocess.run([cc, "-O0", "-o", str(exe), str(src)], check=True)
    ok = _srv(d, "ok/s")
    assert subprocess.run([str(exe), ok.path], capture_output=True, text=True).stdout == "ok\n"
    ok.reset()
    pol = policy({f"{d[0]}/ok": "allow"})

    def work():
        return subprocess.run([str(exe), ok.path], capture_output=True, text=True).stdout.strip()

    served, _ = brokered(work, pol=pol)
    if pidfd_thread_available():  # thread pidfds: the thread's own table is reached
        assert served == "ok" and ok.settle() == 1
    else:  # a kernel before 6.9: only the leader's table is reachable, so refused
        assert served == "EACCES" and ok.settle() == 0
    ok.reset()
    monkeypatch.setenv("LSANDBOX_NO_PIDFD_THREAD", "1")
    refused, _ = brokered(work, pol=pol)  # the leader's table is not the thread's: refused
    assert refused == "EACCES" and ok.settle() == 0
