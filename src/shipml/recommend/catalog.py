"""The item catalogue of a recommender: the item table aligned with the model's item codes.

What each answer shows of an item (its name, category, price: the table's fields), the masks of
a request's `filter` ({"category": "shoes", "in_stock": true}), and the sentence-encoder vectors
of the items' texts (name, description) that answer "similar items" for a catalogued item no
one has interacted with yet (cold start). The vectors are computed once at training and stored
as .npy: a request never loads PyTorch. Stored as JSON (the table) and .npy (the vectors).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.errors import UsageError

__all__ = ["Catalog", "item_texts", "embed_item_texts", "TEXT_COLUMNS"]

#: item-table columns whose text describes an item, in the order they are joined
TEXT_COLUMNS = ("title", "name", "product_name", "description", "text", "summary", "tags",
                "category", "genre", "genres", "brand")  # fmt: skip
_MASKS_KEPT = 256  # filter masks cached (a shop's filters repeat: a category, in stock)
_BOOL_KEYS = {"", "0", "1", "true", "false"}


def item_texts(table: pd.DataFrame | None) -> pd.Series | None:
    """Each item's text (its text columns joined, ". " between), indexed by item ID; None when
    the table has no text column. Text columns: the name, text and category the log reader
    found (the table's "roles"), else those of TEXT_COLUMNS present, with words in them."""
    if table is None or not len(table):
        return None
    roles = table.attrs.get("roles") or {}  # what read_log found: name, category, text
    named = [roles.get(r) for r in ("name", "text", "category") if roles.get(r) in table]
    lower = {str(c).lower(): c for c in table.columns}
    guessed = [lower[c] for c in TEXT_COLUMNS if c in lower]
    columns = [c for c in dict.fromkeys(named or guessed) if _wordy(table[c])]
    if not columns:
        return None
    parts = [table[c].map(lambda v: "" if _missing(v) else str(v).strip()) for c in columns]
    joined = parts[0]
    for p in parts[1:]:
        joined = joined.str.cat(p, sep=". ").str.strip(". ")
    return joined[joined.str.len() > 0]


def embed_item_texts(texts: pd.Series, encoder) -> np.ndarray:
    """(n, dim) float32 unit vectors of `texts` by a shipml.encoders SentenceEncoder."""
    return np.asarray(encoder.encode(list(texts)), dtype=np.float32)


@dataclass
class Catalog:
    """`items`: the item ID of each code; `table`: the item table (index: item ID, str) or
    None; `text_ids` / `text_vectors`: the items with a text and its unit vector."""

    items: np.ndarray
    table: pd.DataFrame | None = None
    text_ids: list[str] = field(default_factory=list)
    text_vectors: np.ndarray | None = None
    text_source: str | None = None

    def __post_init__(self) -> None:
        self.index = {str(t): i for i, t in enumerate(self.items)}
        self._fields = self._code_fields()
        self._keys: dict[str, np.ndarray] = {}
        self._boolean: dict[str, bool] = {}
        self._masks: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._text_row = {t: i for i, t in enumerate(self.text_ids)}
        self._code_vectors = None

    # -- what an answer shows -------------------------------------------------------------------
    def fields(self, code: int) -> dict:
        """The item table's fields of item `code` (empty without a table row)."""
        return self._fields[code]

    def _code_fields(self) -> list[dict]:
        n = len(self.items)
        if self.table is None:
            return [{} for _ in range(n)]
        columns = [str(c) for c in self.table.columns]
        records = {
            str(i): row for i, row in zip(self.table.index, self.table.itertuples(index=False))
        }
        out = []
        for t in self.items:
            row = records.get(str(t))
            out.append({} if row is None else {c: _plain(v) for c, v in zip(columns, row)})
        return out

    def names(self) -> list[str] | None:
        """Each code's name (its ID when the table has none), or None without a name column."""
        column = next((c for c in self.columns if c.lower() in ("name", "title", "product_name")),
                      None)  # fmt: skip
        if column is None:
            return None
        return [str(f.get(column) or t) for f, t in zip(self._fields, self.items)]

    def knows(self, item: str) -> bool:
        """Is `item` in the catalogue (an item of the log, or a row of the item table)?"""
        return item in self.index or (self.table is not None and item in self.table.index)

    @property
    def columns(self) -> list[str]:
        return [] if self.table is None else [str(c) for c in self.table.columns]

    # -- filter ----------------------------------------------------------------------------------
    def mask(self, filter: dict | None) -> np.ndarray | None:
        """(n_items,) bool: the items whose table fields match every {column: value or list of
        values} of `filter` (None: no filter). UsageError naming a column not in the table."""
        if not filter:
            return None
        if not isinstance(filter, dict):
            raise UsageError(
                "filter must be a mapping of item-table column -> value or list of values, "
                f'e.g. {{"category": "shoes"}}; got {filter!r}'
            )
        key = tuple(sorted((str(c), _wanted_key(v)) for c, v in filter.items()))
        with self._lock:  # the server answers requests on several threads
            if key in self._masks:
                self._masks.move_to_end(key)
                return self._masks[key]
        out = np.ones(len(self.items), dtype=bool)
        for column, values in filter.items():
            out &= self._column_mask(str(column), values)
        with self._lock:
            self._masks[key] = out
            if len(self._masks) > _MASKS_KEPT:
                self._masks.popitem(last=False)
        return out

    def _column_mask(self, column: str, values) -> np.ndarray:
        if self.table is None:
            raise UsageError(f"cannot filter on {column!r}: this model was trained without an "
                             "item table (train with --items catalog.csv)")  # fmt: skip
        if column not in self.columns:
            raise UsageError(f"cannot filter on {column!r}: not a column of the item table "
                             f"(its columns: {', '.join(self.columns)})")  # fmt: skip
        keys = self._column_keys(column)
        wanted = values if isinstance(values, (list, tuple, set)) else [values]
        if not wanted:
            raise UsageError(f"filter {column!r}: give a value or a non-empty list of values")
        boolean = self._boolean[column]
        wanted_keys = {_bool_key(_key(v)) if boolean else _key(v) for v in wanted}
        return np.isin(keys, list(wanted_keys))

    def _column_keys(self, column: str) -> np.ndarray:
        """Each code's comparison key in `column`; a column of flags (true/false, yes/no, 1/0)
        compares 1 and true alike."""
        if column not in self._keys:
            raw = [_key(f.get(column)) for f in self._fields]
            self._boolean[column] = set(raw) <= _BOOL_KEYS
            if self._boolean[column]:
                raw = [_bool_key(k) for k in raw]
            self._keys[column] = np.array(raw, dtype=object)
        return self._keys[column]

    # -- item texts ------------------------------------------------------------------------------
    def text_vector(self, item: str) -> np.ndarray | None:
        row = self._text_row.get(item)
        return None if row is None or self.text_vectors is None else self.text_vectors[row]

    def code_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """((n_items, dim) float32 text vectors per code, zeros without a text; bool has-text)."""
        if self._code_vectors is None:
            dim = 0 if self.text_vectors is None else self.text_vectors.shape[1]
            out = np.zeros((len(self.items), dim), dtype=np.float32)
            has = np.zeros(len(self.items), dtype=bool)
            for t, code in self.index.items():
                row = self._text_row.get(t)
                if row is not None:
                    out[code], has[code] = self.text_vectors[row], True
            self._code_vectors = (out, has)
        return self._code_vectors

    # -- storage ---------------------------------------------------------------------------------
    def write(self, writer) -> dict:
        """The catalogue's files; returns what model.json records of them."""
        meta: dict = {}
        if self.table is not None:
            from shipml.model import json_safe

            table = {"index": [str(i) for i in self.table.index],
                     "columns": self.columns,
                     "data": json_safe([[_plain(v) for v in row]
                                        for row in self.table.itertuples(index=False)]),
                     }  # fmt: skip
            writer.write_json("items.json", table)
            meta["table"] = "items.json"
        if self.text_vectors is not None and len(self.text_ids):
            writer.write("item_text.npy", self.text_vectors.astype(np.float32))
            writer.write_json("item_text.json", {"ids": list(self.text_ids),
                                                 "encoder": self.text_source})  # fmt: skip
            meta["text"] = {"vectors": "item_text.npy", "ids": "item_text.json"}
        return meta

    @classmethod
    def read(cls, meta: dict, reader, items: np.ndarray) -> Catalog:
        table = None
        if meta.get("table"):
            spec = reader.read_json(meta["table"])
            table = pd.DataFrame(spec["data"], index=pd.Index(spec["index"], dtype=object),
                                 columns=spec["columns"])  # fmt: skip
        ids, vectors, source = [], None, None
        if meta.get("text"):
            about = reader.read_json(meta["text"]["ids"])
            ids, source = [str(i) for i in about["ids"]], about.get("encoder")
            vectors = reader.read_npy(meta["text"]["vectors"]).astype(np.float32)
        return cls(items, table, ids, vectors, source)


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _wordy(column: pd.Series) -> bool:
    """A column of text (not numbers or flags)."""
    values = column.dropna()
    if (
        not len(values)
        or pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_bool_dtype(values)
    ):
        return False
    return bool(values.astype(str).str.contains(r"[^\W\d_]", regex=True).mean() > 0.5)


def _plain(value: object) -> object:
    """A JSON value of a table cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _key(value: object) -> str:
    """How a cell or a filter value compares: case-insensitive text, 5 == 5.0 == "5",
    true/yes and false/no alike; missing is ""."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip().casefold()
    if text in ("true", "yes"):
        return "true"
    if text in ("false", "no"):
        return "false"
    try:
        number = float(text)
    except ValueError:
        return text
    return _key(number) if math.isfinite(number) else text


def _bool_key(key: str) -> str:
    return {"1": "true", "0": "false"}.get(key, key)


def _wanted_key(values) -> tuple:
    wanted = values if isinstance(values, (list, tuple, set)) else [values]
    return tuple(sorted(_key(v) for v in wanted))
