"""Reading a log of user-item events (purchases, clicks, views, ratings) into Interactions.

The steps, each in its module: which column is which (log_columns.py: named, else guessed by
header, else by values), the IDs (strings; 17.0 -> "17"), the time (log_time.py: dates or
epoch numbers), how much each event counts (log_weights.py: event types, ratings, amounts),
repeated rows, and the item table (log_items.py). What was guessed or left out is said in
LogSpec.notes, which the model keeps in its lineage and report.

    >>> import pandas as pd
    >>> log = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "sku": [1, 2, 1, 3],
    ...                     "ts": ["2024-01-02", "2024-01-01", "2024-01-03", "2024-01-04"]})
    >>> inter, spec = read_log(log)
    >>> spec.user, spec.item, spec.time, inter.n_users, inter.n_items
    ('customer_id', 'sku', 'ts', 2, 3)
    >>> list(inter.items[inter.item])  # in time order
    ['2', '1', '1', '3']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.errors import DataError
from shipml.recommend.interactions import Interactions
from shipml.recommend.log_columns import choose_columns, normalize_ids, show

__all__ = ["LogSpec", "read_log"]

_MAX_BAD_TIMES = 0.1  # a larger share of unreadable times is a wrong column or format


@dataclass
class LogSpec:
    """How the log's columns were read (recorded in the model's lineage and report).

    `weight_kind`: "rating", "amount" or None; `events`: the weight of each event type seen;
    `items`: the item table's columns by role (id, name, category, price, text) or None."""

    user: str
    item: str
    time: str | None = None
    weight: str | None = None
    event: str | None = None
    notes: list[str] = field(default_factory=list)
    weight_kind: str | None = None
    events: dict | None = None
    items: dict | None = None
    source: str | None = None
    sha256: str | None = None
    counts: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"user": self.user, "item": self.item, "time": self.time, "weight": self.weight,
                "event": self.event, "notes": list(self.notes), "weight_kind": self.weight_kind,
                "events": self.events, "items": self.items, "source": self.source,
                "sha256": self.sha256, "counts": dict(self.counts)}  # fmt: skip


def read_log(data, *, user: str | None = None, item: str | None = None,
             time: str | bool | None = None, weight: str | bool | None = None,
             event: str | bool | None = None,
             items=None, events: dict | None = None) -> tuple[Interactions, LogSpec]:  # fmt: skip
    """The events of `data` (a path or a DataFrame) as Interactions sorted by time, and how the
    columns were read. Columns not named are guessed (said in the notes); time=False,
    weight=False or event=False: the log has none, do not guess one.

    `weight`: a quantity, price or watch time (confidence log2(1 + value / median)) or an
    explicit rating (confidence 1..4, growing with the rating); `event`: the event type, weighted
    by `events` ({"view": 1, "purchase": 4}) over the defaults (view 1, click 1, cart 2,
    wishlist 3, purchase 4); both given: the product. `items`: an optional item table (path
    or DataFrame) with the item column and names, categories, prices or texts."""
    from shipml.data.io import read_table

    table = read_table(data)
    where = "the log" if table.source == "<DataFrame>" else table.source
    frame = table.frame
    rows = _row_numbers(frame, table.source == "<DataFrame>")
    given = {"user": user, "item": item, "time": time, "weight": weight, "event": event}
    cols = choose_columns(frame, given, where)
    if events is not None and cols.event is None:
        from shipml.errors import UsageError

        raise UsageError("events= weighs event types, but the log has no event column: "
                         "name it with event=...")  # fmt: skip
    spec = LogSpec(cols.user, cols.item, cols.time, cols.weight, cols.event, list(cols.notes),
                   source=table.source, sha256=table.sha256)  # fmt: skip
    spec.counts["rows"] = len(frame)
    keep = np.ones(len(frame), bool)
    users = _ids(frame, cols.user, rows, keep, spec)
    things = _ids(frame, cols.item, rows, keep, spec)
    stamp = _times(frame, cols.time, rows, keep, spec)
    weights = _weights(frame, cols, rows, keep, spec, events)
    keep &= _merge_repeats(frame, cols, rows, keep, spec, (users, things, stamp, weights))
    return _interactions(users[keep], things[keep], weights[keep],
                         None if stamp is None else stamp[keep], spec, items), spec  # fmt: skip


def _row_numbers(frame: pd.DataFrame, given_frame: bool) -> np.ndarray:
    """Row numbers as the user counts them: 1 for the first data row of a file (blank rows
    read_table dropped still count), or the position in a DataFrame."""
    index = frame.index
    if not given_frame and pd.api.types.is_integer_dtype(index):
        return index.to_numpy(dtype=np.int64) + 1
    return np.arange(1, len(frame) + 1)


