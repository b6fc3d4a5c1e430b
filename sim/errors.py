"""Errors the command line reports as one line (exit code 2) instead of a traceback."""

from __future__ import annotations

__all__ = ["UsageError", "positive_int"]


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2."""


def positive_int(name: str, text: str | None) -> int | None:
    """An option's value as an integer >= 1 (None when not given), or a UsageError naming it."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not an integer") from None
    if value < 1:
        raise UsageError(f"{name} {value} must be at least 1")
    return value
