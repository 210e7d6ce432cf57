"""seccomp_bpf: a standalone classic-BPF toolkit for seccomp.

Rules -> :func:`compile_filter` -> :class:`Program` -> :func:`install_filter` (which also takes
a program encoded ahead of time as bytes); plus an assembler with labels, a disassembler, an
interpreter (:func:`simulate`) used as the test oracle, syscall tables for x86_64 and
aarch64, and the user-notification ioctls.
Imports nothing from lsandbox.
"""

# The kernel interface, the constants and the syscall tables: what installing a filter needs,
# imported with the package (a forked child that installs its filters imports nothing).
from ._consts import ARCHES as ARCHES
from ._consts import AUDIT_ARCH_AARCH64 as AUDIT_ARCH_AARCH64
from ._consts import AUDIT_ARCH_ARM as AUDIT_ARCH_ARM
from ._consts import AUDIT_ARCH_I386 as AUDIT_ARCH_I386
from ._consts import AUDIT_ARCH_X86_64 as AUDIT_ARCH_X86_64
from ._consts import BPF_MAXINSNS as BPF_MAXINSNS
from ._consts import RET_ALLOW as RET_ALLOW
from ._consts import RET_ERRNO as RET_ERRNO
from ._consts import RET_KILL_PROCESS as RET_KILL_PROCESS
from ._consts import RET_KILL_THREAD as RET_KILL_THREAD
from ._consts import RET_LOG as RET_LOG
from ._consts import RET_TRAP as RET_TRAP
from ._consts import RET_USER_NOTIF as RET_USER_NOTIF
from ._kernel import FLAG_LOG as FLAG_LOG
from ._kernel import FLAG_NEW_LISTENER as FLAG_NEW_LISTENER
from ._kernel import FLAG_SPEC_ALLOW as FLAG_SPEC_ALLOW
from ._kernel import FLAG_TSYNC as FLAG_TSYNC
from ._kernel import FLAG_TSYNC_ESRCH as FLAG_TSYNC_ESRCH
from ._kernel import FLAG_WAIT_KILLABLE_RECV as FLAG_WAIT_KILLABLE_RECV
from ._kernel import NOTIF_FLAG_CONTINUE as NOTIF_FLAG_CONTINUE
from ._kernel import USER_NOTIF_FD_SYNC_WAKE_UP as USER_NOTIF_FD_SYNC_WAKE_UP
from ._kernel import Notification as Notification
from ._kernel import action_available as action_available
from ._kernel import flag_supported as flag_supported
from ._kernel import install_filter as install_filter
from ._kernel import notif_addfd as notif_addfd
from ._kernel import notif_id_valid as notif_id_valid
from ._kernel import notif_recv as notif_recv
from ._kernel import notif_send as notif_send
from ._kernel import notif_sizes as notif_sizes
from ._kernel import set_listener_flags as set_listener_flags
from ._kernel import set_no_new_privs as set_no_new_privs
from ._tables import has_syscall as has_syscall
from ._tables import native_arch as native_arch
from ._tables import syscall_name as syscall_name
from ._tables import syscall_names as syscall_names
from ._tables import syscall_number as syscall_number

TYPE_CHECKING = False  # the typing module is not imported at run time; type checkers see True
if TYPE_CHECKING:
    from ._asm import Assembler as Assembler
    from ._asm import AssemblyError as AssemblyError
    from ._asm import Label as Label
    from ._asm import assemble as assemble
    from ._compiler import Program as Program
    from ._compiler import compile_filter as compile_filter
    from ._disasm import disassemble as disassemble
    from ._insn import SockFilter as SockFilter
    from ._insn import decode_program as decode_program
    from ._insn import encode_program as encode_program
    from ._rules import ALLOW as ALLOW
    from ._rules import KILL_PROCESS as KILL_PROCESS
    from ._rules import KILL_THREAD as KILL_THREAD
    from ._rules import LOG as LOG
    from ._rules import TRAP as TRAP
    from ._rules import USER_NOTIF as USER_NOTIF
    from ._rules import Action as Action
    from ._rules import Arg as Arg
    from ._rules import Cond as Cond
    from ._rules import Filter as Filter
    from ._rules import Rule as Rule
    from ._rules import action_from_raw as action_from_raw
    from ._rules import errno as errno
    from ._simulate import SeccompData as SeccompData
    from ._simulate import simulate as simulate

#: The rest, loaded from its module on first use (PEP 562): a process that only installs
#: filters encoded ahead of time (bytes) never imports the rule model, assembler, compiler,
#: disassembler or interpreter.
_EXPORTS = {
    "Assembler": "_asm", "AssemblyError": "_asm", "Label": "_asm", "assemble": "_asm",
    "Program": "_compiler", "compile_filter": "_compiler",
    "disassemble": "_disasm",
    "SockFilter": "_insn", "decode_program": "_insn", "encode_program": "_insn",
    "ALLOW": "_rules", "Action": "_rules", "Arg": "_rules", "Cond": "_rules", "Filter": "_rules",
    "KILL_PROCESS": "_rules", "KILL_THREAD": "_rules", "LOG": "_rules", "Rule": "_rules",
    "TRAP": "_rules", "USER_NOTIF": "_rules", "action_from_raw": "_rules", "errno": "_rules",
    "SeccompData": "_simulate", "simulate": "_simulate",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seccomp_bpf' has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS} - {"TYPE_CHECKING"})
