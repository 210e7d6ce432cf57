/* The sandbox's init forking the command, in C (built into _fastpath_c with the broker's fast
 * path; ``_child._fork_command`` falls back to Python where it is not built).
 *
 * Why C: init is a forked copy of a Python process. A Python fork copies that process's page
 * tables, runs the interpreter's after-fork work, and every object the child then touches
 * (reference counts) copies a page; all of it before the command's execve, on every launch.
 * Here the command runs only the few calls below between fork and execve, the same calls in
 * the same order as the Python path (``_fork_command``, ``_foreground``, ``_exec``), and
 * reports a failure with the same typed record (``_reports``: kind, step, errno, text):
 *
 *   1. unblock the signals init blocked (the forwarded ones and SIGCHLD), once no handler
 *      is left that could run before execve (vfork: the command shares init's memory until
 *      then);
 *   2. PR_SET_PDEATHSIG SIGKILL (init's death kills the command);
 *   3. its own process group, the terminal's foreground if it has one (SIGTTOU ignored
 *      meanwhile, errors of tcsetpgrp ignored);
 *      a failure of 2 or 3: SETUP at step INIT, "[Errno N] strerror", exit 125;
 *   4. SIGPIPE and SIGXFSZ back to their defaults (Python ignores them; an ignored signal
 *      stays ignored across execve);
 *   5. execve; a failure: EXEC at step EXEC, "<argv0>: strerror", exit 126 (EACCES, ENOEXEC,
 *      EISDIR) or 127.
 *
 * Everything was decided and encoded by the caller (argv, envp, the report text's prefix):
 * nothing here allocates, and only async-signal-safe calls run in the child.
 *
 * Why vfork: init waits only until the command has called execve (or failed and exited),
 * and its page tables are not copied for a process that replaces them at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* _reports.Kind / Step (a unit test compares them) */
#define LSB_KIND_SETUP 2
#define LSB_KIND_EXEC 3
#define LSB_STEP_INIT 8
#define LSB_STEP_EXEC 9
#define LSB_REPORT_HEADER 14 /* struct "<BBHqH": kind, step, errno, value, text length */
#define LSB_REPORT_MAX_TEXT 4000

static void lsb_report(int fd, int kind, int step, int err, const char *a, size_t alen, const char *b)
{
    unsigned char buf[LSB_REPORT_HEADER + LSB_REPORT_MAX_TEXT];
    size_t blen = strlen(b), len = alen + blen;
    if (alen > LSB_REPORT_MAX_TEXT)
        alen = LSB_REPORT_MAX_TEXT;
    if (len > LSB_REPORT_MAX_TEXT)
        len = LSB_REPORT_MAX_TEXT;
    memset(buf, 0, LSB_REPORT_HEADER);
    buf[0] = (unsigned char)kind;
    buf[1] = (unsigned char)step;
    buf[2] = (unsigned char)(err & 0xff);
    buf[3] = (unsigned char)((err >> 8) & 0xff);
    buf[12] = (unsigned char)(len & 0xff);
    buf[13] = (unsigned char)(len >> 8);
    memcpy(buf + LSB_REPORT_HEADER, a, alen);
    memcpy(buf + LSB_REPORT_HEADER + alen, b, len - alen);
    ssize_t ignored = write(fd, buf, LSB_REPORT_HEADER + len);  /* one write: atomic, as in Python */
    (void)ignored;
}

