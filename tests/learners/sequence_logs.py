"""Seeded synthetic logs for the sequential signal (learners/recency.py, transitions.py): one
where the order of a user's events says what comes next, and the same kind of log with the order
of each user's events drawn at random (where it says nothing)."""

from __future__ import annotations

import numpy as np

from shipml.recommend.interactions import Interactions


def chain_log(seed: int = 0, n_users: int = 300, n_items: int = 120,
              ordered: bool = True) -> Interactions:  # fmt: skip
    """Users walk a hidden cycle over the items (the next item is succ(last) with p = 0.8),
    else jump to a popularity-skewed item; 12-30 events each. `ordered=False`: each user's
    events get their times in a random order, so the order carries nothing (the sets of items
    still do: neighbours on the cycle)."""
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(n_items)
    succ = np.empty(n_items, dtype=np.int64)
    succ[cycle] = np.roll(cycle, -1)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    users, items, times = [], [], []
    for u in range(n_users):
        n = int(rng.integers(12, 31))
        walk = [int(rng.choice(n_items, p=pop))]
        for _ in range(n - 1):
            walk.append(
                int(succ[walk[-1]]) if rng.random() < 0.8 else int(rng.choice(n_items, p=pop))
            )
        slots = np.arange(n, dtype=np.float64) if ordered else rng.permutation(n).astype(np.float64)
        users += [u] * n
        items += walk
        times += list(1.7e9 + 1e6 * u / n_users + 60.0 * slots)
    order = np.argsort(times, kind="stable")
    return Interactions(np.array([f"u{k}" for k in range(n_users)], dtype=object),
                        np.array([f"i{k}" for k in range(n_items)], dtype=object),
                        np.asarray(users, np.int32)[order], np.asarray(items, np.int32)[order],
                        np.ones(len(users), np.float32), np.asarray(times)[order])  # fmt: skip
