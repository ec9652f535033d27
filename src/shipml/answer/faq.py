"""Reading an FAQ table: one entry per row, with its question, answer and what else is known.

Columns (matched case-insensitively, spaces and underscores alike): `question` and `answer`
(required), `id`, `paraphrases` (other ways customers ask it, separated by "|" or new lines),
`category` and `url` (optional). A missing required column is a DataError naming the closest
columns there are. Rows without a question and an answer are refused by row number; the same
question with two different answers is a warning (both entries are kept, with their ids).

An entry is a plain dict (JSON-able, what `AnswerModel.entries` lists): id, question, answer,
paraphrases (list), category, url, source.
"""

from __future__ import annotations

import difflib
import logging
import re
import warnings
from pathlib import Path

import pandas as pd

from shipml.encoders.sentence import as_text
from shipml.errors import DataError

__all__ = ["read_faq", "faq_entries", "find_column", "check_entries", "AnswerWarning"]

log = logging.getLogger(__name__)
_REQUIRED = ("question", "answer")
_OPTIONAL = ("id", "paraphrases", "category", "url")
_ALIASES = {"paraphrases": ("paraphrase", "variants", "alternatives"), "url": ("link",)}
_SPLIT = re.compile(r"\s*(?:\||\r?\n)\s*")


class AnswerWarning(UserWarning):
    """A problem in the FAQ that training works around (and says so in the model's notes)."""


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).strip().lower())


def find_column(columns, wanted: str, *, required: bool, where: str) -> str | None:
    """The column of `columns` named `wanted` (or one of its aliases), case and spacing
    ignored; a required one that is missing is a DataError naming the closest columns."""
    keys = {_key(c): c for c in columns}
    for name in (wanted, *_ALIASES.get(wanted, ())):
        if _key(name) in keys:
            return keys[_key(name)]
    if not required:
        return None
    close = difflib.get_close_matches(_key(wanted), list(keys), n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(repr(keys[c]) for c in close)}" if close else ""
    have = ", ".join(repr(str(c)) for c in list(columns)[:12])
    raise DataError(
        f"{where}: no '{wanted}' column (an FAQ needs the columns question and answer; "
        f"optional: id, paraphrases, category, url). Columns found: {have}{hint}"
    )


def read_faq(data, *, where: str | None = None) -> tuple[list[dict], list[str]]:
    """(entries, warnings) of an FAQ file (CSV, TSV, Parquet, Excel, JSON lines) or
    DataFrame."""
    from shipml.data.io import read_table

    if isinstance(data, pd.DataFrame):
        frame, where = data, where or "the FAQ table"
    else:
        frame, where = read_table(data).frame, where or str(Path(data).name)
    if frame.empty:
        raise DataError(f"{where}: the FAQ has no rows (give one row per question and answer)")
    return faq_entries(frame, where)


def faq_entries(frame: pd.DataFrame, where: str) -> tuple[list[dict], list[str]]:
    cols = {w: find_column(frame.columns, w, required=True, where=where) for w in _REQUIRED}
    cols.update({w: find_column(frame.columns, w, required=False, where=where) for w in _OPTIONAL})
    entries = []
    for row, record in enumerate(frame.to_dict("records"), start=2):  # row 1: the header
        entries.append(_entry(record, cols, row, len(entries) + 1, where))
    return entries, check_entries(entries, where)


def _entry(record: dict, cols: dict, row: int, number: int, where: str) -> dict:
    question = as_text(record[cols["question"]])
    answer = as_text(record[cols["answer"]])
    for what, text in (("question", question), ("answer", answer)):
        if not text:
            raise DataError(
                f"{where}: row {row} has an empty {what} (column "
                f"'{cols[what]}'); every FAQ entry needs a question and an answer"
            )
    ident = as_text(record[cols["id"]]) if cols["id"] else str(number)
    if not ident:
        raise DataError(f"{where}: row {row} has an empty id (column '{cols['id']}')")
    if ident.endswith(".0") and ident[:-2].isdigit():  # a numeric id column read as floats
        ident = ident[:-2]
    raw = as_text(record[cols["paraphrases"]]) if cols["paraphrases"] else ""
    paraphrases = [p for p in _SPLIT.split(raw) if p and p.lower() != question.lower()]
    entry = {
        "id": ident,
        "question": question,
        "answer": answer,
        "paraphrases": list(dict.fromkeys(paraphrases)),
        "source": {"row": row},
    }
    for field in ("category", "url"):
        value = as_text(record[cols[field]]) if cols[field] else ""
        entry[field] = value or None
        if value:
            entry["source"][field] = value
    return entry


def check_entries(entries: list[dict], where: str) -> list[str]:
    """Refuse duplicate ids; warn of the same question with different answers (both kept).
    Returns the warnings given (the model's notes list them)."""
    if not entries:
        raise DataError(f"{where}: no FAQ entries (nothing to answer from)")
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e["id"] in seen:
            first = _at(entries[seen[e["id"]]])
            raise DataError(
                f"{where}: id {e['id']!r} is used by two entries ({first} and "
                f"{_at(e)}); ids must be unique"
            )
        seen[e["id"]] = i
    notes = []
    by_question: dict[str, dict] = {}
    for e in entries:
        key = " ".join(e["question"].lower().split())
        first = by_question.setdefault(key, e)
        if first is not e and first["answer"].strip() != e["answer"].strip():
            note = (
                f"{where}: the question {e['question']!r} has two different answers "
                f"(entries {first['id']!r} and {e['id']!r}); both kept — keep one answer "
                "per question so the assistant answers consistently"
            )
            warnings.warn(note, AnswerWarning, stacklevel=3)
            log.warning(note)
            notes.append(note)
    return notes


def _at(entry: dict) -> str:
    src = entry.get("source") or {}
    if "row" in src:
        return f"row {src['row']}"
    return f"{src.get('file', '?')}"
