"""Reading a log of user-item events into Interactions (recommend/interactions.py).

SPINE: columns must be named; every event weighs 1. To be completed (issue 15, part 1):
column guessing, weights, event types, ratings, the item table, the errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.errors import DataError
from shipml.recommend.interactions import Interactions

__all__ = ["LogSpec", "read_log"]


@dataclass
class LogSpec:
    """How the log's columns were read (recorded in the model's lineage and report)."""

    user: str
    item: str
    time: str | None = None
    weight: str | None = None
    event: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"user": self.user, "item": self.item, "time": self.time, "weight": self.weight,
                "event": self.event, "notes": list(self.notes)}  # fmt: skip


def read_log(data, *, user: str | None = None, item: str | None = None,
             time: str | None = None, weight: str | None = None, event: str | None = None,
             items=None) -> tuple[Interactions, LogSpec]:  # fmt: skip
    """The events of `data` (a path or a DataFrame) as Interactions sorted by time, and how the
    columns were read. `items`: an optional item table (path or DataFrame) with the item
    column and names, categories, prices or texts."""
    from shipml.data.io import read_table

    frame = data if isinstance(data, pd.DataFrame) else read_table(data).frame
    if user is None or item is None:
        raise DataError("name the user and item columns (user=..., item=...)")
    spec = LogSpec(user, item, time)
    users = frame[user].astype(str).to_numpy()
    things = frame[item].astype(str).to_numpy()
    stamp = None
    if time is not None:
        stamp = pd.to_datetime(frame[time], utc=True).astype("int64").to_numpy() / 1e9
    order = np.argsort(stamp, kind="stable") if stamp is not None else np.arange(len(frame))
    user_ids, user_codes = np.unique(users[order], return_inverse=True)
    item_ids, item_codes = np.unique(things[order], return_inverse=True)
    inter = Interactions(
        user_ids.astype(object),
        item_ids.astype(object),
        user_codes.astype(np.int32),
        item_codes.astype(np.int32),
        np.ones(len(frame), dtype=np.float32),
        None if stamp is None else stamp[order].astype(np.float64),
        None,
    )
    return inter, spec
