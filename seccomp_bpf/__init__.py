"""Standalone classic-BPF toolkit for seccomp (imports nothing from lsandbox)."""
