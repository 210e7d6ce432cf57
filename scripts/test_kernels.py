#!/usr/bin/env python3
"""Runs tests/kernel and tests/security on real Debian kernels under qemu (``make test-kernels``).

For each kernel of the list (``5.10 6.1 6.12 6.18 7.3`` by default, or ``KERNELS=...``):
the newest Debian ``linux-image-<X.Y>...-amd64`` package is fetched through a private apt
configuration (own sources list, lists and cache under the cache directory; the host's apt is
untouched; the archive's URL is the one this machine's own apt sources use), a tiny initramfs
is built (static busybox + the kernel's own virtio_pci/9pnet_virtio/9p/overlay modules), and
qemu boots it with the host's ``/`` shared read-only over virtio-9p under a tmpfs overlay.
The guest (scripts/kernels/guest.sh) runs the suites as root and as uid 65534 and writes junit
xml into a second 9p share; this script reads them and prints one table. Exit status: 0 when
every kernel passed, 1 otherwise, 2 on a setup error.

Uses the host's python3 and stdlib only (it runs before and outside the venv's concerns).
Environment: ``LSANDBOX_KERNEL_CACHE`` (default ~/.cache/lsandbox-kernels),
``LSANDBOX_KERNEL_MIRROR`` (an archive URL, when the host's apt sources name no Debian one),
``LSANDBOX_QEMU_ACCEL`` (``tcg`` or ``kvm``; default: KVM only when the CPU shows VMX/SVM,
since a paravirtual /dev/kvm such as kvm-pvm hangs stock kernels), ``LSANDBOX_KERNEL_TESTS``
(pytest arguments; default the two suites), ``LSANDBOX_KERNEL_TIMEOUT`` (seconds per run),
``LSANDBOX_KERNEL_JOBS`` (kernels booted at once, ``--jobs``).

Several kernels at once: a guest's suites run one test at a time, so under TCG one qemu keeps
about one host core busy whatever its ``-smp``; with ``--jobs 2`` on two cores the matrix takes
about half the time. Each guest has its own disk and results directory; they share the
read-only snapshot.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, "scripts", "kernels")
DEFAULT_KERNELS = ["5.10", "6.1", "6.12", "6.18", "7.3"]
SUITES = ["bullseye", "bookworm", "bookworm-backports", "trixie", "trixie-backports", "sid"]
MODULES = ["virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_blk", "ext4"]
# Loaded when present: what the kernel would request_module() itself (no modprobe in the guest)
OPTIONAL_MODULES = ["crc32c_generic", "crc32c_intel", "crc32c_cryptoapi"]
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_TESTS = "tests/kernel tests/security"


class SetupError(Exception):
    """Something the matrix needs is missing on the host (one line for the user)."""


def log(msg: str) -> None:
    print(f"test-kernels: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(path: str, what: str) -> Iterator[None]:
    """An exclusive lock on ``path``: runs from other checkouts share the cache, and two of them
    extracting one kernel, or writing one kernel's results directory, would corrupt each other."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another run ({what})")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---------------------------------------------------------------- the private apt configuration

