"""Policy model, path canonicalization and (from ``_loader``) the Codex-compatible TOML loader."""

from ._environment import EnvironmentPolicy as EnvironmentPolicy
from ._model import DEVICE_FILES_RW as DEVICE_FILES_RW
from ._model import FilesystemPolicy as FilesystemPolicy
from ._model import FsAccess as FsAccess
from ._model import FsRule as FsRule
from ._model import NetworkPolicy as NetworkPolicy
from ._model import Policy as Policy
from ._model import SocketAccess as SocketAccess
from ._model import UnixSocketRule as UnixSocketRule
from ._paths import canonicalize as canonicalize
from ._paths import expand as expand
from ._paths import is_within as is_within
