"""The whole evaluation of a recommender on held-out events, as one JSON-able summary, always
beside the popularity baseline on the same split.

`evaluate_ranking(scorer, targets, train)`: `scorer` is a callable Histories -> (n, n_items)
scores (RecModel.scores, a Fitted's scores), `targets` the held-out RankTargets (a RecSplit's
test), `train` the events the scorer learned from (the popularity baseline and the "most
popular items" are counted there). Users are scored in blocks, so a large test set never
makes one huge matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shipml.recommend import metrics as M
from shipml.recommend.interactions import Interactions, RankTargets

__all__ = ["evaluate_ranking", "SAMPLED_NEGATIVES", "POPULAR_SHARE"]

SAMPLED_NEGATIVES = 100
POPULAR_SHARE = 0.01  # "the 1 % most popular items"
K_MAX = 20
_BLOCK_CELLS = 5_000_000  # users scored at once x items: ~20 MB of float32 scores
_EXAMPLE_K = 10
_EXAMPLE_HISTORY = 5


@dataclass
class _Ranked:
    """What one scorer's rankings give: per held-out entry its user row, full and sampled
    rank; per user its top K_MAX items (own items excluded)."""

    rows: np.ndarray
    ranks: np.ndarray
    sampled: np.ndarray
    top: np.ndarray


def evaluate_ranking(scorer: Callable, targets: RankTargets, train: Interactions, *,
                     ks=M.KS, seed: int = 0, n_examples: int = 5,
                     block_cells: int = _BLOCK_CELLS) -> dict:  # fmt: skip
    """Full-ranking metrics, sampled-100 metrics, coverage@K, popularity share@K, metric vs
    K = 1..20, results by user-history length and a few example top-10 lists, for the model
    and for the popularity baseline (learners/popularity.py) on the same held-out events."""
    from shipml.learners.popularity import item_popularity

    counts = item_popularity(train)
    popular = M.top_popular(counts, POPULAR_SHARE)
    negatives = M.sample_negatives(targets, SAMPLED_NEGATIVES, seed)[1]

    def baseline(h):
        return np.broadcast_to(counts, (len(h), len(counts)))

    model = _rank(scorer, targets, negatives, block_cells)
    pop = _rank(baseline, targets, negatives, block_cells)
    lengths = M.history_lengths(targets.history)
    return {
        "users": int(len(np.unique(model.rows))),
        "targets": int(len(model.rows)),
        "items": int(targets.target.shape[1]),
        "ks": [int(k) for k in ks],
        "sampled_negatives": SAMPLED_NEGATIVES,
        "popular_items": int(len(popular)),
        "popular_share": POPULAR_SHARE,
        "seed": int(seed),
        "model": _summary(model, ks, popular, targets.target.shape[1]),
        "popularity": _summary(pop, ks, popular, targets.target.shape[1]),
        "by_history": _by_history(model, pop, lengths),
        "examples": _examples(model, targets, train, lengths, n_examples, seed),
    }


def _rank(scorer: Callable, targets: RankTargets, negatives: np.ndarray,
          block_cells: int) -> _Ranked:  # fmt: skip
    n, n_items = targets.target.shape
    step = max(1, block_cells // max(1, n_items))
    rows, ranks, sampled, tops = [], [], [], []
    start = 0  # the first held-out entry of the block (entries are sorted by user row)
    for a in range(0, n, step):
        idx = np.arange(a, min(n, a + step))
        part = RankTargets(targets.history.take(idx), targets.target[idx])
        s = np.asarray(scorer(part.history), dtype=np.float32)
        r, k = M.target_ranks(s, part)
        _, sr = M.sampled_ranks(s, part, negatives[start : start + len(r)])
        start += len(r)
        rows.append(r + a)
        ranks.append(k)
        sampled.append(sr)
        tops.append(_top(M.masked(s, part), K_MAX))
    cat = np.concatenate
    return _Ranked(cat(rows), cat(ranks), cat(sampled), cat(tops))


def _top(masked: np.ndarray, k: int) -> np.ndarray:
    """Top-k item codes, -1 where a user has fewer than k items left to recommend."""
    top = M.top_k(masked, k)
    top[~np.isfinite(np.take_along_axis(masked, top, axis=1))] = -1
    return top


def _summary(r: _Ranked, ks, popular: np.ndarray, n_items: int) -> dict:
    return {
        "full": M.metrics_from_ranks(r.rows, r.ranks, ks),
        "sampled": M.sampled_metrics(r.rows, r.sampled, ks),
        "coverage": {str(k): M.coverage(r.top[:, :k], n_items) for k in ks},
        "popularity_share": {str(k): M.popularity_share(r.top[:, :k], popular) for k in ks},
        "by_k": M.metric_curve(r.rows, r.ranks, K_MAX),
    }


def _by_history(model: _Ranked, pop: _Ranked, lengths: np.ndarray) -> list[dict]:
    which = M.bucket_of(lengths)
    out = []
    for b, (lo, hi) in enumerate(M.HISTORY_BUCKETS):
        users = np.flatnonzero(which == b)
        users = np.intersect1d(users, model.rows)
        if not len(users):
            continue
        out.append({
            "bucket": M.history_bucket(lo, hi),
            "users": int(len(users)),
            "model": M.metrics_from_ranks(model.rows, model.ranks, (10,), users),
            "popularity": M.metrics_from_ranks(pop.rows, pop.ranks, (10,), users),
        })  # fmt: skip
    return out


def _examples(r: _Ranked, targets: RankTargets, train: Interactions, lengths: np.ndarray,
              n: int, seed: int) -> list[dict]:  # fmt: skip
    """A seeded sample of users: their last items, held-out items and top 10 (item codes and
    IDs; no user ID: reports carry no personal data)."""
    users = np.unique(r.rows)
    if not len(users) or n <= 0:
        return []
    pick = np.sort(np.random.default_rng(seed).choice(users, min(n, len(users)), replace=False))
    t = targets.target.tocsr()
    out = []
    for u in pick:
        seq = targets.history.sequences[u]
        held = t.indices[t.indptr[u] : t.indptr[u + 1]]
        top = [int(i) for i in r.top[u, :_EXAMPLE_K] if i >= 0]
        out.append({
            "history_length": int(lengths[u]),
            "history": _codes(seq[-_EXAMPLE_HISTORY:][::-1], train),
            "held_out": _codes(held, train),
            "top": _codes(top, train),
            "hits": [int(i) in set(held.tolist()) for i in top],
        })  # fmt: skip
    return out


def _codes(codes, train: Interactions) -> list[dict]:
    return [{"code": int(c), "id": str(train.items[int(c)])} for c in codes]