/* "[Errno N] strerror", what str(OSError(N, strerror)) reads. */
static void lsb_report_setup(int fd, int err)
{
    char num[32] = "[Errno ";
    int n = 7, digits = 0;
    char rev[12];
    unsigned int v = (unsigned int)err;
    do {
        rev[digits++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && digits < (int)sizeof rev);
    while (digits)
        num[n++] = rev[--digits];
    num[n++] = ']';
    num[n++] = ' ';
    lsb_report(fd, LSB_KIND_SETUP, LSB_STEP_INIT, err, num, (size_t)n, strerror(err));
}

/* The command's side, from vfork to execve: it runs on init's memory (init waits meanwhile), so
 * it writes only its own stack frame and errno, and no signal handler can run (see below). */
__attribute__((noinline, noreturn)) static void lsb_command(const char *path, char *const argv[],
                                                            char *const envp[], const sigset_t *mask,
                                                            int tty, int report_fd, const char *prefix,
                                                            int prefix_len)
{
    struct sigaction dfl, cur;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    /* Every signal is blocked here (the caller blocked them before vfork): a handled one goes
     * back to its default first, so none can run a handler on init's memory once unblocked.
     * Nothing is lost: execve resets handled signals to their defaults anyway. */
    for (int sig = 1; sig < _NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &cur) == 0 && cur.sa_handler != SIG_DFL
            && cur.sa_handler != SIG_IGN)
            sigaction(sig, &dfl, NULL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || setpgid(0, 0) != 0) {
        lsb_report_setup(report_fd, errno);
        _exit(125);
    }
    if (tty >= 0) {
        struct sigaction ign, old;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGTTOU, &ign, &old);
        tcsetpgrp(tty, getpgrp());
        sigaction(SIGTTOU, &old, NULL);
    }
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGXFSZ, &dfl, NULL);
    execve(path, argv, envp);
    int err = errno;
    lsb_report(report_fd, LSB_KIND_EXEC, LSB_STEP_EXEC, err, prefix, (size_t)prefix_len, strerror(err));
    _exit(err == EACCES || err == ENOEXEC || err == EISDIR ? 126 : 127);
}

/* Start the command (vfork: no copy of init's page tables; init resumes once the command has
 * called execve or exited); returns its pid, or -errno when vfork fails. ``unblock``: bit N-1
 * for signal N, unblocked in the command. ``tty``: the terminal's descriptor, or -1.
 * ``prefix``: "<argv0>: " as the report's UTF-8 text (newlines replaced, as _reports.encode). */
int lsb_fork_exec(const char *path, char *const argv[], char *const envp[], uint64_t unblock, int tty,
                  int report_fd, const char *prefix, int prefix_len)
{
    sigset_t all, old, mask;
    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &old) != 0)
        return -errno;
    mask = old;
    for (int sig = 1; sig <= 64 && sig < _NSIG; sig++)
        if (unblock >> (sig - 1) & 1)
            sigdelset(&mask, sig);
    pid_t pid = vfork();
    if (pid == 0)
        lsb_command(path, argv, envp, &mask, tty, report_fd, prefix, prefix_len);
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -err : (int)pid;
}

/* ---- init's own setup, from PDEATHSIG to filter A (``_child._init_steps``) ----------------
 *
 * The same system calls as the Python steps, in the same order: PDEATHSIG; a fresh procfs
 * over /proc; the working directory; every capability dropped and securebits locked
 * (``_caps.drop_all``); no_new_privs and the Landlock ruleset (``Ruleset.restrict_self``);
 * filter B with its listener handed over (``install_and_hand_over``); filter A.
 *
 * This never reports: at the first step that fails (or that it is not given: ``stop``), it
 * returns that stage with whatever it already received (a filter message, the listener it
 * could not send), and Python performs that step and the rest, so every failure is reported
 * by the Python step itself, with its own text. Each stage is left so that doing it again in
 * Python has the same effect as doing it once: nothing is attached, applied or installed by
 * a stage that fails here, except the capability calls, which are idempotent. */

enum {
    LSB_S_PDEATHSIG = 0, LSB_S_PROCFS = 1, LSB_S_CHDIR = 2, LSB_S_CAPS = 3, LSB_S_RESTRICT = 4,
    LSB_S_FILTER_B = 5, LSB_S_HANDOVER = 6, LSB_S_FILTER_A = 7, LSB_S_DONE = 8
};

