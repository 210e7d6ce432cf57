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
#include <sys/prctl.h>
#include <sys/types.h>
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
