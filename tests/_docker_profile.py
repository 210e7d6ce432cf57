"""Docker's default seccomp profile (tests/data, from moby/profiles) compiled with our own
seccomp_bpf, for a process with a given capability set, as a container runtime would.

libseccomp semantics: entries for one syscall are alternatives (OR), the ``args`` of one entry
must all hold (AND); ``includes``/``excludes`` select entries by capabilities, architecture and
minimum kernel; anything unmatched gets ``defaultAction`` (ERRNO(EPERM) here).
"""

from __future__ import annotations

import json
import os
import platform

import seccomp_bpf as sb

PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "docker-default-seccomp.json")
#: Docker's default capability set for a non-privileged container
DOCKER_DEFAULT_CAPS = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
    "CAP_SETFCAP"})
_ARCH_NAMES = {"x86_64": {"amd64", "x86_64", "SCMP_ARCH_X86_64"}, "aarch64": {"arm64", "aarch64", "SCMP_ARCH_AARCH64"}}


def _kernel() -> tuple[int, int]:
    parts = platform.release().split(".")
    return int(parts[0]), int(parts[1].split("-")[0])


def _selected(entry: dict, caps: frozenset[str], arch: str) -> bool:
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) & caps:
        return False
    if inc.get("arches") and not set(inc["arches"]) & _ARCH_NAMES[arch]:
        return False
    if inc.get("minKernel"):
        major, minor = (int(x) for x in inc["minKernel"].split(".")[:2])
        if _kernel() < (major, minor):
            return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    if exc.get("arches") and set(exc["arches"]) & _ARCH_NAMES[arch]:
        return False
    return True


def _cond(a: dict) -> sb.Cond:
    arg, op, v = sb.Arg(a["index"]), a["op"], a["value"]
    if op == "SCMP_CMP_MASKED_EQ":
        return arg.masked_eq(v, a.get("valueTwo", 0) & v)
    return {"SCMP_CMP_EQ": arg.eq, "SCMP_CMP_NE": arg.ne, "SCMP_CMP_LT": arg.lt, "SCMP_CMP_LE": arg.le,
            "SCMP_CMP_GT": arg.gt, "SCMP_CMP_GE": arg.ge}[op](v)


def docker_filter(caps: frozenset[str] = DOCKER_DEFAULT_CAPS, arch: str | None = None) -> sb.Program:
    arch = arch or sb.native_arch()
    with open(PROFILE) as f:
        prof = json.load(f)
    default = sb.errno(prof.get("defaultErrnoRet", 1))
    per_syscall: dict[str, tuple[list[sb.Rule], list[sb.Rule]]] = {}
    for entry in prof["syscalls"]:
        if not _selected(entry, caps, arch):
            continue
        action = sb.ALLOW if entry["action"] == "SCMP_ACT_ALLOW" else sb.errno(entry.get("errnoRet", 1))
        conds = tuple(_cond(a) for a in entry.get("args") or [])
        for name in entry["names"]:
            if not sb.has_syscall(name, arch):
                continue
            cond_rules, plain = per_syscall.setdefault(name, ([], []))
            (cond_rules if conds else plain).append(sb.Rule(name, action, conds))
    rules = []
    for cond_rules, plain in per_syscall.values():
        rules += cond_rules + plain[:1]
    return sb.compile_filter(sb.Filter(arch, rules, default))


def run_under_docker_profile(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                             caps: frozenset[str] = DOCKER_DEFAULT_CAPS) -> tuple[int, str]:
    """Run ``argv`` (PATH-searched) with Docker's default profile applied, as in a container
    that refuses ``unshare`` (the profile selected for ``caps``); returns its exit status and its output (stdout and stderr).
    ``env`` replaces the environment. Call it from a forked child (the filter is installed
    in a grandchild, but ``run_in_child`` keeps the pytest process's state apart)."""
    prog = docker_filter(caps)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            if cwd:
                os.chdir(cwd)
            sb.set_no_new_privs()
            sb.install_filter(prog, flags=sb.FLAG_TSYNC)
            os.execvpe(argv[0], argv, os.environ if env is None else env)
        finally:
            os._exit(127)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), data.decode()

