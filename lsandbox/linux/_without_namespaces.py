"""What stays open when the sandbox runs without namespaces, named in one place.

Without namespaces (a container whose seccomp profile refuses ``unshare``, as Docker's
default does; ``LSANDBOX_NO_NAMESPACES=1`` emulates it) there is no read-only mount view, no
private devpts and no fresh procfs, and Landlock has no right for these classes: a seccomp
filter sees no paths, so it cannot tell a file inside the writable roots from one outside.
Set-id bits, device nodes, inode flags and truncation are closed in every mode (filter A,
no capabilities); file metadata and creation in split directories are brokered in this mode
(``BROKERED``: ``_metaops``, ``_pathops``); the classes in ``OPEN`` are not, and ``doctor``, ``explain`` and every run's
notes say so rather than run silently weaker than the policy reads.

/dev/shm: without a mount namespace there is no private /dev/shm to give, and POSIX names
(``sem_open``, ``shm_open``) cannot be redirected per sandbox, so the container's own is made
writable (Python ``multiprocessing.Lock()`` needs it). What is shared is what the container's
processes of the same user already share with each other (file permissions still apply);
the container is the isolation boundary for it. The same holds for System V IPC and POSIX
message queues, which belong to the IPC namespace.
"""

from __future__ import annotations

#: (class, what exactly stays reachable)
OPEN: tuple[tuple[str, str], ...] = (
    ("other terminals",
     "other sessions' terminals of the same user under /dev/pts can be read and written"),
    ("the other jobs of its terminal session",
     "a process of the command can join another process group of the user's terminal session and, "
     "reading or writing the terminal in the background, have the kernel stop that group "
     "(job-control signals, which Landlock's signal scope does not see)"),
    ("the host's /proc",
     "every process of the machine and its command line are visible"),
    ("POSIX shared memory and semaphores",
     "/dev/shm is writable and shared with the container's other processes: their objects there "
     "that the command's user may open can be read and changed"),
    ("System V IPC and POSIX message queues",
     "the container's shared memory segments, message queues and semaphore sets that the "
     "command's user may open (by key or name) can be read and changed: there is no IPC "
     "namespace to give, and Landlock has no right for them"),
)

#: (what, how and at what cost): what the path-operation broker (``_pathops``) performs in this
#: mode, in directories Landlock had to split for a read-only carve-out (``_split``).
BROKERED: tuple[tuple[str, str], ...] = (
    ("file metadata outside the writable roots",
     "chmod, chown, utimes and extended attributes (path and descriptor forms) are trapped by seccomp "
     "filter B and decided by path: refused outside the writable roots, performed on the pinned "
     "file inside them"),
    ("creation in split directories",
     "open/openat/creat with O_CREAT, mkdir, mknod (FIFOs, sockets), symlink, link, rename, unlink and "
     "rmdir are trapped by seccomp filter B and performed by the supervisor on a pinned parent "
     "with the command's credentials and umask; never a read-only carve-out such as .git"),
    ("cost of the brokered calls",
     "each of those calls, anywhere, pays a notification round trip (tens of microseconds; "
     "the kernel performs creation where Landlock decides); opens without O_CREAT, reads and "
     "writes pay nothing"),
)


def note() -> str:
    """One line for a run's notes (``--log-denials``, ``--events``, the API's ``denial_notes``)."""
    return ("without namespaces these stay open: "
            + "; ".join(f"{what} ({detail})" for what, detail in OPEN))
