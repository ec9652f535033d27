"""The evaluation protocol: which events a recommender trains on, is chosen on (validation)
and is scored on (test).

SPINE: leave-last-out only. To be completed (issue 15, part 3): the global time split when the
log is long enough, decided from the data and overridable; the protocol's description.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shipml.recommend.interactions import Interactions, RankTargets

__all__ = ["RecSplit", "split_log"]


@dataclass
class RecSplit:
    """`train` -> chosen on `val`; `train_val` (train + the validation events) -> scored on
    `test`; the served model refits on every event."""

    kind: str  # "leave-last-out" or "time"
    train: Interactions
    val: RankTargets
    train_val: Interactions
    test: RankTargets
    description: str


def _last_per_user(inter: Interactions) -> np.ndarray:
    """Index of each user's last event (users with at least two events)."""
    last = np.full(inter.n_users, -1)
    last[inter.user] = np.arange(inter.n_events)  # events are in time order: the last wins
    counts = np.bincount(inter.user, minlength=inter.n_users)
    return last[(last >= 0) & (counts >= 2)]


def _targets(history: Interactions, held: Interactions) -> RankTargets:
    users = np.unique(held.user)
    row = np.searchsorted(users, held.user)
    target = sp.csr_matrix((np.ones(len(row), np.float32), (row, held.item)),
                           shape=(len(users), held.n_items))  # fmt: skip
    target.data[:] = 1.0
    return RankTargets(history.histories(users), target)


def split_log(inter: Interactions, how: str = "auto") -> RecSplit:
    """Leave-last-out by time: each user's last event is the test, the one before it the
    validation (users with one event only train)."""
    test_idx = _last_per_user(inter)
    keep = np.ones(inter.n_events, dtype=bool)
    keep[test_idx] = False
    train_val, test_events = inter.take(keep), inter.take(test_idx)
    val_idx = _last_per_user(train_val)
    keep2 = np.ones(train_val.n_events, dtype=bool)
    keep2[val_idx] = False
    train, val_events = train_val.take(keep2), train_val.take(val_idx)
    return RecSplit(
        "leave-last-out",
        train,
        _targets(train, val_events),
        train_val,
        _targets(train_val, test_events),
        "leave-last-out by time: each user's last event is the test, the one before it the "
        "validation; every item is ranked (full ranking), the user's earlier items excluded",
    )
