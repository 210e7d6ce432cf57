"""Run a command as under Docker's default seccomp profile (tests/_docker_profile.py): there
pidfd_getfd is refused and namespaces cannot be made, so ``lsandbox run`` brokers AF_UNIX
connects through SECCOMP_IOCTL_NOTIF_ADDFD. Used to run the broker's end-to-end cases on
that path too."""

from __future__ import annotations

import subprocess

import seccomp_bpf as sb
from tests._docker_profile import docker_filter


def docker_run(argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """``argv`` with ``env`` under the profile: (returncode, stdout, stderr) like subprocess."""
    prog = docker_filter()

    def confine() -> None:  # in the child, between fork and exec
        sb.set_no_new_privs()
        sb.install_filter(prog, flags=sb.FLAG_TSYNC)

    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=confine)  # noqa: PLW1509 - single-threaded enough: a test