struct lsb_init {
    int stop;                 /* the first stage left to Python */
    int sync_fd;              /* SEQPACKET to the supervisor */
    uint64_t proc_attrs;      /* MOUNT_ATTR_* of the fresh procfs; (uint64_t)-1: none */
    const char *cwd;          /* chdir here, or NULL */
    int reenter_cwd;          /* without cwd: chdir(getcwd()), errors ignored */
    int landlock;             /* apply the ruleset below */
    uint64_t handled_fs, handled_net, scoped;
    uint32_t attr_size, restrict_flags;
    int n_rules;
    const char *const *rule_paths;
    const uint64_t *rule_dir, *rule_file;
    int n_ports;
    const uint64_t *ports, *port_access;
    const unsigned char *filter_b; int filter_b_len;  /* NULL: received ("B" + program) */
    uint32_t b_flags;                                 /* seccomp flags of filter B */
    const unsigned char *filter_a; int filter_a_len;  /* NULL: received ("A" + program) */
    /* out */
    int listener;             /* LSB_S_HANDOVER: filter B's listener, not sent */
    unsigned char *b_msg; int b_len;  /* in: a 65536-byte buffer; out: received, or -1 */
    unsigned char *a_msg; int a_len;
};

#define LSB_PR_CAPBSET_DROP 24
#define LSB_PR_GET_SECUREBITS 27
#define LSB_PR_SET_SECUREBITS 28
#define LSB_PR_CAP_AMBIENT 47
#define LSB_PR_CAP_AMBIENT_CLEAR_ALL 4
#define LSB_SECUREBITS 0xEF /* _caps.SECUREBITS: NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE set and
                               locked, KEEP_CAPS locked off */
#define LSB_SECBIT_KEEP_CAPS 0x10

struct lsb_landlock_ruleset_attr { uint64_t handled_access_fs, handled_access_net, scoped; };
struct lsb_landlock_path_beneath_attr { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));
struct lsb_landlock_net_port_attr { uint64_t allowed_access, port; };
struct lsb_sock_fprog { unsigned short len; const void *filter; };

static int lsb_procfs(uint64_t attrs)
{
    int fs = (int)syscall(430 /* fsopen */, "proc", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0)
        return -1;
    if (syscall(431 /* fsconfig */, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) != 0)
        return lsb_close_keep_errno(fs);
    int mnt = (int)syscall(432 /* fsmount */, fs, 1 /* FSMOUNT_CLOEXEC */, attrs);
    close(fs);
    if (mnt < 0)
        return -1;
    int r = (int)syscall(429 /* move_mount */, mnt, "", AT_FDCWD, "/proc", 4 /* MOVE_MOUNT_F_EMPTY_PATH */);
    close(mnt);
    return r;
}

