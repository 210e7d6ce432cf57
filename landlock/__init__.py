"""Standalone cffi Landlock library (imports nothing from lsandbox)."""
