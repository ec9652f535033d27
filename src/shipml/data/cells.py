"""What one input cell may hold for its column's kind: the server's rule for odd values.

The same rule holds for JSON records (predict, explain) and the cells of an uploaded CSV:

- missing is null (JSON), NaN (what pandas and tritonclient write for a missing float), an empty
  cell or a missing-value marker such as "NA";
- a numeric column takes numbers or number-like text, never a boolean, a list or an object, and
  never infinity: the JSON literals `Infinity` / `-Infinity`, a number too large for a 64-bit
  float (`1e309`) and text such as "inf" are refused (no model was trained on them and no answer
  could carry them back as JSON);
- a categorical, text or datetime column takes text: a number must be sent as text ("10115"),
  as in the Open Inference Protocol (BYTES);
- a boolean column takes true/false, 0/1 or their text forms;
- text must be valid Unicode: a lone surrogate ("\\ud800") is refused.

:func:`cell_problem` returns what is wrong, in words, or None; the caller adds where
(`records[3].age`, `row 4, column 'age'`) and answers 422.
"""

from __future__ import annotations

import math
import re

from shipml.echo import echo

__all__ = ["cell_problem", "is_plain_number"]

_INFINITY = re.compile(r"^[+-]?(inf|infinity)$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")  # no nested \d+\d* (ReDoS)
_FINITE = "expected a finite number"
_MAYBE_ODD = re.compile(r"[iIeE]").search  # only such text can be "inf" or overflow
_NUMBERS = frozenset({"numeric", "boolean"})
_FLOAT_MAX = 1 << 1023


def cell_problem(kind: str, value) -> str | None:
    """Why `value` cannot be a cell of a `kind` column, or None when it can (or when the
    schema's parser decides, as for "$1,234")."""
    kind_of = type(value)  # the common cells first: this runs for every cell of every request
    if kind_of is str:
        if value.isascii() and (kind != "numeric" or not _MAYBE_ODD(value)):
            return None
    elif value is None:
        return None
    elif kind_of is float and kind in _NUMBERS and (value - value == 0 or value != value):
        return None  # finite, or NaN (missing)
    elif kind_of is int and kind in _NUMBERS and -_FLOAT_MAX < value < _FLOAT_MAX:
        return None
    return _problem(kind, value)


def _problem(kind: str, value) -> str | None:
    if kind == "image":
        return None  # base64 text, bytes or a file: checked by serve/images.py
    if isinstance(value, str) and not value:
        return None
    if isinstance(value, str):
        return _text_problem(kind, value)
    if isinstance(value, bool):
        return None if kind == "boolean" else f"{_expected(kind)}, got {_json(value)}"
    if isinstance(value, (int, float)):
        return _number_problem(kind, value)
    return f"{_expected(kind)}, got {_json(value)}"


def _number_problem(kind: str, value: int | float) -> str | None:
    if isinstance(value, float) and value != value:
        return None  # NaN: a missing value
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an integer with hundreds of digits
        finite = False
    if not finite:
        return f"{_FINITE}, got {_json(value)}"
    if kind in ("numeric", "boolean"):
        return None
    return f"{_expected(kind)}, got the number {_json(value)}; send it as text ({echo(str(value))})"


def _text_problem(kind: str, value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"expected text, got {echo(value)}, which is not valid Unicode (a lone surrogate)"
    if kind != "numeric":
        return None
    text = value.strip()
    if _INFINITY.match(text):
        return f"{_FINITE}, got {echo(value)}"
    if _PLAIN_NUMBER.match(text) and not math.isfinite(float(text)):
        return f"{_FINITE}, got {echo(value)} (too large for a 64-bit float)"
    return None


def is_plain_number(text: str) -> bool:
    """Whether `text` is a number as written in a CSV: -3.5, 12, +1e-3 (no currency, spaces)."""
    return bool(_PLAIN_NUMBER.match(text))


def _expected(kind: str) -> str:
    if kind == "numeric":
        return "expected a number"
    if kind == "boolean":
        return "expected true/false or 0/1"
    return f"expected text ({kind})"


def _json(value) -> str:
    """A value as the client wrote it in JSON."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, (int, float)):
        return echo(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
