#!/bin/sh
# Runs as PID 1 inside the test-kernels guest, in the host's userland (read-only 9p under a
# tmpfs overlay). Runs the suites as root, then as an unprivileged user (uid 65534), and leaves
# junit xml, logs and the kernel's facts in /lsbx-results for the host to read; then powers off.
# Parameters come from /lsbx-results/params.sh, written by scripts/test_kernels.py.
R=/lsbx-results
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# /tmp and /var/tmp on the ext4 disk the host attached (tmpfs where it is missing)
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lsbx-disk
if mount -t ext4 /dev/vda /run/lsbx-disk 2>/dev/null; then
    mkdir -p /run/lsbx-disk/tmp /run/lsbx-disk/var-tmp
    chmod 1777 /run/lsbx-disk/tmp /run/lsbx-disk/var-tmp
    mount --bind /run/lsbx-disk/tmp /tmp
    mount --bind /run/lsbx-disk/var-tmp /var/tmp
else
    mount -t tmpfs -o mode=1777 tmpfs /tmp
fi
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
ip link set lo up 2>/dev/null
hostname lsbx-guest 2>/dev/null

. "$R/params.sh"
# TCG emulation: children's deadlines x4 (tests/_util.py), and pytest's per-test limit raised
export HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 LSANDBOX_TEST_TIME_FACTOR=${TIME_FACTOR:-4}
uname -r >"$R/uname"
cat /sys/kernel/security/lsm >"$R/lsm" 2>/dev/null
# The working tree as it was when the run started (the venv stays the repository's own)
if [ -n "${SNAPSHOT:-}" ] && [ -d "$SNAPSHOT" ]; then
    mkdir -p /run/lsbx-repo
    mount --bind "$REPO" /run/lsbx-repo
    mount --bind "$SNAPSHOT" "$REPO"
    mount --bind /run/lsbx-repo/.venv "$REPO/.venv"
fi
cd "$REPO" || { echo "guest: no $REPO" >"$R/error"; echo o >/proc/sysrq-trigger; }
"$PY" -c 'import landlock; print(landlock.kernel_abi())' >"$R/abi" 2>"$R/abi.err"
"$PY" scripts/kernels/landlock_bits.py >"$R/landlock-bits" 2>&1

run_as() {  # run_as <name> <command prefix...>: one pytest run, its junit and log in $R
    name=$1; shift
    out=/var/tmp/lsbx-$name  # HOME: not under /tmp, which :workspace writes (run would note it)
    mkdir -p "$out"; chmod 0777 "$out"
    start=$(date +%s)
    # pytest's arguments: one per line in $R/pytest-args (appended by xargs, spaces kept)
    xargs -d '\n' -a "$R/pytest-args" timeout "$TIMEOUT" "$@" env HOME="$out" "$PY" -m pytest -q \
        -p no:randomly -p no:cacheprovider --timeout=1200 --junitxml="$out/junit.xml" \
        >"$R/$name.log" 2>&1  # opened by root: live
    echo $? >"$R/$name.rc"
    echo $(( $(date +%s) - start )) >"$R/$name.seconds"
    cp "$out/junit.xml" "$R/$name.junit.xml" 2>/dev/null
}

run_as root
if [ "${UNPRIVILEGED:-1}" = 1 ]; then
    # The unprivileged user must reach the interpreter (e.g. a pyenv python under /root, 0700):
    # let others traverse its directories, in the guest's overlay only.
    d=$(dirname "$(readlink -f "$PY")")
    while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
    run_as user setpriv --reuid=65534 --regid=65534 --clear-groups
fi
echo done >"$R/finished"
sync
echo o >/proc/sysrq-trigger
sleep 5
