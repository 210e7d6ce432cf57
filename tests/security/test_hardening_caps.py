"""No capabilities in the command, ever, even as uid 0 (issue 12, "What to build" 1).

Every mode: root with namespaces, root without (``LSANDBOX_NO_NAMESPACES=1``), nobody in a
user namespace (where it holds every capability of that namespace until they are dropped),
nobody without namespaces. The command reads its own /proc/self/status and securebits, and
tries what root could do with capabilities, each probe harmless to the host: FITHAW on /
(EINVAL "not frozen" with CAP_SYS_ADMIN, never FIFREEZE), SCHED_FIFO (reset at once), a
lower nice value, setuid and chown in a forked child or a scratch file, and, with
``--network``, an RTM_NEWADDR for an interface index that does not exist (ENODEV with
CAP_NET_ADMIN: nothing is changed either way). The same probes run unsandboxed as root show
they are real.

Shown to fail without the fix: with ``_drop_capabilities`` removed from
``lsandbox.linux._child.child_main``, the root modes report CapEff 000001fffeffffff,
securebits 0, FITHAW EINVAL, SCHED_FIFO/setuid/chown ok, RTM_NEWADDR ENODEV, and nobody in a
user namespace a full CapEff.
"""

from __future__ import annotations

import json
import os

import pytest

from tests._sandbox import world_dir
from tests.security._hardening import MODE_IDS, MODES, lsandbox, probe

pytestmark = [pytest.mark.kernel, pytest.mark.security]

CAPS = r"""
import fcntl
W = sys.argv[1]
status = {}
for line in open("/proc/self/status"):
    key, _, value = line.partition(":")
    if key.startswith("Cap") or key == "NoNewPrivs":
        status[key] = int(value.strip(), 16) if key.startswith("Cap") else int(value)
R["status"] = status
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
R["securebits"] = libc.prctl(27, 0, 0, 0, 0)  # PR_GET_SECUREBITS
root_fd = os.open("/", os.O_RDONLY)
t("fithaw", lambda: fcntl.ioctl(root_fd, 0xC0045878, 0))  # FITHAW: never FIFREEZE
def fifo():
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
t("sched_fifo", fifo)
t("nice_down", lambda: os.setpriority(os.PRIO_PROCESS, 0, -5))
def setuid():
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(4242)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code:
        raise OSError(code, "")
t("setuid", setuid)
f = os.path.join(W, "chown-me-%d" % os.getpid())
open(f, "w").close()
t("chown", lambda: os.chown(f, 4242, -1))
os.unlink(f)
"""

NETLINK = r"""
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, 0x7FFFFFF0)  # ifaddrmsg: no such interface
body += struct.pack("=HH4s", 8, 2, socket.inet_aton("10.99.99.1"))  # IFA_LOCAL
# RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
s.send(struct.pack("=IHHII", 16 + len(body), 20, 0x1 | 0x4 | 0x200 | 0x400, 1, 0) + body)
err = struct.unpack_from("=i", s.recv(4096), 16)[0]
R["rtm_newaddr"] = errno.errorcode.get(-err, str(err)) if err else "ok"
"""

SECUREBITS_LOCKED = 0xEF  # NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each locked; KEEP_CAPS locked off


def _bounding_outside() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


@pytest.fixture(scope="module")
def wdir():
    d = world_dir("lsb-caps-")
    yield d
    import shutil

    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_no_capabilities_in_the_command(mode, wdir):
    name, nobody, env = mode
    got = probe(CAPS, [wdir], nobody=nobody, env=env, flags=("-w", wdir))
    st = got["status"]
    assert (st["CapInh"], st["CapPrm"], st["CapEff"], st["CapAmb"]) == (0, 0, 0, 0), st
    assert st["NoNewPrivs"] == 1
    if name == "nobody-no-namespaces":
        # no CAP_SETPCAP: the bounding set and securebits stay as they were (doctor and explain
        # name it: test_kept_bounding_set_is_named); with nothing permitted and no_new_privs,
        # execve gains nothing from them
        assert st["CapBnd"] == _bounding_outside() and got["securebits"] == 0
    else:
        assert st["CapBnd"] == 0, st
        assert got["securebits"] == SECUREBITS_LOCKED
    for k in ("fithaw", "sched_fifo", "nice_down", "setuid", "chown"):
        assert got[k] != "ok", (k, got)
    if not nobody:
        assert {k: got[k] for k in ("fithaw", "sched_fifo", "nice_down", "setuid", "chown")} == {
            "fithaw": "EPERM", "sched_fifo": "EPERM", "nice_down": "EACCES", "setuid": "EPERM", "chown": "EPERM"}


