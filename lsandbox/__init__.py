"""lsandbox: run a command under a kernel-enforced policy (Linux: Landlock + seccomp-BPF +
an AF_UNIX broker; macOS: Seatbelt). The public API is re-exported here."""

from ._api import CompletedSandbox as CompletedSandbox
from ._api import Sandbox as Sandbox
from ._api import run as run
from ._errors import PolicyError as PolicyError
from ._errors import SandboxError as SandboxError
from ._errors import SetupError as SetupError
from ._errors import UnenforceableError as UnenforceableError
from ._load import load_policy as load_policy
from .policy import FilesystemPolicy as FilesystemPolicy
from .policy import FsAccess as FsAccess
from .policy import FsRule as FsRule
from .policy import NetworkPolicy as NetworkPolicy
from .policy import Policy as Policy
from .policy import SocketAccess as SocketAccess
from .policy import UnixSocketRule as UnixSocketRule

__version__ = "0.1.0"
