"""Descriptors a caller asks the command to inherit (``pass_fds``, ``--pass-fd``).

Shared by the API and the CLI; kept out of ``_api`` so that ``lsandbox run`` does not import
``subprocess`` for it."""

from __future__ import annotations

from ._errors import SandboxError

TYPE_CHECKING = False  # the launch path does not import collections.abc; type checkers see True
if TYPE_CHECKING:
    from collections.abc import Sequence


def check_pass_fds(fds: Sequence[int]) -> tuple[int, ...]:
    """``pass_fds`` as subprocess takes them: open descriptors above 2 (sorted, unique)."""
    import os

    out = []
    for fd in fds:
        if not isinstance(fd, int) or fd < 3:
            raise SandboxError(f"pass_fds: {fd!r} is not a descriptor above 2 "
                               "(stdin, stdout and stderr are passed anyway)")
        try:
            os.fstat(fd)
        except OSError:
            raise SandboxError(f"pass_fds: descriptor {fd} is not open") from None
        out.append(fd)
    return tuple(sorted(set(out)))
