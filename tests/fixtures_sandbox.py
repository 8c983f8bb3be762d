"""Fixtures that start the sandbox (filled in by the sandbox work)."""
