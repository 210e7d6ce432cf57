/* The broker's fast path for the common AF_UNIX connect, compiled with cffi (API mode).
 *
 * Why C: a brokered connect is a dozen system calls (poll, RECV, process_vm_readv, ID_VALID,
 * pidfd_open, pidfd_getfd, SO_DOMAIN, the O_PATH pin, fstat, readlink, connect, SEND).
 * Issued one by one from Python each costs interpreter work on top of the kernel's; here they
 * cost only the kernel's, and lsb_fast_serve() keeps serving without returning to Python.
 *
 * Decisions: the policy's AF_UNIX rules are exported to a table here (struct lsb_rules, built
 * by ``_fastpath.export_rules`` from the same longest-match table the Python decision uses;
 * a differential test checks both agree). C connects on its own only when the pinned
 * socket's real path is allowed by a rule (or by ``dangerously_allow_all_unix_sockets``) and
 * no component of it is in a place the sandbox can rename (``_provenance``: nothing to
 * check). Everything else (a denial, which needs an event; no rule; a socket the provenance
 * check must look at) stops with LSB_DECIDE and the pin held, and Python decides. Anything
 * unusual (another syscall, a relative or /proc path, a symlink, a target whose ids are not
 * the ones this thread holds, a hard-linked socket, a missing file, a non-AF_UNIX socket, any
 * error) comes back as LSB_SLOW with the notification, nothing held, and the Python broker
 * handles it from the start.
 *
 * Identity: the calling broker thread holds the command's uids/gids (``_identity.py``); the
 * connect itself is made with an empty effective capability set (capset of this thread
 * only, around the call), so the peer sees the command and no capability is lent.
 *
 * Structures are declared here (same layout as <linux/seccomp.h>) so that old kernel headers
 * do not matter.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

struct lsb_seccomp_data {
    int32_t nr;
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t args[6];
};
struct lsb_seccomp_notif {
    uint64_t id;
    uint32_t pid;
    uint32_t flags;
    struct lsb_seccomp_data data;
};
struct lsb_seccomp_notif_resp {
    uint64_t id;
    int64_t val;
    int32_t error;
    uint32_t flags;
};
#define LSB_IOC_MAGIC '!'
#define LSB_NOTIF_RECV _IOWR(LSB_IOC_MAGIC, 0, struct lsb_seccomp_notif)
#define LSB_NOTIF_SEND _IOWR(LSB_IOC_MAGIC, 1, struct lsb_seccomp_notif_resp)
#define LSB_NOTIF_ID_VALID _IOW(LSB_IOC_MAGIC, 2, uint64_t)
#define LSB_SYS_PIDFD_OPEN 434 /* unified numbers: the same on every architecture */
#define LSB_SYS_PIDFD_GETFD 438
#define LSB_PIDFD_THREAD O_EXCL
#define LSB_SOCKADDR_MAX 128

/* PIDFD_GET_INFO (Linux 6.13): the target's credentials from the pidfd already open, instead
 * of a stat of /proc/<tid> (a /proc lookup costs several microseconds). Version 0 layout. */
struct lsb_pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define LSB_PIDFD_GET_INFO _IOWR(0xFF, 11, struct lsb_pidfd_info)
#define LSB_PIDFD_INFO_CREDS 2ULL

enum { LSB_NONE = 0, LSB_WAKE = 1, LSB_HUP = 2, LSB_SLOW = 3, LSB_DECIDE = 4, LSB_BLOCKED = 5 };

struct lsb_fast {
    uint64_t id;
    uint32_t pid;
    int32_t nr;
    uint64_t args[6];
    int sock;      /* LSB_DECIDE: our copy of the target's socket */
    int pin;       /* LSB_DECIDE: O_PATH pin of the socket inode */
    int path_len;  /* LSB_DECIDE: the pin's real path (readlink of /proc/self/fd/pin) */
    char path[4096];
    uint64_t served;  /* connects lsb_fast_serve() decided and answered on its own */
};

static int lsb_close_keep_errno(int fd)
{
    int saved = errno;
    if (fd >= 0)
        close(fd);
    errno = saved;
    return -1;
}

