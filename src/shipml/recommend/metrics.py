"""Ranking metrics on a full ranking over every item (Krichene & Rendle, KDD 2020: sampled
metrics disagree with full ones), the user's own training items excluded.

`scores` is an (n, n_items) array for the n users of a RankTargets; `targets.target` marks each
user's held-out items. HR@K: the share of users with a held-out item in their top K; recall@K:
the share of a user's held-out items in the top K (averaged over users); NDCG@K with binary
relevance, normalized by the ideal ranking of min(K, held-out) items; MRR: the mean reciprocal
rank of the first held-out item (over the full ranking).
"""

from __future__ import annotations

import numpy as np

__all__ = ["masked", "top_k", "ranks_of_targets", "ranking_metrics", "metric_at"]


def masked(scores: np.ndarray, targets) -> np.ndarray:
    """A float32 copy of `scores` with each user's training items at -inf."""
    out = np.array(scores, dtype=np.float32, copy=True)
    seen = targets.history.matrix.tocoo()
    out[seen.row, seen.col] = -np.inf
    return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(n, k) item codes of each row's k highest scores, best first (argpartition, then a sort
    of the k)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranks_of_targets(scores: np.ndarray, targets) -> list[np.ndarray]:
    """Per user, the 1-based ranks of its held-out items in its masked full ranking (ties
    count against the item: a constant scorer earns nothing)."""
    s = masked(scores, targets)
    t = targets.target.tocsr()
    out = []
    for u in range(s.shape[0]):
        items = t.indices[t.indptr[u] : t.indptr[u + 1]]
        row = s[u]
        out.append(np.array([np.count_nonzero(row >= row[i]) for i in items]))
    return out


def ranking_metrics(scores: np.ndarray, targets, ks=(5, 10, 20)) -> dict[str, float]:
    """HR@K, NDCG@K, recall@K for each K, and MRR, averaged over users with a held-out item."""
    ranks = ranks_of_targets(scores, targets)
    have = [r for r in ranks if len(r)]
    out: dict[str, float] = {}
    if not have:
        return out
    for k in ks:
        hr, ndcg, recall = [], [], []
        for r in have:
            hits = r[r <= k]
            hr.append(float(len(hits) > 0))
            recall.append(len(hits) / len(r))
            ideal = np.sum(1.0 / np.log2(np.arange(2, min(k, len(r)) + 2)))
            ndcg.append(float(np.sum(1.0 / np.log2(hits + 1))) / ideal)
        out[f"hr@{k}"] = float(np.mean(hr))
        out[f"ndcg@{k}"] = float(np.mean(ndcg))
        out[f"recall@{k}"] = float(np.mean(recall))
    out["mrr"] = float(np.mean([1.0 / r.min() for r in have]))
    return out


def metric_at(name: str, scores: np.ndarray, targets) -> float:
    """One metric ("ndcg@10", "hr@5", "recall@20", "mrr") of `scores`."""
    k = int(name.split("@")[1]) if "@" in name else 20
    return ranking_metrics(scores, targets, ks=(k,)).get(name, float("nan"))