static int lsb_drop_caps(void)
{
    int old = prctl(LSB_PR_GET_SECUREBITS, 0, 0, 0, 0);
    if (old < 0)
        return -1;
    if ((old & LSB_SECUREBITS) != LSB_SECUREBITS
        && prctl(LSB_PR_SET_SECUREBITS, (unsigned long)((old | LSB_SECUREBITS) & ~LSB_SECBIT_KEEP_CAPS), 0, 0, 0) != 0)
        return -1;
    if (prctl(LSB_PR_CAP_AMBIENT, LSB_PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return -1;
    for (unsigned long cap = 0;; cap++)
        if (prctl(LSB_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            if (errno == EINVAL && cap > 0)
                break;  /* past the last capability of this kernel */
            return -1;
        }
    struct lsb_cap_header hdr = {0x20080522, 0};
    unsigned int data[6] = {0};
    if (syscall(SYS_capset, &hdr, data) != 0 || syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    for (int i = 0; i < 6; i++)
        if (data[i])
            return -1;
    return 0;
}

/* A rule's path opened with no symlink on it (openat2 RESOLVE_NO_SYMLINKS): one planted
 * after the policy was resolved, in the middle or at the end, gets no rule; as
 * landlock._raw._open_rule_path, with the same fallback where a profile refuses openat2. */
static int lsb_open_rule_path(const char *path)
{
    uint64_t how[3] = {O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, 0x04 /* RESOLVE_NO_SYMLINKS */};
    int pfd = (int)syscall(437 /* openat2 */, AT_FDCWD, path, how, sizeof how);
    if (pfd < 0 && (errno == ENOSYS || errno == EPERM))
        pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    return pfd;
}

static int lsb_landlock(const struct lsb_init *s)
{
    struct lsb_landlock_ruleset_attr attr = {s->handled_fs, s->handled_net, s->scoped};
    int fd = (int)syscall(444 /* landlock_create_ruleset */, &attr, (size_t)s->attr_size, 0U);
    if (fd < 0)
        return -1;
    for (int i = 0; i < s->n_rules; i++) {
        int pfd = lsb_open_rule_path(s->rule_paths[i]);
        if (pfd < 0) {
            if (errno == ENOENT || errno == ELOOP)
                continue;  /* no rule (restrict_self notes it): missing, or a link on the path */
            return lsb_close_keep_errno(fd);
        }
        struct stat st;
        if (fstat(pfd, &st) != 0) {
            lsb_close_keep_errno(pfd);
            return lsb_close_keep_errno(fd);
        }
        uint64_t acc = S_ISLNK(st.st_mode) ? 0 : S_ISDIR(st.st_mode) ? s->rule_dir[i] : s->rule_file[i];
        if (acc) {
            struct lsb_landlock_path_beneath_attr pb = {acc, pfd};
            if (syscall(445 /* landlock_add_rule */, fd, 1 /* PATH_BENEATH */, &pb, 0U) != 0) {
                lsb_close_keep_errno(pfd);
                return lsb_close_keep_errno(fd);
            }
        }
        close(pfd);
    }
    for (int i = 0; i < s->n_ports; i++) {
        struct lsb_landlock_net_port_attr np = {s->port_access[i], s->ports[i]};
        if (np.allowed_access && syscall(445, fd, 2 /* NET_PORT */, &np, 0U) != 0)
            return lsb_close_keep_errno(fd);
    }
    int r = (int)syscall(446 /* landlock_restrict_self */, fd, s->restrict_flags);
    lsb_close_keep_errno(fd);
    return r;
}

/* Receive the filter message ``kind`` into buf (its length, or -1 when recv failed); 1 if it
 * is well formed, as _child._check_filter wants it. */
static int lsb_recv_filter(int sock, char kind, unsigned char *buf, int *len)
{
    ssize_t n;
    do
        n = recv(sock, buf, 65536, 0);
    while (n < 0 && errno == EINTR);
    *len = (int)n;
    return n >= 9 && buf[0] == (unsigned char)kind && (n - 1) % 8 == 0;
}

static int lsb_install(const unsigned char *code, int len, unsigned int flags)
{
    struct lsb_sock_fprog prog = {(unsigned short)(len / 8), code};
    return (int)syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &prog);
}

static int lsb_send_fd(int sock, int fd)
{
    char byte = 'L';
    struct iovec iov = {&byte, 1};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do
        n = sendmsg(sock, &msg, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

/* Returns the first stage left to Python (LSB_S_DONE: none). */
int lsb_init_steps(struct lsb_init *s)
{
    s->listener = -1;
    s->b_len = s->a_len = -1;
#define LSB_STAGE(n) if (s->stop <= (n)) return (n)
    LSB_STAGE(LSB_S_PDEATHSIG);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        return LSB_S_PDEATHSIG;
    LSB_STAGE(LSB_S_PROCFS);
    if (s->proc_attrs != (uint64_t)-1 && lsb_procfs(s->proc_attrs) != 0)
        return LSB_S_PROCFS;
    LSB_STAGE(LSB_S_CHDIR);
    if (s->cwd) {
        if (chdir(s->cwd) != 0)
            return LSB_S_CHDIR;
    } else if (s->reenter_cwd) {
        char *here = getcwd(NULL, 0);
        if (here) {
            if (chdir(here) != 0) { /* ignored, as in Python */ }
            free(here);
        }
    }
    LSB_STAGE(LSB_S_CAPS);
    if (lsb_drop_caps() != 0)
        return LSB_S_CAPS;
    LSB_STAGE(LSB_S_RESTRICT);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || (s->landlock && lsb_landlock(s) != 0))
        return LSB_S_RESTRICT;
    LSB_STAGE(LSB_S_FILTER_B);
    const unsigned char *code = s->filter_b;
    int len = s->filter_b_len;
    if (!code) {
        if (!lsb_recv_filter(s->sync_fd, 'B', s->b_msg, &s->b_len))
            return LSB_S_FILTER_B;
        code = s->b_msg + 1;
        len = s->b_len - 1;
    }
    int listener = lsb_install(code, len, s->b_flags);
    if (listener < 0)
        return LSB_S_FILTER_B;
    if (lsb_send_fd(s->sync_fd, listener) != 0) {
        s->listener = listener;
        return LSB_S_HANDOVER;
    }
    close(listener);
    LSB_STAGE(LSB_S_FILTER_A);
    code = s->filter_a;
    len = s->filter_a_len;
    if (!code) {
        if (!lsb_recv_filter(s->sync_fd, 'A', s->a_msg, &s->a_len))
            return LSB_S_FILTER_A;
        code = s->a_msg + 1;
        len = s->a_len - 1;
    }
    if (lsb_install(code, len, 0) < 0)
        return LSB_S_FILTER_A;
    return LSB_S_DONE;
#undef LSB_STAGE
}

/* ---- init after its setup: the command, then PID 1's loop (``_child._init``) ---------------
 * What _fork_command and _serve_as_init do: start the command (lsb_fork_exec; a failure is
 * SETUP at step INIT, "[Errno N] strerror", exit 125), then reap everything, forward the
 * signals of ``mask`` (blocked by the caller) to the command, and when the command has
 * ended report its wait status (STATUS) and exit 0. Any other failure: exit 125. A timeout
 * of one second on each wait, so that even a lost SIGCHLD only delays the reaping. */

#define LSB_KIND_STATUS 4

static void lsb_report_status(int fd, int status)
{
    unsigned char buf[LSB_REPORT_HEADER];
    uint64_t v = (uint64_t)(int64_t)status;
    memset(buf, 0, sizeof buf);
    buf[0] = LSB_KIND_STATUS;
    for (int i = 0; i < 8; i++)
        buf[4 + i] = (unsigned char)(v >> (8 * i));
    ssize_t ignored = write(fd, buf, sizeof buf);
    (void)ignored;
}

void lsb_serve_init(const char *path, char *const argv[], char *const envp[], uint64_t mask, int tty,
                    int report_fd, const char *prefix, int prefix_len)
{
    int cmd = lsb_fork_exec(path, argv, envp, mask, tty, report_fd, prefix, prefix_len);
    if (cmd < 0) {
        lsb_report_setup(report_fd, -cmd);
        _exit(125);
    }
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig <= 64 && sig < _NSIG; sig++)
        if (mask >> (sig - 1) & 1)
            sigaddset(&set, sig);
    for (;;) {
        struct timespec second = {1, 0};
        int sig = sigtimedwait(&set, NULL, &second);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                _exit(125);
            sig = SIGCHLD;
        }
        if (sig != SIGCHLD) {
            if (kill(cmd, sig) != 0 && errno != ESRCH)
                _exit(125);
            continue;
        }
        for (;;) {
            int status;
            pid_t got = waitpid(-1, &status, WNOHANG);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                _exit(125);
            if (got == 0)
                break;
            if (got == cmd) {
                lsb_report_status(report_fd, status);
                _exit(0);
            }
        }
    }
}
