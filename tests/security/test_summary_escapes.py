"""The ``--log-denials`` summary escapes what a terminal would act on.

Red team 2 (session 9, F3): the socket paths and process names in the summary are the
command's choice and were printed as they were: an escape sequence erased a line and
forged ``(none observed)`` and an all-clear line, another hid what followed. Now ESC, CR,
LF and the other non-printable characters appear escaped (``\\x1b``), in the denials, the
notes and the hints. As root and as nobody. Shown to fail without the fix (raw ESC and CR
on stderr)."""

from __future__ import annotations

import pytest

from tests._sandbox import PY
from tests._util import skip_dropping_unless_root
from tests.conftest import NO_LANDLOCK
from tests.security._hardening import lsandbox

pytestmark = [pytest.mark.kernel, pytest.mark.security,
              pytest.mark.skipif(NO_LANDLOCK, reason="no Landlock on this kernel: lsandbox run refuses to start")]

FORGE = r"""
import ctypes, socket
ctypes.CDLL(None).prctl(15, b"x\x1b[8m\r\n", 0, 0, 0)  # PR_SET_NAME
try:
    socket.socket(socket.AF_UNIX).connect("/tmp/\x1b[2K\rlsandbox: all clear\n(none observed)")
except OSError:
    pass
"""


@pytest.mark.parametrize("nobody", [False, True], ids=["root", "nobody"])
def test_forged_lines_are_escaped(nobody):
    skip_dropping_unless_root(nobody)
    r = lsandbox(["run", "--log-denials", "--", PY, "-c", FORGE], nobody=nobody, env={})
    summary = r.stderr.split("=== Sandbox denials ===", 1)[1]
    assert "\x1b" not in summary and "\r" not in summary, repr(summary)
    assert "\\x1b[2K\\rlsandbox: all clear\\n(none observed)" in summary, summary
    assert "(x\\x1b[8m" in summary, summary  # the name (its trailing CR LF stripped by the reader)
    assert "\nlsandbox: all clear" not in summary and "\n(none observed)" not in summary
