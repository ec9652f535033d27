"""The item table of a log: one row per item with its name, category, price, text and any
other field, for showing recommendations, filtering them ({"in_stock": true}) and for items
without events (cold start by their text).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shipml.errors import DataError
from shipml.recommend.log_columns import (
    NAMES,
    missing_column_message,
    name_key,
    normalize_ids,
    show,
)

__all__ = ["read_items", "ROLE_NAMES"]

# The columns recommendations are shown and found with, best name first.
ROLE_NAMES = {
    "name": ["name", "title", "product_name", "item_name", "movie_title", "product_title",
             "label", "product"],
    "category": ["category", "categories", "genre", "genres", "department", "section",
                 "category_name", "product_category", "type"],
    "price": ["price", "unit_price", "cost", "amount"],
    "text": ["description", "text", "desc", "summary", "overview", "details", "body",
             "content", "about", "product_description"],
}  # fmt: skip


def read_items(items, item_column: str) -> tuple[pd.DataFrame, dict, list[str]]:
    """(the table indexed by item ID as str, the columns that play a role: id, name,
    category, price, text; notes). Numbers and true/false columns are typed."""
    from shipml.data.io import read_table

    table = read_table(items)
    where = "the item table" + ("" if table.source == "<DataFrame>" else f" {table.source}")
    frame = table.frame.reset_index(drop=True)
    rows = np.arange(1, len(frame) + 1)
    column, notes = _id_column(frame, item_column, where)
    ids, note = normalize_ids(frame[column], column, rows)
    notes += [note] if note else []
    missing = pd.isna(ids)
    if missing.all():
        raise DataError(f"{where}: the ID column {column!r} has no values")
    if missing.any():
        notes.append(f"{int(missing.sum())} rows of the item table without an ID ({column}) "
                     f"were left out")  # fmt: skip
    frame, ids, rows = frame[~missing], ids[~missing], rows[~missing]
    _no_repeats(ids, rows, column, where)
    out = frame.drop(columns=[column]).apply(_typed)
    out.index = pd.Index(ids.astype(str), name=column, dtype=object)
    roles = {"id": column, **_roles(list(out.columns))}
    out.attrs["roles"] = roles
    return out, roles, notes


def _id_column(frame: pd.DataFrame, item_column: str, where: str) -> tuple[str, list[str]]:
    columns = [str(c) for c in frame.columns]
    if item_column in columns:
        return item_column, []
    keyed = {name_key(c): c for c in reversed(columns)}
    for name in [item_column, *NAMES["item"], "id", "item_key"]:
        if name_key(name) in keyed:
            found = keyed[name_key(name)]
            return found, [f"item table ID column guessed: {found}"]
    message = missing_column_message("item", item_column, columns).format(where=where)
    raise DataError(message + f" (name the item table's ID column {item_column!r} like the log's)")


def _no_repeats(ids: np.ndarray, rows: np.ndarray, column: str, where: str) -> None:
    seen = pd.Series(ids).duplicated(keep=False).to_numpy()
    if not seen.any():
        return
    repeated = pd.Series(rows[seen]).groupby(ids[seen]).apply(list)
    shown = "; ".join(f"{show(k, 40)} in rows {', '.join(map(str, v[:5]))}"
                      for k, v in list(repeated.items())[:5])  # fmt: skip
    more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
    raise DataError(f"{where}: item IDs repeat in column {column!r}: {shown}{more}; "
                    f"give each item one row")  # fmt: skip


def _typed(col: pd.Series) -> pd.Series:
    """A text column of numbers as numbers, of true/false as booleans (the CSV reader keeps
    every cell as text); anything else as it is."""
    from shipml.data.parse import FALSE_TOKENS, TRUE_TOKENS

    if col.dtype != object and not pd.api.types.is_string_dtype(col):
        return col
    present = col.dropna().astype(str).str.strip().str.lower()
    if len(present) == 0:
        return col
    if present.isin(TRUE_TOKENS | FALSE_TOKENS).all() and not present.isin({"0", "1"}).all():
        mapped = col.map(lambda v: None if pd.isna(v) else str(v).strip().lower() in TRUE_TOKENS)
        return mapped.astype(bool) if col.notna().all() else mapped
    numbers = pd.to_numeric(col, errors="coerce")
    if numbers.notna().sum() == len(present):
        whole = np.mod(numbers.dropna(), 1).eq(0).all() and col.notna().all()
        return numbers.astype("int64") if whole else numbers.astype("float64")
    return col


def _roles(columns: list[str]) -> dict:
    keyed = {name_key(c): c for c in reversed(columns)}
    out = {}
    for role, names in ROLE_NAMES.items():
        found = [keyed[name_key(n)] for n in names if name_key(n) in keyed]
        found = [c for c in found if c not in out.values()]
        out[role] = found[0] if found else None
    return out