def _ids(frame, column: str, rows, keep: np.ndarray, spec: LogSpec) -> np.ndarray:
    ids, note = normalize_ids(frame[column], column, rows)
    spec.notes += [note] if note else []
    missing = pd.isna(ids)
    if missing.all():
        raise DataError(f"the {_role(spec, column)} column {column!r} has no values "
                        f"(all {len(ids)} rows are missing)")  # fmt: skip
    if missing.any():
        keep &= ~missing
        spec.notes.append(f"{int(missing.sum())} rows without a {_role(spec, column)} "
                          f"({column}) were left out (e.g. row {rows[missing][0]})")  # fmt: skip
        _check_left(keep, spec)
    return ids


def _role(spec: LogSpec, column: str) -> str:
    return "user" if column == spec.user else "item"


def _check_left(keep: np.ndarray, spec: LogSpec) -> None:
    if not keep.any():
        raise DataError("no events are left after leaving out rows (" + "; ".join(spec.notes) + ")")


def _times(frame, column: str | None, rows, keep: np.ndarray, spec: LogSpec):
    from shipml.recommend.log_time import parse_times

    if column is None:
        spec.notes.append("no time column: the file's order is taken as the time order")
        return None
    values = frame[column]
    stamp, how = parse_times(values)
    bad = np.isnan(stamp) & keep
    if bad.all() or bad.sum() > _MAX_BAD_TIMES * keep.sum():
        raise DataError(_bad_times(values, column, rows, bad, keep))
    spec.notes.append(f"time column {column!r} read as {how}")
    if bad.any():
        keep &= ~bad
        spec.notes.append(f"{int(bad.sum())} rows with a missing or unreadable time ({column}) "
                          f"were left out (e.g. row {rows[bad][0]})")  # fmt: skip
    return stamp


def _bad_times(values: pd.Series, column: str, rows, bad: np.ndarray, keep: np.ndarray) -> str:
    unreadable = bad & values.notna().to_numpy()
    n, total = int(bad.sum()), int(keep.sum())
    if not unreadable.any():
        what = f"{n} of {total} rows have no time" if n < total else f"all {total} are missing"
        return (f"the time column {column!r} cannot order the events: {what} (e.g. row "
                f"{rows[bad][0]}); fill it or leave out time= (the file's order is then the "
                f"time order)")  # fmt: skip
    i = int(np.flatnonzero(unreadable)[0])
    share = f"all {total}" if n == total else f"{n} of {total}"
    return (
        f"the time column {column!r} cannot be read as dates or epoch numbers: {share} "
        f"values are missing or unreadable, e.g. {show(values.iloc[i], 60)} in row "
        f"{rows[i]}; write times as ISO 8601 (2024-03-01T09:30:00Z) or epoch seconds"
    )


def _weights(frame, cols, rows, keep: np.ndarray, spec: LogSpec, events) -> np.ndarray:
    from shipml.recommend.log_weights import event_weights, weight_confidence

    weight = np.ones(len(frame))
    if cols.event is not None:
        got = event_weights(frame[cols.event], cols.event, rows, events)
        spec.notes += got.notes
        spec.events = got.used
        keep &= ~got.drop
        weight = np.where(got.drop, 0.0, got.confidence)
    if cols.weight is not None:
        got = weight_confidence(frame[cols.weight], cols.weight, rows)
        spec.notes += got.notes
        spec.weight_kind = got.kind
        keep &= ~got.drop
        weight = weight * np.where(got.drop, 0.0, got.confidence)
    if cols.event is None and cols.weight is None:
        spec.notes.append("no weight or event column: every event counts 1")
    elif cols.event is not None and cols.weight is not None:
        spec.notes.append(f"an event's confidence: its type's weight ({cols.event}) x the "
                          f"confidence of its {cols.weight}")  # fmt: skip
    _check_left(keep, spec)
    return weight


def _merge_repeats(frame, cols, rows, keep: np.ndarray, spec: LogSpec, arrays) -> np.ndarray:
    """Rows that give one (user, item, time, event) more than once: the same weight -> one
    row (a row written twice); different weights -> a DataError (which one is true?)."""
    users, things, stamp, weights = arrays
    out = np.ones(len(keep), bool)
    if cols.time is None or cols.weight is None:
        return out  # without a weight, a repeated row is a repeated event: the matrix sums them
    keys = ["user", "item", "time"] + (["event"] if cols.event else [])
    df = pd.DataFrame({"user": users, "item": things, "time": stamp, "w": weights,
                       "row": rows, "pos": np.arange(len(keep))})[keep]  # fmt: skip
    if cols.event:
        df["event"] = frame[cols.event].astype(str).to_numpy()[keep]
    repeated = df[df.duplicated(keys, keep=False)]
    if repeated.empty:
        return out
    values = repeated.groupby(keys)["w"].transform("nunique")
    if (values > 1).any():
        raise DataError(_conflicts(repeated[values > 1], keys, frame, cols))
    merged = repeated.loc[repeated.duplicated(keys, keep="first"), "pos"].to_numpy()
    out[merged] = False
    spec.notes.append(f"{len(merged)} repeated rows (same user, item, time and {cols.weight}) "
                      f"were merged into one (e.g. row {rows[merged[0]]})")  # fmt: skip
    return out


