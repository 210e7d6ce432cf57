"""What stays open when the sandbox runs without namespaces, named in one place.

Without namespaces (a container whose seccomp profile refuses ``unshare``, as Docker's
default does; ``LSANDBOX_NO_NAMESPACES=1`` emulates it) there is no read-only mount view, no
private devpts and no fresh procfs, and Landlock has no right for these classes: a seccomp
filter sees no paths, so it cannot tell a file inside the writable roots from one outside.
Set-id bits, device nodes, inode flags and truncation are closed in every mode (filter A,
no capabilities); the classes below are not, and ``doctor``, ``explain`` and every run's
notes say so rather than run silently weaker than the policy reads.
"""

from __future__ import annotations

#: (class, what exactly stays reachable)
OPEN: tuple[tuple[str, str], ...] = (
    ("file metadata outside the writable roots",
     "chmod (without set-id bits), chgrp to the command's own groups, utimes, ACLs and extended "
     "attributes of files the command's user owns (as root: most system files)"),
    ("other terminals",
     "other sessions' terminals of the same user under /dev/pts can be read and written"),
    ("the host's /proc",
     "every process of the machine and its command line are visible"),
)


def note() -> str:
    """One line for a run's notes (``--log-denials``, ``--events``, the API's ``denial_notes``)."""
    return ("without namespaces these stay open: "
            + "; ".join(f"{what} ({detail})" for what, detail in OPEN))