def test_root_probes_are_real_unsandboxed(wdir):
    """Outside the sandbox, root's capabilities make every probe above work (FITHAW answers
    EINVAL: the filesystem is not frozen, so the capability check passed)."""
    got = probe(CAPS, [wdir], nobody=False, env={}, sandboxed=False)
    assert got["status"]["CapEff"] != 0
    assert got["fithaw"] == "EINVAL"
    assert {k: got[k] for k in ("sched_fifo", "nice_down", "setuid", "chown")} == dict.fromkeys(
        ("sched_fifo", "nice_down", "setuid", "chown"), "ok")


@pytest.mark.parametrize("mode", MODES[:2], ids=MODE_IDS[:2])
def test_no_net_admin_with_network(mode):
    """``--network`` shares the host's network namespace: without CAP_NET_ADMIN an address
    change is refused before the kernel even looks for the interface."""
    _name, nobody, env = mode
    assert probe(NETLINK, [], nobody=nobody, env=env, flags=("--network",))["rtm_newaddr"] == "EPERM"
    # outside, root gets past the capability check and fails on the missing interface
    assert probe(NETLINK, [], nobody=False, env={}, sandboxed=False)["rtm_newaddr"] == "ENODEV"


def test_kept_bounding_set_is_named():
    """nobody without namespaces has no CAP_SETPCAP: doctor and explain name what is kept."""
    env = {"LSANDBOX_NO_NAMESPACES": "1"}
    doc = json.loads(lsandbox(["doctor", "--json"], nobody=True, env=env).stdout)
    assert doc["machine"]["capabilities_kept"] == ["bounding set", "securebits"]
    row = next(r for r in doc["fields"] if r["field"] == "capabilities in the command")
    assert row["state"] == "enforced" and "bounding set and securebits kept (no CAP_SETPCAP)" in row["by"]
    text = lsandbox(["explain"], nobody=True, env=env).stdout
    assert "capability bounding set and securebits kept (no CAP_SETPCAP)" in text
    for nobody, env in ((False, {}), (False, {"LSANDBOX_NO_NAMESPACES": "1"}), (True, {})):
        doc = json.loads(lsandbox(["doctor", "--json"], nobody=nobody, env=env).stdout)
        assert doc["machine"]["capabilities_kept"] == []
        assert "bounding set dropped, securebits locked" in lsandbox(["explain"], nobody=nobody, env=env).stdout


@pytest.mark.parametrize("env", [{}, {"LSANDBOX_NO_NAMESPACES": "1"}], ids=["namespaces", "no-namespaces"])
def test_root_without_setpcap(env):
    """Root whose bounding set lacks CAP_SETPCAP (a container runtime that took it away): the
    command still has no capability, and the run's notes say the bounding set is kept."""
    e = dict(os.environ, **env)
    e.pop("LSANDBOX_REQUIREMENTS", None)
    import subprocess

    from tests._sandbox import LSANDBOX

    r = subprocess.run(["setpriv", "--bounding-set=-setpcap", LSANDBOX, "run", "--log-denials", "--",
                        "grep", "^Cap", "/proc/self/status"], capture_output=True, text=True, env=e,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    caps = {line.split(":")[0]: int(line.split()[1], 16) for line in r.stdout.splitlines()}
    assert (caps["CapInh"], caps["CapPrm"], caps["CapEff"], caps["CapAmb"]) == (0, 0, 0, 0)
    assert caps["CapBnd"] != 0 and not caps["CapBnd"] >> 8 & 1
    assert "capability bounding set and securebits kept (no CAP_SETPCAP)" in r.stderr

