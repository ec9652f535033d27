"""The data every recommender fits on: a log of (user, item, weight, time) events as integer
codes, and the held-out events a recommender is scored on.

This is the contract between the log reader (log.py), the evaluation protocol (protocol.py),
the recommender families (learners/: `fit(folds, config, budget)` on `RankFolds`) and the
model (model.py). Codes index `users` / `items` (the original IDs, as strings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["Interactions", "Histories", "RankTargets"]


@dataclass
class Interactions:
    """Events sorted by (time, order in the file). `weight` is the implicit confidence of an
    event (> 0: a purchase's quantity, a rating turned into confidence, an event type's rank);
    `time` is seconds since the epoch (UTC), or None when the log has no time column (then the
    file's order is the time order)."""

    users: np.ndarray  # object array of str: the user ID of each user code
    items: np.ndarray  # object array of str: the item ID of each item code
    user: np.ndarray  # int32 user code per event
    item: np.ndarray  # int32 item code per event
    weight: np.ndarray  # float32 confidence per event
    time: np.ndarray | None = None  # float64 per event, or None
    item_table: pd.DataFrame | None = None  # index: item ID (str); name, category, price, text
    task: str = field(default="recommend", init=False)  # what the search's families read

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_events(self) -> int:
        return len(self.user)

    def matrix(self) -> sp.csr_matrix:
        """(n_users, n_items) float32 CSR: the summed confidence of each user-item pair."""
        m = sp.csr_matrix(
            (self.weight.astype(np.float32), (self.user, self.item)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        return m

    def take(self, mask: np.ndarray) -> Interactions:
        """The events where `mask` (bool per event, or event indices) holds; same ID maps."""
        t = None if self.time is None else self.time[mask]
        return Interactions(self.users, self.items, self.user[mask], self.item[mask],
                            self.weight[mask], t, self.item_table)  # fmt: skip

    def sequences(self) -> list[np.ndarray]:
        """Each user's item codes in event order (index: user code)."""
        order = np.argsort(self.user, kind="stable")  # events are already in time order
        bounds = np.searchsorted(self.user[order], np.arange(self.n_users + 1))
        items = self.item[order]
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def histories(self, users: np.ndarray) -> Histories:
        """What the model knows of `users` (codes) from these events."""
        users = np.asarray(users, dtype=np.int64)
        seqs = self.sequences()
        return Histories(users, self.matrix()[users], [seqs[u] for u in users])


@dataclass
class Histories:
    """The input of a recommender's `scores`: for n users, their codes (-1: a visitor the model
    has not seen, known only by the items given), their interactions as an (n, n_items)
    confidence matrix, and their item codes in time order (for sequential models)."""

    users: np.ndarray
    matrix: sp.csr_matrix
    sequences: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Histories:
        return Histories(self.users[rows], self.matrix[rows], [self.sequences[i] for i in rows])


@dataclass
class RankTargets:
    """Held-out events of some users: what a ranking is scored on. `target` marks the
    held-out items (1.0), `history` is what the recommender saw of those users (their
    training items are excluded from the ranking: full ranking over every other item)."""

    history: Histories
    target: sp.csr_matrix  # (n, n_items) float32, 1.0 at each held-out item

    def __len__(self) -> int:
        return len(self.history)
