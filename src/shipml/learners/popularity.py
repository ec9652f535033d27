"""The popularity recommender: every user gets the items most users interacted with, all-time
or in a recent window (the floor of every recommendation search: a ranking must beat it).

The reference implementation of the ranking contract (learners/base.py's Recommender and
RankFolds; docs/architecture.md): a module, a Fitted stored as data only, a family object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Budget, Candidate, Config, RankFolds

__all__ = ["PopularityFitted", "POPULARITY", "item_popularity"]


def item_popularity(data, window: float | None = None) -> np.ndarray:
    """Distinct users per item (float32), over the last `window` share of the log's time span
    (None: all of it; a log without times: the last share of its events)."""
    keep = np.ones(data.n_events, dtype=bool)
    if window is not None and data.n_events:
        if data.time is not None:
            start, end = float(data.time.min()), float(data.time.max())
            keep = data.time >= end - window * (end - start)
        else:
            keep[: int(data.n_events * (1.0 - window))] = False
    pairs = np.unique(data.user[keep].astype(np.int64) * data.n_items + data.item[keep])
    counts = np.bincount(pairs % data.n_items, minlength=data.n_items).astype(np.float32)
    # ties broken by all-time popularity, so a short window still ranks every item
    if window is not None:
        counts += item_popularity(data) / (counts.max() + 1.0) / (data.n_users + 1.0)
    return counts


@dataclass
class PopularityFitted:
    counts: np.ndarray  # (n_items,) float32
    window: float | None = None
    kind: str = "popularity"

    def scores(self, histories) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(histories), len(self.counts))).copy()

    def similar(self, items: np.ndarray) -> np.ndarray:
        return self.scores(np.zeros(len(items)))

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        name = f"{prefix}_popularity.npy"
        return {"kind": self.kind, "window": self.window, "counts": name}, {name: self.counts}

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> PopularityFitted:
        counts = reader.read_npy(meta["counts"]).astype(np.float32)
        return cls(counts, meta.get("window"))


@dataclass(frozen=True)
class PopularityFamily:
    name: str = "popular"
    kind: str = "popularity"
    keep: int = 2
    floor: bool = True  # the score a recommendation search must not end below
    baseline: bool = False
    searched: bool = False
    refits: bool = True
    stops_at_deadline: bool = False  # a count: milliseconds

    def available(self) -> str | None:
        return None

    def configs(self, data) -> list[Config]:
        return [Config("popular", {"window": None}), Config("popular(recent)", {"window": 0.1})]

    def suggest(self, trial, task, transforms):
        return None

    def fit(self, folds: RankFolds, config: Config, budget: Budget, trial=None) -> Candidate:
        fitted = PopularityFitted(item_popularity(folds.data, config.params.get("window")),
                                  config.params.get("window"))  # fmt: skip
        scores = fitted.scores(folds.targets.history)
        return folds.candidate(self.name, config.params, scores, fitted)

    def refit(self, cand: Candidate, data, seed: int, budget: Budget) -> Candidate:
        window = cand.params.get("window")
        cand.fitted = PopularityFitted(item_popularity(data, window), window)
        return cand

    def load(self, meta: dict, reader, task: str) -> PopularityFitted:
        return PopularityFitted.load(meta, reader, task)


POPULARITY = PopularityFamily()
