"""How a brokered call fails: an errno for the target, raised where the failure is found.

Failures (a read of the target's memory faulted, the target left its call, a malformed
message, a descriptor it does not have) are exceptions, as ``OSError`` is; policy decisions
never are: they are verdicts returned by value (``_broker_decide``).
"""

from __future__ import annotations


class Fail(Exception):
    """Answer the notification with ``err``."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.err = err


class NoGetfd(Exception):
    """pidfd_getfd is refused here (a container profile without CAP_SYS_PTRACE)."""
