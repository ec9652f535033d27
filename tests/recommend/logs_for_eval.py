"""Small seeded synthetic logs with real structure for the evaluation tests: users belong to
taste clusters, each cluster has its own items with a Zipf-like popularity skew, a user's next
item often follows their previous one (a sequence), and times either spread over the whole log
(users return: a global time split suits it) or come in one short burst per user (most users
visit once: leave-last-out suits it)."""

from __future__ import annotations

import numpy as np

from shipml.recommend.interactions import Interactions

DAY = 86_400.0


def shop_log(
    n_users: int = 300,
    n_items: int = 120,
    events: int = 12,
    *,
    bursts: bool = False,
    clusters: int = 4,
    seed: int = 0,
    repeat: float = 0.05,
) -> Interactions:
    rng = np.random.default_rng(seed)
    per = n_items // clusters
    pop = 1.0 / np.arange(1, per + 1) ** 1.1
    pop /= pop.sum()
    users, items, times = [], [], []
    for u in range(n_users):
        c = u % clusters
        n = max(1, int(rng.poisson(events)))
        start = rng.uniform(0, 80 * DAY) if bursts else 0.0
        span = 0.2 * DAY if bursts else 90 * DAY
        t = np.sort(start + rng.uniform(0, span, n))
        prev = None
        for j in range(n):
            if prev is not None and rng.random() < repeat:
                it = prev  # a repeat purchase
            elif prev is not None and rng.random() < 0.4:
                it = c * per + (prev - c * per + 1) % per  # the next item of a sequence
            elif rng.random() < 0.85:
                it = c * per + rng.choice(per, p=pop)  # the user's cluster, popular first
            else:
                it = int(rng.integers(0, n_items))  # anything
            users.append(u)
            items.append(it)
            times.append(t[j])
            prev = it
    order = np.argsort(times, kind="stable")
    user = np.array(users)[order]
    item = np.array(items)[order]
    return Interactions(
        np.array([f"u{u}" for u in range(n_users)], dtype=object),
        np.array([f"i{i}" for i in range(n_items)], dtype=object),
        user.astype(np.int32),
        item.astype(np.int32),
        np.ones(len(user), dtype=np.float32),
        np.array(times)[order].astype(np.float64),
    )


def cooccurrence_scorer(train: Interactions):
    """A small item-to-item recommender fitted on `train`: an item scores the number of times
    it was taken by users who also took the user's items (a real, if plain, model)."""
    x = train.matrix()
    x.data[:] = 1.0
    sim = (x.T @ x).toarray()
    np.fill_diagonal(sim, 0.0)
    tie_break = np.asarray(x.sum(axis=0)).ravel() * 1e-3  # popular first among equals

    def scores(histories) -> np.ndarray:
        h = histories.matrix.copy()
        h.data[:] = 1.0
        return np.asarray(h @ sim) + tie_break

    return scores
