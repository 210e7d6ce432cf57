#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages lsandbox needs to build and test, and nothing more.
#   libcap-dev           python-prctl compiles against <sys/capability.h>
#   gcc, python3-dev     python-prctl's C extension; tests compile tiny C probes
#   python3-venv         `python3 -m venv` on Debian/Ubuntu
#   seccomp              scmp_sys_resolver: cross-checks our syscall tables (tests only)
#   git                  tests run real git inside the sandbox
#   iproute2, util-linux `ip`, `unshare`, `setpriv` used by tests
#   xvfb, x11-utils      Xvfb and xdpyinfo: the X11 end-to-end test (tests only; skipped if absent)
#   vagrant              `vagrant validate` of vagrant/Vagrantfile (tests only; no provider)
#   --kernels: qemu-system-x86, busybox-static, kmod, cpio, xz-utils, zstd, e2fsprogs for `make test-kernels`
#              (qemu boots Debian kernels with a static-busybox initramfs of their own modules)
# Usage: install-system-deps.sh [--bench | --kernels]   (--bench adds the peers we benchmark against)
set -euo pipefail
# Not Debian/Ubuntu (e.g. the Fedora Vagrant box installs its own packages with dnf)
if [ "${LSANDBOX_NO_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then exit 0; fi

want=(libcap-dev gcc git seccomp iproute2 util-linux xvfb x11-utils)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then want+=(python3-venv); fi
if ! python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
    want+=(python3-dev)
fi
# vagrant is optional (Ubuntu 24.04 no longer packages it): tried separately below.
optional=()
if [ "${LSANDBOX_SKIP_VAGRANT:-0}" != 1 ] && ! command -v vagrant >/dev/null 2>&1; then optional+=(vagrant); fi
if [ "${1:-}" = "--bench" ]; then want+=(bubblewrap socat ripgrep nodejs npm); fi
if [ "${1:-}" = "--kernels" ]; then want=(qemu-system-x86 busybox-static kmod cpio xz-utils zstd e2fsprogs); optional=(); fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (nvm, the image): do not fight an existing node.
if [ "${1:-}" = "--bench" ] && command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-system-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for p in "${optional[@]}"; do
    $sudo apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 \
        || echo "install-system-deps: $p is not available here; the tests that need it are skipped" >&2
done
