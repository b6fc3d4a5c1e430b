"""Errors the command line reports as one line (exit code 2) instead of a traceback."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2."""
