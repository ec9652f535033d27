"""How much an event says about a user's taste: its type (a purchase says more than a view)
and its weight column (a quantity, a price, a watch time, or an explicit rating).

Every event the reader keeps is a positive interaction with a confidence > 0 (Hu, Koren &
Volinsky 2008): explicit ratings become a confidence that grows with the rating, amounts a
confidence that grows with their logarithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.errors import DataError, UsageError
from shipml.recommend.log_columns import name_key, show

__all__ = ["DEFAULT_EVENTS", "EVENT_NAMES", "event_weights", "looks_like_events",
           "weight_confidence", "Weights"]  # fmt: skip

# The weight of each event type, from the weakest signal to the strongest.
DEFAULT_EVENTS = {"view": 1.0, "click": 1.0, "cart": 2.0, "wishlist": 3.0, "purchase": 4.0}
EVENT_NAMES = {
    "view": ["view", "views", "viewed", "page_view", "pageview", "detail", "detail_view",
             "product_view", "visit", "open", "play", "watch", "read"],
    "click": ["click", "clicks", "clicked", "tap"],
    "cart": ["cart", "add_to_cart", "added_to_cart", "add", "basket", "add_to_basket"],
    "wishlist": ["wishlist", "wish", "favorite", "favourite", "like", "save", "bookmark"],
    "purchase": ["purchase", "purchased", "buy", "bought", "order", "ordered", "transaction",
                 "checkout", "sale", "conversion"],
}  # fmt: skip
_CANONICAL = {name_key(a): kind for kind, names in EVENT_NAMES.items() for a in names}

RATING_NAMES = {name_key(n) for n in ("rating", "ratings", "stars", "star", "score", "grade",
                                      "rate", "user_rating", "review_score")}  # fmt: skip
AMOUNT_NAMES = {name_key(n) for n in ("quantity", "qty", "count", "price", "unit_price",
                                      "amount", "revenue", "duration", "watch_time", "plays",
                                      "play_count", "minutes", "seconds", "clicks", "views",
                                      "total", "value_eur", "value_usd")}  # fmt: skip
# (low, high, the values a scale allows): a column that holds only these is a rating.
_SCALES = ((1, 5, np.arange(1, 6)), (0.5, 5, np.arange(1, 11) / 2), (0, 5, np.arange(0, 6)),
           (1, 10, np.arange(1, 11)), (0, 10, np.arange(0, 11)))  # fmt: skip
_TOP = 4.0  # confidence of the best rating; the worst rating has 1


@dataclass
class Weights:
    """Confidence per row (NaN: a missing value), rows to drop, and what was done."""

    confidence: np.ndarray
    drop: np.ndarray
    kind: str | None = None
    notes: list[str] = field(default_factory=list)
    used: dict = field(default_factory=dict)  # event type as written -> its weight


def looks_like_events(values: pd.Series) -> bool:
    """A text column with a few distinct values, most of them known event types."""
    present = values.dropna()
    if len(present) < 2 or pd.api.types.is_numeric_dtype(values):
        return False
    keys = present.astype(str).map(name_key)
    if keys.nunique() > 30:
        return False
    return bool(keys.isin(_CANONICAL.keys()).mean() >= 0.5)


def event_weights(values: pd.Series, column: str, rows: np.ndarray,
                  mapping: dict | None) -> Weights:  # fmt: skip
    """The weight of each row's event type: `mapping` (event name -> weight) first, then the
    defaults for the known names (and their spellings: "addtocart", "Add to cart")."""
    table = _mapping(mapping)
    keys = values.astype("string").str.strip()
    codes, names = pd.factorize(keys)  # -1: missing
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    per_name = np.full(len(names) + 1, np.nan)  # the last one: missing
    unknown: dict[str, int] = {}
    for k, raw in enumerate(names):
        key = name_key(raw)
        kind = _CANONICAL.get(key)
        if key in table:
            per_name[k] = table[key]
        elif kind is not None:
            per_name[k] = table.get(kind, DEFAULT_EVENTS[kind])
        else:
            unknown[str(raw)] = int(counts[k])
    weight = per_name[codes]
    if unknown:
        raise DataError(_unknown_events(column, unknown, mapping))
    used = _used(keys, table)
    notes = [f"event weights ({column}): " + ", ".join(f"{k} {w:g}" for k, w in used.items())]
    missing = np.isnan(weight) & keys.isna().to_numpy()
    if missing.all():
        raise DataError(f"the event column {column!r} has no values (all {len(values)} missing)")
    zero = weight == 0
    if zero.any():
        notes.append(f"{int(zero.sum())} events weighted 0 by events= were left out")
    if missing.any():
        notes.append(f"{int(missing.sum())} rows without an event type ({column}) were left out "
                     f"(e.g. row {rows[np.flatnonzero(missing)[0]]})")  # fmt: skip
    return Weights(weight, zero | missing, "event", notes, used)


def _mapping(mapping: dict | None) -> dict[str, float]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict) or not mapping:
        raise UsageError("events= must map event names to weights, e.g. {'view': 1, 'buy': 4}")
    out = {}
    for name, w in mapping.items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            w = float("nan")
        if not np.isfinite(w) or w < 0:
            raise UsageError(f"events=: the weight of {show(name)} must be a number >= 0, "
                             f"got {show(mapping[name])}")  # fmt: skip
        out[name_key(name)] = w
    return out


def _unknown_events(column: str, unknown: dict[str, int], mapping: dict | None) -> str:
    common = sorted(unknown.items(), key=lambda kv: -kv[1])[:10]
    shown = ", ".join(f"{show(k, 40)} ({n})" for k, n in common)
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    known = "; ".join(f"{k} = {DEFAULT_EVENTS[k]:g} ({', '.join(v[:4])})"
                      for k, v in EVENT_NAMES.items())  # fmt: skip
    given = f" nor in events= ({', '.join(map(str, mapping))})" if mapping else ""
    return (f"the event column {column!r} has event types shipml does not know{given}: "
            f"{shown}{more}. Known types and their weights: {known}. Give a weight to each "
            f"with events={{'name': weight, ...}}; 0 leaves an event type out")  # fmt: skip


def _used(keys: pd.Series, table: dict) -> dict[str, float]:
    out = {}
    for raw in sorted(keys.dropna().unique()):
        key = name_key(raw)
        kind = _CANONICAL.get(key)
        out[str(raw)] = float(table.get(key, table.get(kind, DEFAULT_EVENTS.get(kind))))
    return out


def weight_confidence(values: pd.Series, column: str, rows: np.ndarray) -> Weights:
    """The confidence of each row's weight value: an explicit rating (named rating/stars/score
    or holding only the values of a usual scale) -> 1 (worst) .. 4 (best); an amount (a
    quantity, price, watch time) -> log2(1 + value / median): 1 for a typical value."""
    from shipml.data.parse import parse_numeric

    numbers, _cleaned = parse_numeric(values)
    bad = np.isnan(numbers) & values.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"the weight column {column!r} expected numbers, got "
                        f"{show(values.iloc[i], 60)} in row {rows[i]}")  # fmt: skip
    missing = np.isnan(numbers)
    if missing.all():
        raise DataError(f"the weight column {column!r} has no values (all {len(values)} missing)")
    scale = _rating_scale(numbers[~missing], column)
    if scale is not None:
        out = _from_ratings(numbers, column, scale)
    else:
        out = _from_amounts(numbers, column, rows)
    if missing.any():
        out.notes.append(f"{int(missing.sum())} rows without a weight ({column}) count as one "
                         f"typical event (confidence 1)")  # fmt: skip
        out.confidence[missing] = 1.0
    return out


def _rating_scale(present: np.ndarray, column: str) -> tuple[float, float] | None:
    key = name_key(column)
    if key in AMOUNT_NAMES:
        return None
    distinct = np.unique(present)
    for low, high, allowed in _SCALES:
        if np.isin(distinct, allowed).all() and (key in RATING_NAMES or len(distinct) >= 3):
            return float(low), float(high)
    if key in RATING_NAMES:
        return float(distinct.min()), float(distinct.max())
    return None


def _from_ratings(numbers: np.ndarray, column: str, scale: tuple[float, float]) -> Weights:
    low, high = scale
    span = high - low
    conf = 1.0 + (_TOP - 1.0) * ((numbers - low) / span if span > 0 else 0.0 * numbers)
    why = "its name" if name_key(column) in RATING_NAMES else "its values"
    note = (f"weight column {column!r} read as explicit ratings (told by {why}; scale "
            f"{low:g}-{high:g}): every rated event is a positive interaction, with a confidence "
            f"from 1 (rating {low:g}) to {_TOP:g} (rating {high:g})")  # fmt: skip
    return Weights(conf, np.zeros(len(numbers), bool), "rating", [note])


def _from_amounts(numbers: np.ndarray, column: str, rows: np.ndarray) -> Weights:
    drop = numbers <= 0  # NaN compares False: missing values are kept
    notes = []
    if drop.all():
        raise DataError(f"the weight column {column!r} has no value above 0 (e.g. "
                        f"{numbers[0]:g} in row {rows[0]}): weights are quantities, prices "
                        f"or durations of events that happened")  # fmt: skip
    if drop.any():
        notes.append(
            f"{int(drop.sum())} rows with a weight ({column}) of 0 or less were "
            f"left out (returns, cancellations; e.g. row {rows[np.flatnonzero(drop)[0]]})"
        )
    positive = numbers[~drop & ~np.isnan(numbers)]
    typical = float(np.median(positive))
    conf = np.log2(1.0 + numbers / typical)
    notes.append(f"weight column {column!r} read as an amount: confidence log2(1 + value / "
                 f"{typical:g}) (1 for the median value, +1 for each doubling)")  # fmt: skip
    return Weights(conf, drop, "amount", notes)