/* Everything after RECV for a connect; returns LSB_DECIDE or LSB_SLOW (nothing held). */
/* ids: the calling thread's real, effective, saved, fs uid, then the same four gids. */
static int lsb_try_connect(struct lsb_fast *r, const unsigned int *ids)
{
    char addr[LSB_SOCKADDR_MAX + 1];
    char full[64 + LSB_SOCKADDR_MAX];
    uint64_t len = r->args[2] & 0xffffffffu;
    struct stat st;
    int n, pidfd, sock, pin, dom = -1;
    socklen_t dlen = sizeof dom;

    if (len < 3 || len > sizeof(struct sockaddr_un))
        return LSB_SLOW;
    struct iovec local = {addr, len}, remote = {(void *)(uintptr_t)r->args[1], len};
    if (syscall(SYS_process_vm_readv, (long)r->pid, &local, 1UL, &remote, 1UL, 0UL) != (long)len)
        return LSB_SLOW;
    uint16_t family;
    memcpy(&family, addr, sizeof family);  /* no unaligned or type-punned load */
    addr[len] = 0;
    if (family != AF_UNIX || addr[2] != '/')
        return LSB_SLOW;                 /* abstract, unnamed, relative: the Python path */
    const char *path = addr + 2;         /* NUL-terminated within addrlen, or at addr[len] */
    if (!strncmp(path, "/proc/", 6) || !strcmp(path, "/proc") || !strncmp(path, "/dev/fd", 7))
        return LSB_SLOW;                 /* /proc/self and friends name the target's */
    n = snprintf(full, sizeof full, "/proc/%u", r->pid);
    pidfd = (int)syscall(LSB_SYS_PIDFD_OPEN, (int)r->pid, LSB_PIDFD_THREAD);
    if (pidfd < 0)
        return LSB_SLOW;
    struct lsb_pidfd_info info = {.mask = LSB_PIDFD_INFO_CREDS};
    if (ioctl(pidfd, LSB_PIDFD_GET_INFO, &info) == 0 && (info.mask & LSB_PIDFD_INFO_CREDS)) {
        if (info.ruid != ids[0] || info.euid != ids[1] || info.suid != ids[2] || info.fsuid != ids[3] ||
            info.rgid != ids[4] || info.egid != ids[5] || info.sgid != ids[6] || info.fsgid != ids[7])
            return lsb_close_keep_errno(pidfd), LSB_SLOW;  /* Python takes their identity */
    } else if (stat(full, &st) != 0 || st.st_uid != ids[1] || st.st_gid != ids[5]) {
        return lsb_close_keep_errno(pidfd), LSB_SLOW;      /* kernel < 6.13: /proc owner */
    }
    sock = (int)syscall(LSB_SYS_PIDFD_GETFD, pidfd, (int)(r->args[0] & 0xffffffffu), 0U);
    close(pidfd);
    if (sock < 0)
        return LSB_SLOW;
    if (getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &dom, &dlen) != 0 || dom != AF_UNIX)
        return lsb_close_keep_errno(sock), LSB_SLOW;
    snprintf(full + n, sizeof full - n, "/root%s", path);
    pin = open(full, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pin < 0)
        return lsb_close_keep_errno(sock), LSB_SLOW;
    if (fstat(pin, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_nlink != 1)
        goto slow;                       /* symlink, not a socket, hard link: Python decides */
    snprintf(full, sizeof full, "/proc/self/fd/%d", pin);
    ssize_t pl = readlink(full, r->path, sizeof r->path - 1);
    if (pl <= 0 || pl >= (ssize_t)sizeof r->path - 1)
        goto slow;
    r->path[pl] = 0;
    r->path_len = (int)pl;
    r->sock = sock;
    r->pin = pin;
    return LSB_DECIDE;
slow:
    close(pin);
    close(sock);
    return LSB_SLOW;
}

/* Wait for the next notification (poll on the listener and the wake pipe, then RECV) and
 * prepare it: LSB_DECIDE for a connect the fast path can perform, LSB_SLOW for the rest. */
