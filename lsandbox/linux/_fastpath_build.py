"""Build the broker's C fast path (``_fastpath.h``) and the sandbox init's fork of the command
(``_fastpath_child.h``) into ``_fastpath_c`` with cffi's API mode.

Run by ``make speedups`` (``scripts/generate.py``), or ``python -m
lsandbox.linux._fastpath_build``; needs a C compiler and the Python headers. The module is a
build product (gitignored). Its stamp is a CRC of the C source and declarations: a stale
module (source changed since it was built) is ignored at import, so a forgotten rebuild
costs speed, never correctness. Without the module the broker runs in pure Python, and init
forks the command in Python.
"""

from __future__ import annotations

import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "_fastpath.h")
CHILD_HEADER = os.path.join(HERE, "_fastpath_child.h")

CDEF = """
    struct lsb_fast {
        uint64_t id;
        uint32_t pid;
        int32_t nr;
        uint64_t args[6];
        int sock;
        int pin;
        int path_len;
        char path[4096];
        uint64_t served;
    };
    struct lsb_rules;
    struct lsb_rules *lsb_rules_new(int entries, int allow_all);
    void lsb_rules_free(struct lsb_rules *t);
    int lsb_rules_add(struct lsb_rules *t, const char *p, int len, int flags);
    int lsb_rules_lookup(const struct lsb_rules *t, const char *p, int len);
    int lsb_fast_serve(int listener, int wake_fd, int timeout_ms, int connect_nr,
                       const unsigned int *ids, const struct lsb_rules *t, const unsigned int *caps,
                       struct lsb_fast *r);
    int lsb_fast_next(int listener, int wake_fd, int timeout_ms, int connect_nr,
                      const unsigned int *ids, struct lsb_fast *r);
    int lsb_fast_connect(int listener, struct lsb_fast *r, const unsigned int *caps);
    int lsb_fast_answer(int listener, uint64_t id, int64_t val, int32_t error);
    int lsb_fast_stamp(void);
    struct lsb_init {
        int stop;
        int sync_fd;
        uint64_t proc_attrs;
        const char *cwd;
        int reenter_cwd;
        int landlock;
        uint64_t handled_fs, handled_net, scoped;
        uint32_t attr_size, restrict_flags;
        int n_rules;
        const char *const *rule_paths;
        const uint64_t *rule_dir, *rule_file;
        int n_ports;
        const uint64_t *ports, *port_access;
        const unsigned char *filter_b; int filter_b_len;
        uint32_t b_flags;
        const unsigned char *filter_a; int filter_a_len;
        int listener;
        unsigned char *b_msg; int b_len;
        unsigned char *a_msg; int a_len;
    };
    int lsb_init_steps(struct lsb_init *s);
    void lsb_serve_init(const char *path, char *const argv[], char *const envp[], uint64_t mask, int tty,
                        int report_fd, const char *prefix, int prefix_len);
    int lsb_fork_exec(const char *path, char *const argv[], char *const envp[], uint64_t unblock, int tty,
                      int report_fd, const char *prefix, int prefix_len);
"""


def stamp() -> int:
    """CRC of what the module is built from (31 bits: fits a C int)."""
    data = b""
    for path in (HEADER, CHILD_HEADER):
        with open(path, "rb") as f:
            data += f.read()
    return zlib.crc32(data + CDEF.encode()) & 0x7FFFFFFF


def build(dest: str = HERE) -> str:
    """Compile the module into ``dest``; returns the path of the shared object."""
    import shutil
    import tempfile

    from cffi import FFI

    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source("_fastpath_c", '#include "_fastpath.h"\n#include "_fastpath_child.h"\n'
                   f'int lsb_fast_stamp(void) {{ return {stamp()}; }}\n',
                   include_dirs=[HERE], extra_compile_args=["-O2"])
    with tempfile.TemporaryDirectory(prefix="lsandbox-fastpath-") as tmp:
        built = ffi.compile(tmpdir=tmp)
        out = os.path.join(dest, os.path.basename(built))
        shutil.copyfile(built, out + ".tmp")
        os.replace(out + ".tmp", out)  # atomic: a running broker keeps its mapped copy
    return out


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else HERE))
