"""Which columns of an event log hold the user, the item, the time, the weight and the event
type: the names given, else guessed from the header, else from the values.

Guessing never overrides a name given; every guess is said in the notes (the model's lineage),
so a wrong one is seen and fixed with `user=...`, `item=...` etc.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.echo import echo
from shipml.errors import DataError, UsageError

__all__ = ["Columns", "choose_columns", "missing_column_message", "name_key", "normalize_ids",
           "show", "ROLES"]  # fmt: skip

ROLES = ("user", "item", "time", "weight", "event")

# Exact header names (compared without case, spaces, "_" or "-"), best first.
NAMES = {
    "user": ["user_id", "user", "customer_id", "customer", "client_id", "client", "visitor_id",
             "visitor", "member_id", "account_id", "buyer_id", "shopper_id", "person_id", "uid",
             "reader_id", "viewer_id", "listener_id", "player_id", "session_id", "session",
             "user_session"],
    "item": ["item_id", "item", "product_id", "product", "sku", "movie_id", "movie",
             "article_id", "article", "song_id", "track_id", "book_id", "video_id", "asin",
             "isbn", "stock_code", "listing_id", "content_id", "post_id", "offer_id", "iid"],
    "time": ["timestamp", "ts", "time", "datetime", "date", "event_time", "event_timestamp",
             "created_at", "event_date", "time_stamp", "order_date", "invoice_date",
             "purchase_date", "order_time", "purchase_time", "created", "when"],
    "weight": ["rating", "ratings", "stars", "score", "quantity", "qty", "count", "watch_time",
               "duration", "play_count", "plays", "amount", "price", "unit_price", "revenue",
               "weight"],
    "event": ["event", "event_type", "action", "type", "interaction", "interaction_type",
              "behavior", "behaviour", "activity", "event_name"],
}  # fmt: skip

# Words inside a header that mark a role when no exact name matched ("CustomerNo", "StockCode").
WORDS = {
    "user": {"user", "customer", "client", "visitor", "member", "buyer", "shopper", "account",
             "session", "reader", "viewer", "listener", "player", "person"},
    "item": {"item", "product", "sku", "movie", "article", "song", "track", "book", "video",
             "film", "asin", "isbn", "listing", "offer", "stock"},
    "time": {"timestamp", "time", "date", "datetime", "ts"},
    "weight": {"rating", "stars", "quantity", "qty", "price", "amount", "duration", "plays"},
    "event": {"event", "action", "interaction", "behavior", "behaviour"},
}  # fmt: skip
_SAMPLE = 5000
_ID_WORDS = {"id", "key", "code", "no", "nr", "number", "ref"}


@dataclass
class Columns:
    user: str
    item: str
    time: str | None = None
    weight: str | None = None
    event: str | None = None
    notes: list[str] = field(default_factory=list)


def show(value: object, limit: int = 60) -> str:
    """A cell quoted for an error message: numpy scalars as plain numbers, cut to `limit`."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        value = value.isoformat()
    return echo(value, limit)


