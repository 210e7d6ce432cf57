"""macOS Seatbelt backend: policy -> SBPL, a ``sandbox-exec`` runner, and an SBPL evaluator
(used by the parity tests on Linux). Imports only ``lsandbox.policy`` (and its errors)."""

from ._baseline import explain_lines as explain_lines
from ._evaluator import MODELS as MODELS
from ._evaluator import Model as Model
from ._evaluator import evaluate as evaluate
from ._evaluator import evaluate_all as evaluate_all
from ._evaluator import parse as parse
from ._policy_to_sbpl import Context as Context
from ._policy_to_sbpl import macos_path as macos_path
from ._policy_to_sbpl import render_sbpl as render_sbpl
from ._runner import MacBackend as MacBackend
from ._runner import MacRun as MacRun
from ._runner import parse_log_line as parse_log_line
from ._runner import run as run
from ._sbpl import quote as quote
