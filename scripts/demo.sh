#!/usr/bin/env bash
# The README's first command ends here: a real sandboxed run (or, until the Linux backend
# lands, the effective policy).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/lsandbox explain