int lsb_fast_next(int listener, int wake_fd, int timeout_ms, int connect_nr,
                  const unsigned int *ids, struct lsb_fast *r)
{
    struct pollfd p[2] = {{listener, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    struct lsb_seccomp_notif n;
    int rc = poll(p, 2, timeout_ms);

    if (rc < 0)
        return errno == EINTR ? LSB_NONE : -errno;
    if (rc == 0)
        return LSB_NONE;
    if (p[1].revents)
        return LSB_WAKE;
    if (!(p[0].revents & POLLIN))
        return p[0].revents ? LSB_HUP : LSB_NONE;
    memset(&n, 0, sizeof n);
    if (ioctl(listener, LSB_NOTIF_RECV, &n) != 0)
        return (errno == ENOENT || errno == EINTR) ? LSB_NONE : -errno;
    r->id = n.id;
    r->pid = n.pid;
    r->nr = n.data.nr;
    memcpy(r->args, n.data.args, sizeof r->args);
    r->sock = r->pin = -1;
    r->path_len = 0;
    if (n.data.nr != connect_nr)
        return LSB_SLOW;
    rc = lsb_try_connect(r, ids);
    if (rc == LSB_DECIDE && ioctl(listener, LSB_NOTIF_ID_VALID, &r->id) != 0) {
        close(r->pin);   /* the target left the call: the Python path sees ID_VALID fail */
        close(r->sock);
        r->sock = r->pin = -1;
        return LSB_SLOW;
    }
    return rc;
}

/* Answer notification `id` (errno positive, sent negated). A target gone meanwhile is fine. */
int lsb_fast_answer(int listener, uint64_t id, int64_t val, int32_t error)
{
    struct lsb_seccomp_notif_resp resp = {id, val, error > 0 ? -error : error, 0};
    if (ioctl(listener, LSB_NOTIF_SEND, &resp) != 0 && errno != ENOENT)
        return -errno;
    return 0;
}

struct lsb_cap_header {
    uint32_t version;
    int pid;
};
#define LSB_CAP_V3 0x20080522

/* capset of the calling thread: words = eff, perm, inh of the low then the high 32 bits. */
static void lsb_capset(const unsigned int *words)
{
    struct lsb_cap_header h = {LSB_CAP_V3, 0};
    int saved = errno;
    syscall(SYS_capset, &h, words);
    errno = saved;
}

/* connect() with no effective capability: caps = the bare sets then the sets to restore
 * (``_identity.Caps.words``), or NULL where the thread has none to drop. */
static int lsb_bare_connect(int sock, const struct sockaddr_un *sa, socklen_t salen,
                            const unsigned int *caps)
{
    int rc, err;
    if (caps)
        lsb_capset(caps);
    rc = connect(sock, (const struct sockaddr *)sa, salen);
    err = errno;
    if (caps)
        lsb_capset(caps + 6);
    errno = err;
    return rc;
}

/* Connect the target's socket through the pin and answer. A blocking socket is connected
 * non-blocking (an AF_UNIX connect never half-completes); when the server's backlog is full
 * this returns -EAGAIN with nothing answered and both fds kept, and Python retries with
 * leadership handed over. Otherwise it answers and closes both fds. */
int lsb_fast_connect(int listener, struct lsb_fast *r, const unsigned int *caps)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int flags = fcntl(r->sock, F_GETFL), err = 0;
    socklen_t salen;

    salen = offsetof(struct sockaddr_un, sun_path) + 1 +
            (socklen_t)snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", r->pin);
    if (flags < 0) {
        err = errno;
    } else if (flags & O_NONBLOCK) {
        if (lsb_bare_connect(r->sock, &sa, salen, caps) != 0)
            err = errno;
    } else {
        fcntl(r->sock, F_SETFL, flags | O_NONBLOCK);
        if (lsb_bare_connect(r->sock, &sa, salen, caps) != 0)
            err = errno;
        fcntl(r->sock, F_SETFL, flags);
        if (err == EAGAIN)
            return -EAGAIN;
    }
    close(r->pin);
    close(r->sock);
    r->sock = r->pin = -1;
    return lsb_fast_answer(listener, r->id, 0, err);
}

/* ---- the exported AF_UNIX rule table ------------------------------------------------- */

/* Flags of a table entry (a path): an AF_UNIX rule there (allow or none), and whether the
 * sandbox can rename what is below it (a writable filesystem rule, or the socket directory;
 * absent when the provenance check is off). */
#define LSB_R_ALLOW 1
#define LSB_R_NONE 2
#define LSB_R_EXPOSE 4
/* lsb_rules_lookup(): the deepest AF_UNIX rule's verdict (0: no rule), and LSB_R_EXPOSE when
 * some directory above the path is exposed. */

struct lsb_rule_slot {
    uint64_t hash;
    char *path;  /* NULL: empty slot */
    int len;
    int flags;
};

struct lsb_rules {
    uint64_t mask;  /* slots - 1, slots a power of two, at most half full */
    uint64_t used;
    int allow_all;  /* no rule: allowed (dangerously_allow_all_unix_sockets) */
    struct lsb_rule_slot *slots;
};

static uint64_t lsb_hash(const char *p, int len)
{
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (int i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

struct lsb_rules *lsb_rules_new(int entries, int allow_all)
{
    uint64_t n = 8;
    struct lsb_rules *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    while (n < 2 * (uint64_t)(entries > 0 ? entries : 0) + 2)
        n <<= 1;
    t->slots = calloc(n, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    t->mask = n - 1;
    t->allow_all = allow_all;
    return t;
}

void lsb_rules_free(struct lsb_rules *t)
{
    if (!t)
        return;
    for (uint64_t i = 0; i <= t->mask; i++)
        free(t->slots[i].path);
    free(t->slots);
    free(t);
}

static struct lsb_rule_slot *lsb_rules_slot(const struct lsb_rules *t, const char *p, int len,
                                            uint64_t h)
{
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct lsb_rule_slot *s = &t->slots[i];
        if (!s->path || (s->hash == h && s->len == len && !memcmp(s->path, p, (size_t)len)))
            return s;
    }
}

/* Add `flags` to the entry at path p (len bytes); 0, or -1 when out of memory or full. */
int lsb_rules_add(struct lsb_rules *t, const char *p, int len, int flags)
{
    uint64_t h = lsb_hash(p, len);
    struct lsb_rule_slot *s = lsb_rules_slot(t, p, len, h);
    if (!s->path) {
        if (2 * (t->used + 1) > t->mask + 1)
            return -1;
        s->path = malloc((size_t)len + 1);
        if (!s->path)
            return -1;
        memcpy(s->path, p, (size_t)len);
        s->path[len] = 0;
        s->len = len;
        s->hash = h;
        t->used++;
    }
    s->flags |= flags;
    return 0;
}

static int lsb_rules_flags(const struct lsb_rules *t, const char *p, int len)
{
    struct lsb_rule_slot *s = lsb_rules_slot(t, p, len, lsb_hash(p, len));
    return s->path ? s->flags : 0;
}

/* The prefix of p[0:len] before its last '/' ("/" when that is the first byte), or -1 when
 * p[0:len] has no '/': the next ancestor, as ``policy._longest.ancestors`` walks. */
static int lsb_up(const char *p, int len)
{
    if (len == 1 && p[0] == '/')
        return -1;
    for (int i = len - 1; i >= 0; i--)
        if (p[i] == '/')
            return i ? i : 1;
    return -1;
}

int lsb_rules_lookup(const struct lsb_rules *t, const char *p, int len)
{
    int verdict = 0, exposed = 0, f;
    for (int l = len; l >= 0 && !verdict; l = lsb_up(p, l)) {
        f = lsb_rules_flags(t, p, l);
        verdict = f & (LSB_R_ALLOW | LSB_R_NONE);
    }
    if (!(len == 1 && p[0] == '/')) {  /* the directories above the path (its parent first) */
        int head = lsb_up(p, len);
        for (int l = head < 0 ? len : head; l >= 0 && !exposed; l = lsb_up(p, l))
            exposed = lsb_rules_flags(t, p, l) & LSB_R_EXPOSE;
    }
    return verdict | exposed;
}

/* May C connect on its own to the socket at real path p? */
static int lsb_rules_fast(const struct lsb_rules *t, const char *p, int len)
{
    int v = lsb_rules_lookup(t, p, len);
    if (v & LSB_R_EXPOSE)
        return 0;
    return (v & LSB_R_ALLOW) || (!(v & LSB_R_NONE) && t->allow_all);
}

/* Serve notifications until one needs Python: connects the table allows are pinned,
 * connected through the pin and answered here (counted in r->served). Returns what
 * lsb_fast_next() returns for the rest (LSB_DECIDE: the pin is held for Python), or
 * LSB_BLOCKED: an allowed connect whose server's backlog is full, sock and pin held, nothing
 * answered (Python waits for it with leadership handed over). */
int lsb_fast_serve(int listener, int wake_fd, int timeout_ms, int connect_nr,
                   const unsigned int *ids, const struct lsb_rules *t, const unsigned int *caps,
                   struct lsb_fast *r)
{
    for (;;) {
        int st = lsb_fast_next(listener, wake_fd, timeout_ms, connect_nr, ids, r);
        if (st != LSB_DECIDE || !t || !lsb_rules_fast(t, r->path, r->path_len))
            return st;
        if (lsb_fast_connect(listener, r, caps) == -EAGAIN)
            return LSB_BLOCKED;
        r->served++;
    }
}
