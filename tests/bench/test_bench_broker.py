"""Broker cost: brokered AF_UNIX socket+connect+close vs unsandboxed, vs a minimal C broker
compiled here (RECV, process_vm_readv, ID_VALID, pidfd_getfd, connect, SEND: the floor of
this design), the same C driving the fast path's pin (the race-free design's floor), a
1,000-entry allowlist vs 1, and the supervisor's RSS. Ratios from one run: every variant is
run ROUNDS times, interleaved, and the fastest of each is kept, so that load from other
processes (which only ever slows a round down) weighs on the ratios as little as it can."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import time

import pytest

import seccomp_bpf as sb
from lsandbox.linux import _fastpath
from tests._util import run_in_child
from tests.security._unix_helpers import brokered, policy, shared_dir

pytestmark = [pytest.mark.bench, pytest.mark.kernel]
N = 5000
ROUNDS = 5

C_BROKER = r"""
#define _GNU_SOURCE
#include <linux/seccomp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <errno.h>
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
int main(int argc, char **argv) {
    int lfd = atoi(argv[argc - 1]);
    ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, 1ULL);
    struct seccomp_notif n; struct seccomp_notif_resp r;
    for (;;) {
        memset(&n, 0, sizeof n);
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) { if (errno == ENOENT || errno == EINTR) continue; return 1; }
        memset(&r, 0, sizeof r); r.id = n.id;
        char addr[128]; size_t len = n.data.args[2] > 128 ? 128 : n.data.args[2];
        struct iovec l = {addr, len}, rm = {(void *)n.data.args[1], len};
        if (process_vm_readv(n.pid, &l, 1, &rm, 1, 0) != (ssize_t)len) { r.error = -EFAULT; goto send; }
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id) < 0) continue;
        int pfd = syscall(SYS_pidfd_open, n.pid, 0x80 /* PIDFD_THREAD */);
        int fd = pfd < 0 ? -1 : syscall(438, pfd, (int)n.data.args[0], 0);
        if (fd < 0) r.error = -EBADF;
        else if (connect(fd, (void *)addr, len) < 0) r.error = -errno;
        if (fd >= 0) close(fd);
        if (pfd >= 0) close(pfd);
    send:
        ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r);
    }
}
"""


# The race-free design's own floor: the fast path's C (pin, SO_DOMAIN, creds check,
# non-blocking connect through /proc/self/fd) driven from C, every path allowed. The gap
# between this and the Python broker is what Python (decision, interpreter, GIL) costs.
C_PIN_BROKER = r"""
#include "_fastpath.h"
#include <stdlib.h>
int main(int argc, char **argv) {
    int lfd = atoi(argv[argc - 1]), p[2];
    struct lsb_fast r;
    unsigned int ids[8];
    if (pipe(p) != 0) return 1;
    getresuid(&ids[0], &ids[1], &ids[2]);
    getresgid(&ids[4], &ids[5], &ids[6]);
    ids[3] = ids[1];
    ids[7] = ids[5];
    ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS_X, 1ULL);
    for (;;) {
        int st = lsb_fast_next(lfd, p[0], 500, atoi(argv[1]), ids, &r);
        if (st == LSB_DECIDE)  /* a full backlog: nothing answered, fds kept; try again */
            while (lsb_fast_connect(lfd, &r, NULL) == -EAGAIN) usleep(1000);
        else if (st == LSB_SLOW) lsb_fast_answer(lfd, r.id, 0, EACCES);
        else if (st == LSB_HUP || st < 0) return 0;
    }
}
"""


def _accept_forever(path: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(4096)
    while True:
        c, _ = s.accept()
        c.close()


def _loop(path: str) -> float:
    if os.geteuid() == 0:  # as the launcher's command: no capabilities (a root target that
        from tests.security._broker_cases import no_caps  # holds some makes every broker

        no_caps()  # thread hold CAP_SYS_PTRACE and drop it around each call)
    t = time.perf_counter()
    for _ in range(N):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.close()
    return (time.perf_counter() - t) / N * 1e6


def _cpu_s() -> float:
    """CPU seconds of this process (an in-process broker) and of its waited-for children (the
    command, an external broker)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_bench_broker(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the C floor")
    src, exe = tmp_path / "cbroker.c", tmp_path / "cbroker"
    src.write_text(C_BROKER)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    pin_src, pin_exe = tmp_path / "cpin.c", tmp_path / "cpin"
    pin_src.write_text("#define SECCOMP_IOCTL_NOTIF_SET_FLAGS_X _IOW('!', 4, unsigned long long)\n"
                       + C_PIN_BROKER)
    subprocess.run([cc, "-O2", "-I", os.path.dirname(_fastpath.__file__), "-o", str(pin_exe),
                    str(pin_src)], check=True)
    connect_nr = str(sb.syscall_number("connect", sb.native_arch()))
    d = shared_dir()
    path = f"{d}/srv"
    server = os.fork()
    if server == 0:
        try:
            _accept_forever(path)
        finally:
            os._exit(0)
    try:
        while not os.path.exists(path):
            time.sleep(0.01)
        one = policy({d: "allow"})
        many = policy({**{f"/nonexistent/{i:04d}": "allow" for i in range(999)}, d: "allow"})
        stats: dict = {}
        saved = _fastpath.lib

        def pure_python() -> float:
            _fastpath.lib = None
            try:
                return brokered(_loop, path, pol=one)[0]
            finally:
                _fastpath.lib = saved

        variants = {
            "bare": lambda: run_in_child(_loop, path).unwrap(),
            "c": lambda: brokered(_loop, path, pol=one, external=[str(exe)])[0],
            "cpin": lambda: brokered(_loop, path, pol=one, external=[str(pin_exe), connect_nr])[0],
            "py1": lambda: brokered(_loop, path, pol=one, stats=stats)[0],
            "py1000": lambda: brokered(_loop, path, pol=many)[0],
            "pure": pure_python,
        }
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}  # user+sys of the command and its broker, per iteration
        for _ in range(ROUNDS):
            for name, run in variants.items():
                before = _cpu_s()
                took = run()
                used = (_cpu_s() - before) / N * 1e6
                best[name] = min(best.get(name, took), took)
                cpu[name] = min(cpu.get(name, used), used)
        bare, c, cpin, py1, py1000, pure = (best[k] for k in variants)

        def supervised() -> int:
            brokered(_loop, path, pol=one)
            return _rss_kb()

        rss = run_in_child(supervised).unwrap()
        fast = "fast path " + ("compiled" if saved is not None else _fastpath.why_not)
        print(f"\nbroker, {N}x socket+connect+close (us/iter, fastest of {ROUNDS}): bare {bare:.1f}, C floor {c:.1f}, "
              f"C with pin {cpin:.1f}, lsandbox {py1:.1f} (1 rule; {fast}; "
              f"{stats.get('fast', 0)} of {stats.get('fast', 0) + stats.get('slow', 0)} in C), "
              f"{py1000:.1f} (1000 rules), pure Python {pure:.1f}")
        print(f"ratios: lsandbox/bare {py1 / bare:.2f} (target <= 5), lsandbox/C floor {py1 / c:.2f} "
              f"(target <= 1.3), lsandbox/C with pin {py1 / cpin:.2f} (target <= 1.2), pure Python/lsandbox "
              f"{pure / py1:.2f}, 1000/1 rules {py1000 / py1:.2f} (target <= 1.1); "
              f"supervisor peak RSS {rss / 1024:.1f} MiB (whole pytest fork)")
        print(f"cpu (user+sys of command and broker, us/iter): bare {cpu['bare']:.1f}, C with pin "
              f"{cpu['cpin']:.1f}, lsandbox {cpu['py1']:.1f}; lsandbox/C with pin {cpu['py1'] / cpu['cpin']:.2f}, "
              f"lsandbox/bare {cpu['py1'] / cpu['bare']:.2f} (less sensitive to other load than the wall times)")
    finally:
        os.kill(server, 9)
        os.waitpid(server, 0)
