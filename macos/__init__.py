"""macOS Seatbelt backend: policy -> SBPL, sandbox-exec runner, SBPL evaluator (imports only lsandbox.policy)."""