def _host_sources() -> list[tuple[str, list[str], str | None]]:
    """(uri, suites, signed_by) of every ``deb`` entry in the host's apt sources."""
    out: list[tuple[str, list[str], str | None]] = []
    one_line = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for path in one_line:
        try:
            text = open(path).read()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.match(r"deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                opts = m.group(1) or ""
                sb = re.search(r"signed-by=(\S+?)[\s\]]", opts + "]")
                out.append((m.group(2), [m.group(3)], sb.group(1) if sb else None))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                out.append((uri, fields.get("suites", "").split(), fields.get("signed-by")))
    return out


def archive_url() -> tuple[str, str]:
    """The Debian archive this machine already uses (not its security archive), and its keyring."""
    env = os.environ.get("LSANDBOX_KERNEL_MIRROR")
    if env:
        return env, KEYRING
    codenames = {"bullseye", "bookworm", "trixie", "forky", "duke", "sid", "unstable", "testing", "stable"}
    for uri, suites, signed_by in _host_sources():
        if any(s in codenames for s in suites) and "security" not in uri:
            key = signed_by if signed_by and os.path.exists(signed_by) else KEYRING
            return uri.rstrip("/"), key
    raise SetupError("no Debian archive in this machine's apt sources; set LSANDBOX_KERNEL_MIRROR to one")


class Apt:
    """apt-get/apt-cache with their own sources, lists, cache and status under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        for d in ("etc/parts", "lists/partial", "cache", "archives/partial"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        self.status = os.path.join(root, "status")
        if not os.path.exists(self.status):
            open(self.status, "w").close()
        self.sources = os.path.join(root, "etc", "sources.list")
        self.opts = [
            "-o", f"Dir::Etc::SourceList={self.sources}",
            "-o", f"Dir::Etc::SourceParts={os.path.join(root, 'etc', 'parts')}",
            "-o", f"Dir::Etc::Preferences={os.path.join(root, 'etc', 'preferences')}",
            "-o", f"Dir::Etc::PreferencesParts={os.path.join(root, 'etc', 'parts')}",
            "-o", f"Dir::State::Lists={os.path.join(root, 'lists')}",
            "-o", f"Dir::Cache={os.path.join(root, 'cache')}",
            "-o", f"Dir::Cache::Archives={os.path.join(root, 'archives')}",
            "-o", f"Dir::State::Status={self.status}",
            "-o", "APT::Architecture=amd64",
            "-o", "Acquire::Languages=none",
            "-o", "APT::Sandbox::User=root",
        ]

    def update(self, max_age: float = 86400.0) -> None:
        url, key = archive_url()
        want = "".join(f"deb [signed-by={key}] {url} {s} main\n" for s in SUITES)
        old = open(self.sources).read() if os.path.exists(self.sources) else ""
        stamp = os.path.join(self.root, "updated")
        fresh = os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < max_age
        if old == want and fresh:
            return
        with open(self.sources, "w") as f:
            f.write(want)
        log(f"apt-get update (private lists, archive {url})")
        subprocess.run(["apt-get", *self.opts, "-qq", "update"], check=True)
        open(stamp, "w").close()

    def pkgnames(self, prefix: str) -> list[str]:
        r = subprocess.run(["apt-cache", *self.opts, "pkgnames", prefix], check=True,
                           capture_output=True, text=True)
        return r.stdout.split()

    def depends(self, pkg: str) -> list[str]:
        r = subprocess.run(["apt-cache", *self.opts, "show", "--no-all-versions", pkg], check=True,
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if line.startswith("Depends:"):
                return [re.split(r"[\s(]", alt.strip())[0]
                        for dep in line[8:].split(",") for alt in dep.split("|")]
        return []

    def available(self, pkg: str) -> bool:
        """Whether ``pkg`` is a real package with a version to download (not a purely virtual
        name such as a ``linux-base-<release>`` that a backports image names but nothing ships)."""
        r = subprocess.run(["apt-cache", *self.opts, "show", "--no-all-versions", pkg],
                           capture_output=True, text=True)
        return r.returncode == 0 and "Version:" in r.stdout

    def download(self, pkgs: list[str], dest: str) -> list[str]:
        os.makedirs(dest, exist_ok=True)
        have = {os.path.basename(p).split("_")[0]: p for p in glob.glob(os.path.join(dest, "*.deb"))}
        missing = [p for p in pkgs if p not in have]
        if missing:
            log(f"downloading {' '.join(missing)}")
            subprocess.run(["apt-get", *self.opts, "-qq", "download", *missing], check=True, cwd=dest)
        return sorted(glob.glob(os.path.join(dest, "*.deb")))


def _natural(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def kernel_package(apt: Apt, series: str) -> str:
    """The newest ``linux-image-<series>...-amd64`` package in the archive (signed flavour)."""
    pat = re.compile(r"^linux-image-" + re.escape(series) + r"[.+-][0-9][^ ]*-amd64$")
    names = [n for n in apt.pkgnames("linux-image-" + series)
             if pat.match(n) and not re.search(r"-(rt|cloud)-amd64$", n)]
    if not names:
        raise SetupError(f"no linux-image-{series}*-amd64 package in {', '.join(SUITES)}")
    return max(names, key=_natural)


# ---------------------------------------------------------------- kernel tree and initramfs

@dataclass
class Kernel:
    series: str
    package: str
    release: str
    vmlinuz: str
    moddir: str
    config: dict[str, str] = field(default_factory=dict)


def fetch_kernel(apt: Apt, cache: str, series: str) -> Kernel:
    pkg = kernel_package(apt, series)
    release = pkg[len("linux-image-"):]
    # Newer packaging splits the image into linux-binary-*/linux-modules-* of the same release.
    deps = [d for d in apt.depends(pkg) if d.endswith(release) and d != pkg and apt.available(d)]
    tree = os.path.join(cache, "kernels", release)
    stamp = os.path.join(tree, ".extracted")
    if not os.path.exists(stamp):
        debs = apt.download([pkg, *deps], os.path.join(cache, "debs", release))
        shutil.rmtree(tree, ignore_errors=True)
        os.makedirs(tree)
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", deb, tree], check=True)
        open(stamp, "w").close()
    vml = (glob.glob(os.path.join(tree, "boot", "vmlinuz-*"))
           + glob.glob(os.path.join(tree, "usr/lib/modules", "*", "vmlinuz")))
    mods = glob.glob(os.path.join(tree, "lib/modules", "*")) + glob.glob(os.path.join(tree, "usr/lib/modules", "*"))
    cfgs = glob.glob(os.path.join(tree, "boot", "config-*")) + glob.glob(os.path.join(tree, "usr/lib/modules", "*", "config"))
    if not vml or not mods:
        raise SetupError(f"{pkg}: no vmlinuz or modules in the package")
    config: dict[str, str] = {}
    for line in open(cfgs[0]) if cfgs else []:
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            config[k] = v.strip('"')
    return Kernel(series, pkg, release, vml[0], mods[0], config)


def _module_order(k: Kernel) -> list[str]:
    """The .ko files to load, dependencies first (builtin modules left out)."""
    paths: dict[str, str] = {}
    for p in glob.glob(os.path.join(k.moddir, "kernel", "**", "*.ko*"), recursive=True):
        name = os.path.basename(p).split(".ko")[0].replace("-", "_")
        paths[name] = p
    builtin = set()
    bfile = os.path.join(k.moddir, "modules.builtin")
    if os.path.exists(bfile):
        builtin = {os.path.basename(ln.strip()).split(".ko")[0].replace("-", "_") for ln in open(bfile)}
    order: list[str] = []

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in builtin or paths.get(name) in order:
            return
        if name not in paths:
            raise SetupError(f"{k.release}: module {name} is neither built in nor in the package")
        r = subprocess.run(["modinfo", "-F", "depends", paths[name]], check=True, capture_output=True, text=True)
        for dep in filter(None, r.stdout.strip().split(",")):
            visit(dep)
        order.append(paths[name])

    for m in MODULES:
        visit(m)
    for m in OPTIONAL_MODULES:
        if m in paths:
            visit(m)
    return order


def build_initramfs(k: Kernel, cache: str) -> str:
    busybox = "/bin/busybox"  # busybox-static's path
    try:
        head = open(busybox, "rb").read(4096)
    except OSError:
        raise SetupError("static busybox is missing (package busybox-static)") from None
    if b"ld-linux" in head:
        raise SetupError("/bin/busybox is dynamically linked: install busybox-static")
    out = os.path.join(cache, "kernels", k.release, "initrd.cpio.gz")
    with tempfile.TemporaryDirectory(prefix="lsbx-initrd-") as root:
        for d in ("bin", "dev", "proc", "sys", "mods"):
            os.makedirs(os.path.join(root, d))
        shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
        shutil.copy(os.path.join(HERE, "init"), os.path.join(root, "init"))
        os.chmod(os.path.join(root, "init"), 0o755)
        names = []
        for i, src in enumerate(_module_order(k)):
            name = f"{i:02d}-{os.path.basename(src).split('.ko')[0]}.ko"
            dst = os.path.join(root, "mods", name)
            with open(dst, "wb") as f:
                if src.endswith(".xz"):
                    subprocess.run(["xz", "-dc", src], stdout=f, check=True)
                elif src.endswith(".zst"):
                    subprocess.run(["zstd", "-qdc", src], stdout=f, check=True)
                elif src.endswith(".gz"):
                    subprocess.run(["gzip", "-dc", src], stdout=f, check=True)
                else:
                    shutil.copyfileobj(open(src, "rb"), f)
            names.append(name)
        with open(os.path.join(root, "mods", "order"), "w") as f:
            f.write("\n".join(names) + "\n")
        files = subprocess.run("find . | LC_ALL=C sort", shell=True, cwd=root, check=True,
                               capture_output=True).stdout
        cpio = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "--owner=0:0"], input=files, cwd=root,
                              check=True, capture_output=True).stdout
        subprocess.run(["gzip", "-1c"], input=cpio, stdout=open(out, "wb"), check=True)
    return out


# ---------------------------------------------------------------- boot and collect

def _accel() -> list[str]:
    want = os.environ.get("LSANDBOX_QEMU_ACCEL", "")
    if not want:
        cpu = open("/proc/cpuinfo").read()
        want = "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) and re.search(r"\b(vmx|svm)\b", cpu) else "tcg"
    if want == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def cmdline(k: Kernel) -> str:
    args = ["console=ttyS0", "panic=-1", "loglevel=4", "rdinit=/init"]
    lsm = k.config.get("CONFIG_LSM", "")
    if k.config.get("CONFIG_SECURITY_LANDLOCK") == "y" and "landlock" not in lsm.split(","):
        args.append("lsm=" + ",".join(filter(None, ["landlock", lsm])))
    return " ".join(args)


@dataclass
class Result:
    series: str
    release: str = ""
    abi: str = "?"
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    skips: dict[str, int] = field(default_factory=dict)
    error: str = ""
    commit: str = ""
    tests: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.failed == 0 and self.passed > 0


def _read(path: str, default: str = "") -> str:
    try:
        return open(path).read().strip()
    except OSError:
        return default


def _collect(res: Result, out: str, who: str) -> None:
    xml = os.path.join(out, f"{who}.junit.xml")
    if not os.path.exists(xml):
        res.error = res.error or f"{who}: no junit xml (rc {_read(os.path.join(out, who + '.rc'), '?')})"
        return
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = f"{who}: {case.get('classname', '')}::{case.get('name', '')}"
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            res.failed += 1
            res.failures.append(f"{name}: {(bad.get('message') or '').splitlines()[0][:160] if bad.get('message') else ''}")
        elif skip is not None:
            res.skipped += 1
            reason = (skip.get("message") or "").strip()
            reason = re.sub(r"^Skipped: ", "", reason)[:150]
            res.skips[f"{who}: {reason}"] = res.skips.get(f"{who}: {reason}", 0) + 1
        else:
            res.passed += 1


def snapshot(cache: str) -> str:
    """A copy of the working tree (not .git, not .venv) taken when the run starts: the guest
    binds it over the repository, so edits made while the matrix runs do not reach a guest
    half-way through (the host's / is shared live)."""
    snap = os.path.join(cache, f"snapshot-{os.getpid()}")  # one per invocation
    shutil.rmtree(snap, ignore_errors=True)
    skip = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache",
                                  ".hypothesis", ".bench", "build")
    shutil.copytree(REPO, snap, ignore=skip, symlinks=True)
    os.makedirs(os.path.join(snap, ".venv"))
    # Bytecode for the copy, compiled by the guest's own interpreter and naming the paths the
    # guest sees: the guest writes none (PYTHONDONTWRITEBYTECODE), and without it every
    # sandboxed launch under emulation would compile lsandbox from source again.
    py = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(py):
        subprocess.run([py, "-m", "compileall", "-q", "-s", snap, "-p", REPO, snap],
                       check=True, stdout=subprocess.DEVNULL)
    return snap


def source_commit() -> str:
    """The commit the snapshot was taken from, marked ``+changes`` when the tree differed."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


#: What a run tests: the package, its tests and the guest's scripts. Commits that differ only
#: elsewhere (documentation, this host-side runner) test the same code.
CODE_PATHS = ("lsandbox", "lsandbox_records", "seccomp_bpf", "landlock", "macos", "tests", "scripts/kernels",
              "pyproject.toml")


def code_id(commit: str) -> str:
    """A short hash of the trees of :data:`CODE_PATHS` at ``commit`` (``-`` where unknown,
    or for a snapshot with uncommitted changes): results of one code state, though run on
    different commits (in different sessions: the five kernels take more than one), show one id."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return "-"
    try:
        out = subprocess.run(["git", "-C", REPO, "ls-tree", commit, "--", *CODE_PATHS],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "-"
    return hashlib.sha1(out.encode()).hexdigest()[:8] if out else "-"


# Boots of one kernel that panic before the guest script runs are tried again, this often.
BOOT_ATTEMPTS = 3


def run_kernel(k: Kernel, initrd: str, args: argparse.Namespace, keep: str, snap: str,
               commit: str) -> Result:
    out = os.path.join(keep, k.series)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    os.chmod(out, 0o777)
    shutil.copy(os.path.join(HERE, "guest.sh"), os.path.join(out, "guest.sh"))
    py = os.path.join(REPO, ".venv", "bin", "python")
    with open(os.path.join(out, "pytest-args"), "w") as f:
        f.write("".join(a + "\n" for a in shlex.split(args.tests)))
    with open(os.path.join(out, "commit"), "w") as f:
        f.write(commit + "\n")
    with open(os.path.join(out, "params.sh"), "w") as f:
        f.write(f"REPO='{REPO}'\nSNAPSHOT='{snap}'\nPY='{py}'\n"
                f"TIMEOUT={args.timeout}\nUNPRIVILEGED={0 if args.root_only else 1}\n")
    # A fresh ext4 disk for /tmp and /var/tmp: the overlay's tmpfs lacks what real hosts'
    # filesystems have (user xattrs before 6.6, inode flags before 6.0) and tests use them.
    disk = os.path.join(args.cache, f"disk-{os.getpid()}-{k.series}.img")
    with open(disk, "wb") as f:
        f.truncate(8 << 30)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", disk], check=True)
    qemu = [
        "qemu-system-x86_64", *_accel(), "-smp", str(args.smp), "-m", args.memory,
        "-drive", f"file={disk},if=virtio,format=raw,cache=unsafe",
        "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", k.vmlinuz, "-initrd", initrd, "-append", cmdline(k),
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={out},mount_tag=results,security_model=none,multidevs=remap",
    ]
    if args.nice:
        qemu = ["nice", "-n", str(args.nice), *qemu]
    start = time.monotonic()
    error = ""
    for attempt in range(1, BOOT_ATTEMPTS + 1):
        log(f"{k.series}: booting {k.release} ({' '.join(_accel()[:2])})")
        console_log = os.path.join(out, "console.log")
        with open(console_log, "wb") as console:
            try:
                subprocess.run(qemu, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                               timeout=args.timeout * 2 + 300, check=False)
            except subprocess.TimeoutExpired:
                error = "qemu timed out"
        if error or os.path.exists(os.path.join(out, "uname")) or attempt == BOOT_ATTEMPTS \
                or b"Kernel panic" not in open(console_log, "rb").read():
            break
        # The kernel died before the guest script ran (nothing of the suites ran): a boot-time
        # oops of emulation, e.g. multi-threaded TCG and the kernel patching its own text.
        os.replace(console_log, os.path.join(out, f"console-panic-{attempt}.log"))
        log(f"{k.series}: the kernel panicked while booting (console-panic-{attempt}.log): booting again")
    with open(os.path.join(out, "wall"), "w") as f:
        f.write(f"{time.monotonic() - start:.0f}\n")
    os.unlink(disk)
    if error:
        with open(os.path.join(out, "error"), "w") as f:
            f.write(error + "\n")
    return stored_result(k.series, keep)


def stored_result(series: str, keep: str) -> Result:
    """One kernel's result as its last run left it in ``keep/<series>/`` (``--report`` prints
    the table from these files without booting anything)."""
    out = os.path.join(keep, series)
    if not os.path.isdir(out):
        return Result(series, error="never run", tests="-", commit="-")
    res = Result(series, _read(os.path.join(out, "uname")), error=_read(os.path.join(out, "error")))
    res.abi = _read(os.path.join(out, "abi"), "?") or "?"
    res.seconds = float(_read(os.path.join(out, "wall"), "0") or 0)
    res.commit = _read(os.path.join(out, "commit"), "unknown")
    args = _read(os.path.join(out, "pytest-args")).split("\n")
    res.tests = "suites" if args == shlex.split(DEFAULT_TESTS) else "subset"
    if not os.path.exists(os.path.join(out, "finished")) and not res.error:
        res.error = "the guest did not finish (see console.log)"
    _collect(res, out, "root")
    if "UNPRIVILEGED=1" in _read(os.path.join(out, "params.sh")):
        _collect(res, out, "user")
    return res


def print_table(results: list[Result], keep: str) -> None:
    print()
    print(f"{'kernel':<8} {'release':<22} {'landlock':>8} {'passed':>7} {'failed':>7} {'skipped':>8} "
          f"{'wall':>7}  {'tests':<7} {'commit':<14} code")
    codes = {r.series: code_id(r.commit) for r in results}
    for r in results:
        abi = "none" if r.abi == "0" else r.abi
        status = "" if r.ok else "  FAIL" + (f" ({r.error})" if r.error else "")
        print(f"{r.series:<8} {r.release:<22} {abi:>8} {r.passed:>7} {r.failed:>7} {r.skipped:>8} "
              f"{f'{r.seconds / 60:.1f}m' if r.seconds else '-':>7}  {r.tests:<7} {r.commit:<14} "
              f"{codes[r.series]}{status}")
    same = set(codes.values())
    if results and all(r.ok and r.tests == "suites" for r in results) and len(same) == 1 and "-" not in same:
        print(f"\nall {len(results)} kernels green on one code state ({same.pop()})")
    for r in results:
        if r.failures:
            print(f"\n{r.series}: failed")
            for f in r.failures:
                print(f"  {f}")
        if r.skips:
            print(f"\n{r.series}: skipped (count, reason)")
            for reason, n in sorted(r.skips.items(), key=lambda kv: -kv[1]):
                print(f"  {n:3d}  {reason}")
    print(f"\nlogs and junit xml: {keep}/<kernel>/")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kernels", nargs="*", help="kernel series, e.g. 6.1 5.10 (default: all five)")
    p.add_argument("--tests", default=os.environ.get("LSANDBOX_KERNEL_TESTS", DEFAULT_TESTS),
                   help="pytest arguments run in the guest")
    p.add_argument("--timeout", type=int, default=int(os.environ.get("LSANDBOX_KERNEL_TIMEOUT", "2400")),
                   help="seconds per pytest run in the guest")
    p.add_argument("--root-only", action="store_true", help="skip the unprivileged run")
    p.add_argument("--report", action="store_true",
                   help="boot nothing: print the table from each kernel's last stored results "
                        "(with the commit and the tests each ran)")
    p.add_argument("--jobs", type=int, default=int(os.environ.get("LSANDBOX_KERNEL_JOBS", "1")),
                   help="kernels booted at once (default 1; about one host core each)")
    p.add_argument("--smp", type=int, default=min(os.cpu_count() or 1, 2))
    p.add_argument("--memory", default="2048")
    p.add_argument("--nice", type=int, default=10, help="nice level of qemu (0: none)")
    p.add_argument("--cache", default=os.environ.get("LSANDBOX_KERNEL_CACHE",
                                                      os.path.expanduser("~/.cache/lsandbox-kernels")))
    args = p.parse_args()
    kernels = args.kernels or DEFAULT_KERNELS
    keep = os.path.join(args.cache, "results")
    if args.report:
        results = [stored_result(s, keep) for s in kernels]
        print_table(results, keep)
        return 0 if all(r.ok for r in results) else 1
    if not os.path.exists(os.path.join(REPO, ".venv", "bin", "python")):
        log("no .venv: run `make setup` first")
        return 2
    for tmp in ("/tmp", "/var/tmp"):  # the guest mounts a fresh disk there: the checkout would vanish
        if os.path.realpath(REPO) == tmp or os.path.realpath(REPO).startswith(tmp + "/"):
            log(f"error: this checkout is under {tmp}, which each guest replaces with its own disk; "
                "clone it elsewhere to run the kernels")
            return 2
    try:
        with locked(os.path.join(args.cache, "prepare.lock"), "fetching kernels"):
            apt = Apt(os.path.join(args.cache, "apt"))
            apt.update()
            prepared = []
            for s in kernels:
                k = fetch_kernel(apt, args.cache, s)
                prepared.append((k, build_initramfs(k, args.cache)))
    except (SetupError, subprocess.CalledProcessError) as e:
        log(f"error: {e}")
        return 2
    commit = source_commit()
    snap = snapshot(args.cache)

    def one(k: Kernel, initrd: str) -> Result:
        with locked(os.path.join(keep, f"{k.series}.lock"), f"{k.series}'s results"):
            r = run_kernel(k, initrd, args, keep, snap, commit)
        log(f"{k.series}: {r.passed} passed, {r.failed} failed, {r.skipped} skipped in {r.seconds:.0f}s"
            + (f" ({r.error})" if r.error else ""))
        return r

    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(lambda kp: one(*kp), prepared))  # in the list's order
    finally:
        shutil.rmtree(snap, ignore_errors=True)
    print_table(results, keep)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
