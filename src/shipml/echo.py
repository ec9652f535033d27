"""Quoting what a user sent inside an error message, cut to a readable length.

An error names the bad value, but a value can be a megabyte long (a feedback label, a cell):
every message that repeats user input uses :func:`echo`, so no answer carries more than about
`LIMIT` characters of it.
"""

from __future__ import annotations

__all__ = ["echo", "LIMIT"]

LIMIT = 200


def echo(value: object, limit: int = LIMIT) -> str:
    """repr(value), cut to `limit` characters with the full length said when it was longer."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, (str, bytes)) else len(text)
    return f"{text[: max(limit - 30, 10)]}... ({size:,} characters)"
