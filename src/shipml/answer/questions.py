"""Labelled real questions: a table with the columns question and expected_id (the FAQ entry
that answers it, or "none" when the FAQ has no answer) — what `evaluate` and `train(questions=)`
read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shipml.answer.faq import find_column
from shipml.encoders.sentence import as_text
from shipml.errors import DataError

__all__ = ["read_questions"]

_NONE = {"none", "", "-", "null", "n/a"}


def read_questions(table, ids: set[str]) -> tuple[list[str], list[str]]:
    """(questions, expected ids; "none" for no answer). An expected id not in `ids` is a
    DataError naming its row."""
    from shipml.data.io import read_table

    if isinstance(table, pd.DataFrame):
        frame, where = table, "the questions table"
    else:
        frame, where = read_table(table).frame, Path(table).name
    if frame.empty:
        raise DataError(f"{where}: no questions")
    qcol = find_column(frame.columns, "question", required=True, where=where)
    ecol = _expected_column(frame.columns, where)
    questions, expected = [], []
    for row, (q, e) in enumerate(zip(frame[qcol], frame[ecol]), start=2):
        text = as_text(q)
        if not text:
            raise DataError(f"{where}: row {row} has an empty question (column '{qcol}')")
        ident = as_text(e)
        if ident.endswith(".0") and ident[:-2].isdigit():
            ident = ident[:-2]
        if ident.lower() in _NONE:
            ident = "none"
        elif ident not in ids:
            raise DataError(
                f"{where}: row {row}: expected_id {ident!r} is not an entry of the "
                f'FAQ ({len(ids):,} entries); give an entry id or "none"'
            )
        questions.append(text)
        expected.append(ident)
    return questions, expected


def _expected_column(columns, where: str) -> str:
    for name in ("expected_id", "expected", "expected_entry", "entry_id", "entry", "faq_id"):
        found = find_column(columns, name, required=False, where=where)
        if found is not None:
            return found
    return find_column(columns, "expected_id", required=True, where=where)