def _conflicts(bad: pd.DataFrame, keys: list[str], frame, cols) -> str:
    raw = frame[cols.weight].to_numpy()
    groups = list(bad.groupby(keys, sort=False))
    shown = []
    for _key, group in groups[:3]:
        first = group.iloc[0]
        cells = ", ".join(f"row {r} ({show(raw[p], 20)})" for r, p in
                          zip(group["row"].head(4), group["pos"].head(4)))  # fmt: skip
        when = frame[cols.time].iloc[int(first["pos"])]
        shown.append(f"user {show(first['user'], 40)}, item {show(first['item'], 40)} at "
                     f"{show(when, 40)}: {cells}")  # fmt: skip
    more = f" and {len(groups) - 3} more" if len(groups) > 3 else ""
    return (
        f"the log gives more than one {cols.weight} for the same user, item and time "
        f"({'; '.join(shown)}{more}): keep one row per event, or give each its own time"
    )


def _interactions(users, things, weights, stamp, spec: LogSpec, items) -> Interactions:
    order = np.argsort(stamp, kind="stable") if stamp is not None else np.arange(len(users))
    user_ids, user_codes = _codes(users)
    item_ids, item_codes = _codes(things)
    user_codes, item_codes = user_codes[order], item_codes[order]
    n = len(order)
    spec.counts.update(events=n, users=len(user_ids), items=len(item_ids))
    if len(user_ids) < 2 or len(item_ids) < 2:
        raise DataError(
            f"a recommender needs at least 2 users and 2 items; the log has {n} events from "
            f"{len(user_ids)} user{'s' * (len(user_ids) != 1)} on {len(item_ids)} "
            f"item{'s' * (len(item_ids) != 1)} ({spec.user}, {spec.item})"
        )
    table = None
    if items is not None:
        table, item_ids = _catalogue(items, item_ids, spec)
    return Interactions(
        user_ids.astype(object),
        np.asarray(item_ids).astype(object),
        user_codes.astype(np.int32),
        item_codes.astype(np.int32),
        weights[order].astype(np.float32),
        None if stamp is None else stamp[order].astype(np.float64),
        table,
    )


def _codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct IDs sorted, the code of each value): np.unique's answer, by hashing."""
    codes, uniques = pd.factorize(ids)
    uniques = np.asarray(uniques, dtype=object)
    order = np.argsort(uniques.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniques[order], rank[codes]


def _catalogue(items, item_ids: np.ndarray, spec: LogSpec) -> tuple[pd.DataFrame, np.ndarray]:
    """The item table in item-code order (row i: item code i). Items only in the table get
    codes after the log's (no events: cold start); log items not in it get empty fields."""
    from shipml.recommend.log_items import read_items

    table, roles, notes = read_items(items, spec.item)
    spec.notes += notes
    spec.items = roles
    in_log = pd.Index(item_ids)
    extra = np.array(sorted(set(table.index) - set(in_log)), dtype=object)
    absent = int((~in_log.isin(table.index)).sum())
    if absent == len(in_log):
        raise DataError(
            f"the item table's IDs ({roles['id']}: {', '.join(map(show, table.index[:3]))}, ...) "
            f"match none of the log's ({spec.item}: {', '.join(map(show, item_ids[:3]))}, ...): "
            f"is {roles['id']!r} the column of the log's item IDs?"
        )
    if len(extra):
        spec.notes.append(f"{len(extra)} items of the item table have no events: kept in the "
                          f"catalogue (recommended from their metadata)")  # fmt: skip
    if absent:
        spec.notes.append(f"{absent} items of the log are not in the item table (no name or "
                          f"metadata for them)")  # fmt: skip
    all_ids = np.concatenate([item_ids.astype(object), extra])
    attrs = dict(table.attrs)
    table = table.reindex(pd.Index(all_ids, name=table.index.name, dtype=object))
    table.attrs.update(attrs)
    spec.counts.update(catalogue=len(all_ids), items_without_events=len(extra),
                       items_without_metadata=absent)  # fmt: skip
    return table, all_ids