def name_key(name: str) -> str:
    """A header compared without case, spaces, dashes or underscores: "User ID" == "user_id"."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def missing_column_message(what: str, name: str, columns: list[str]) -> str:
    """The user column 'custmer' is not in {where}. Did you mean 'customer_id'? Columns are: ...

    ({where} is left for the caller to format.)"""
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.5)
    keyed = {name_key(c): c for c in columns}
    if name_key(name) in keyed and keyed[name_key(name)] not in close:
        close.insert(0, keyed[name_key(name)])
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
    return f"the {what} column {name!r} is not in {{where}}.{hint} Columns are: {shown}"


def choose_columns(frame: pd.DataFrame, given: dict[str, str | None], where: str) -> Columns:
    """The column of each role: given (checked), else guessed by header name, else by values;
    False for time, weight or event: the log has none (nothing is guessed).

    `user` and `item` are always found or a DataError says how to name them; `time`, `weight`
    and `event` stay None when nothing fits."""
    columns = [str(c) for c in frame.columns]
    chosen: dict[str, str | None] = {}
    for role in ROLES:
        name = given.get(role)
        if name is False and role in ("user", "item"):
            raise UsageError(f"a log needs a {role} column: name it ({role}=...) or leave it "
                             f"to be guessed")  # fmt: skip
        if name is False:  # "none": do not guess one
            chosen[role] = None
        elif name is not None:
            if not isinstance(name, str):
                raise UsageError(f"{role}= must be a column name, got {show(name)}")
            if name not in columns:
                raise DataError(missing_column_message(role, name, columns).format(where=where))
            chosen[role] = name
    named = [c for c in chosen.values() if c is not None]
    if len(set(named)) < len(named):
        twice = sorted({c for c in named if named.count(c) > 1})
        raise UsageError(f"column {twice[0]!r} is named for two roles ("
                         + ", ".join(r for r, c in chosen.items() if c == twice[0])
                         + "): each role needs its own column")  # fmt: skip
    notes: list[str] = []
    _guess_by_name(columns, chosen, notes)
    _guess_by_values(frame, columns, chosen, notes)
    for role in ("user", "item"):
        if chosen.get(role) is None:
            raise DataError(
                f"cannot tell which column of {where} holds the {role}s: name it "
                f"({role}=..., or --{role} on the command line). Columns are: "
                + ", ".join(columns[:30])
            )
    return Columns(**{r: chosen.get(r) for r in ROLES}, notes=notes)


def _guess_by_name(columns: list[str], chosen: dict, notes: list[str]) -> None:
    for exact in (True, False):
        for role in ROLES:
            if role in chosen:
                continue
            free = [c for c in columns if c not in chosen.values()]
            if exact:  # the list's order decides: user_id before session_id
                keyed = {name_key(c): c for c in reversed(free)}
                found = [keyed[name_key(n)] for n in NAMES[role] if name_key(n) in keyed]
            else:
                found = [c for c in free if _name_fits(c, role)]
            if found:
                chosen[role] = found[0]
                notes.append(f"{role} column guessed: {found[0]}")


def _name_fits(col: str, role: str) -> bool:
    words = _words(col)
    if not WORDS[role] & set(words):
        return False
    if role in ("user", "item"):  # "product_name" is not the product's id
        return len(words) == 1 or bool(_ID_WORDS & set(words))
    return not (_ID_WORDS & set(words))  # "event_id" is not an event type


def _guess_by_values(frame: pd.DataFrame, columns: list[str], chosen: dict, notes: list) -> None:
    from shipml.recommend.log_weights import looks_like_events

    frame = frame.head(_SAMPLE)  # a guess needs a sample, not a million rows
    for role, fits in (("time", _looks_like_time), ("event", looks_like_events)):
        if role in chosen:
            continue
        for col in columns:
            if col not in chosen.values() and fits(frame[col]):
                chosen[role] = col
                notes.append(f"{role} column guessed from its values: {col}")
                break
    ids = [c for c in columns if c not in chosen.values() and _looks_like_ids(frame[c])]
    for role in ("user", "item"):  # by convention a log lists the user, then the item
        if role not in chosen and ids:
            chosen[role] = ids.pop(0)
            notes.append(
                f"{role} column guessed from its values: {chosen[role]} (the first column of "
                f"repeated IDs left; name it with {role}=... if that is wrong)"
            )


def _looks_like_time(values: pd.Series) -> bool:
    from shipml.recommend.log_time import parse_times

    present = values.dropna()
    if len(present) == 0:
        return False
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    numbers = pd.to_numeric(present.astype(str), errors="coerce")
    if numbers.notna().all():  # epoch seconds or milliseconds from 2001 to 2033 only
        n = numbers.to_numpy(float)
        epoch = ((n >= 1e9) & (n < 2e9)) | ((n >= 1e12) & (n < 2e12))
        return bool(epoch.mean() >= 0.95 and len(np.unique(n)) > 0.5 * len(n))
    text = present.astype(str).head(500)
    if not text.str.contains(r"\d[-/.:]\d|\d{4}-\d", regex=True).mean() >= 0.9:
        return False
    return bool(np.isfinite(parse_times(text)[0]).mean() >= 0.9)


def _looks_like_ids(values: pd.Series) -> bool:
    present = values.dropna()
    if len(present) < max(2, 0.9 * len(values)) or pd.api.types.is_bool_dtype(values):
        return False
    text = present.astype(str)
    if text.str.len().mean() > 64 or text.str.contains(r"\s\S+\s", regex=True).mean() > 0.5:
        return False  # sentences are not IDs
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and not np.all(np.mod(numbers.to_numpy(float), 1) == 0):
        return False  # prices and ratings with decimals
    n_unique = text.nunique()
    return 2 <= n_unique < len(text)


_NUMBER = r"^[+-]?\d+(\.\d+)?$"


def normalize_ids(
    values: pd.Series, column: str, rows: np.ndarray
) -> tuple[np.ndarray, str | None]:
    """IDs as strings (None where missing) and a note when whole numbers written as floats
    ("17.0": what pandas makes of an integer column with a missing value) became "17".
    IDs with decimals ("17.5") raise a DataError: they are measurements, not IDs."""
    missing = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=float)
    elif pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        numbers = None
    else:
        shown = pd.Series(text[~missing])
        plain = shown.str.fullmatch(_NUMBER).all() and shown.str.contains(".", regex=False).any()
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(float) if plain else None
    text[missing] = None
    if numbers is None or missing.all():
        return text, None
    fraction = np.mod(np.abs(numbers), 1.0)
    bad = ~missing & (fraction != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"the IDs in column {column!r} look like decimal numbers ({show(values.iloc[i], 40)} "
            f"in row {rows[i]}): IDs must be whole numbers or text; is {column!r} the right "
            f"column?"
        )
    text[~missing] = [str(int(v)) for v in numbers[~missing]]
    # no example value in the note: notes go into the model's lineage, and these may be users
    return text, (f"IDs in column {column!r} were whole numbers written as floats (like 17.0): "
                  f"read as whole numbers (17)")  # fmt: skip
