"""Defusing spreadsheet formulas in the CSV shipml writes (CSV injection, OWASP).

A CSV we return or write repeats cells a client sent. A cell such as `=HYPERLINK(...)` or
`@SUM(...)` would run as a formula when someone opens the file in Excel or LibreOffice. As
OWASP's CSV-injection guidance says, a text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a single quote in front (`'=HYPERLINK(...)`), which spreadsheets show as
text. Numbers stay numbers: `-3.5` is left as it is. Column names are treated the same way.
"""

from __future__ import annotations

import pandas as pd

from shipml.data.cells import is_plain_number

__all__ = ["defuse", "defuse_cell", "FORMULA_STARTS"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse_cell(value):
    """`value` with a leading single quote when it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not is_plain_number(value):
        return "'" + value
    return value


def defuse(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names cannot run as formulas."""
    out = frame.copy()
    out.columns = [defuse_cell(str(c)) for c in out.columns]
    for j in range(out.shape[1]):
        col = out.iloc[:, j]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)):
            out.isetitem(j, col.map(defuse_cell))
    return out
