"""Ranking metrics on a full ranking over every item (Krichene & Rendle, KDD 2020: sampled
metrics disagree with full ones), the user's own training items excluded.

`scores` is an (n, n_items) array for the n users of a RankTargets; `targets.target` marks each
user's held-out items (a held-out item already in the user's history is ignored: it is masked
out of the ranking, so it could never be found). Ranks are 1-based and ties count against the
held-out item (a constant scorer earns nothing); a NaN score ranks last.

HR@K: the share of users with a held-out item in their top K; recall@K: the share of a user's
held-out items in the top K (averaged over users); NDCG@K with binary relevance, normalized by
the ideal ranking of min(K, held-out) items; MRR: the mean reciprocal rank of the first
held-out item (over the full ranking). Averages are over users with a held-out item.

Also: sampled metrics (each held-out item ranked against `n` sampled items the user never had:
only for comparison with papers that report them), catalogue coverage@K, the share of
recommended slots taken by the most popular items, and user-history-length buckets.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "masked", "top_k", "target_ranks", "ranks_of_targets", "metrics_from_ranks",
    "ranking_metrics", "metric_at", "metric_curve", "sample_negatives", "sampled_ranks",
    "sampled_metrics", "coverage", "popularity_share", "top_popular", "history_lengths",
    "history_bucket", "bucket_of", "HISTORY_BUCKETS", "KS",
]  # fmt: skip

KS = (5, 10, 20)
HISTORY_BUCKETS = ((1, 2), (3, 5), (6, 10), (11, 20), (21, None))
_BLOCK_CELLS = 4_000_000  # rows compared at once: a few MB of booleans


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


def _entries(targets) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) of every held-out item not already in the user's history, by row."""
    t = sp.csr_matrix(targets.target)
    t.sum_duplicates()
    t.eliminate_zeros()
    hist = sp.csr_matrix(targets.history.matrix)
    rows = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
    cols = t.indices.astype(np.int64)
    if hist.nnz:
        seen = np.asarray(hist[rows, cols]).ravel() != 0
        rows, cols = rows[~seen], cols[~seen]
    return rows, cols


def target_ranks(scores: np.ndarray, targets) -> tuple[np.ndarray, np.ndarray]:
    """(rows, ranks): for every held-out item (sorted by user row), its user's row and its
    1-based rank among the items the user did not have (no copy of `scores` is made)."""
    s = np.asarray(scores)
    rows, cols = _entries(targets)
    value = s[rows, cols]
    ranks = np.empty(len(rows), dtype=np.int64)
    step = max(1, _BLOCK_CELLS // max(1, s.shape[1]))
    for a in range(0, len(rows), step):
        r, v = rows[a : a + step], value[a : a + step]
        block = s[r[0] : r[-1] + 1]  # a view: rows are sorted
        if len(block) != len(r) or np.any(np.diff(r) != 1):  # not one row per entry
            block = block[r - r[0]]
        ranks[a : a + step] = np.count_nonzero(block >= v[:, None], axis=1)
    ranks -= _seen_above(s, targets, rows, value)
    ranks[np.isnan(value)] = s.shape[1]
    return rows, ranks


def _seen_above(s: np.ndarray, targets, rows: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per held-out entry: the user's own items scored at least as high (masked out)."""
    hist = sp.csr_matrix(targets.history.matrix)
    if not hist.nnz or not len(rows):
        return np.zeros(len(rows), dtype=np.int64)
    start, length = hist.indptr[rows], np.diff(hist.indptr)[rows]
    entry = np.repeat(np.arange(len(rows)), length)
    offset = np.arange(len(entry)) - np.repeat(np.cumsum(length) - length, length)
    items = hist.indices[np.repeat(start, length) + offset]
    above = s[rows[entry], items] >= value[entry]
    return np.bincount(entry, weights=above, minlength=len(rows)).astype(np.int64)


def ranks_of_targets(scores: np.ndarray, targets) -> list[np.ndarray]:
    """Per user, the 1-based ranks of its held-out items in its masked full ranking."""
    rows, ranks = target_ranks(scores, targets)
    bounds = np.searchsorted(rows, np.arange(len(targets) + 1))
    return [ranks[bounds[u] : bounds[u + 1]] for u in range(len(targets))]


def _per_user(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(rows, weights=values, minlength=n)


def metrics_from_ranks(rows: np.ndarray, ranks: np.ndarray, ks=KS,
                       users: np.ndarray | None = None) -> dict[str, float]:  # fmt: skip
    """HR@K, NDCG@K, recall@K and MRR from held-out ranks (`rows`: their user rows), averaged
    over the users with a held-out item (or over `users`, a subset of rows, when given)."""
    if not len(rows):
        return {}
    n = int(rows.max()) + 1
    count = np.bincount(rows, minlength=n)
    have = np.flatnonzero(count) if users is None else np.intersect1d(users, np.flatnonzero(count))
    if not len(have):
        return {}
    out: dict[str, float] = {}
    gain = 1.0 / np.log2(ranks + 1.0)
    ideal_cum = np.cumsum(1.0 / np.log2(np.arange(2, max(ks) + 2)))
    for k in ks:
        hit = ranks <= k
        hits = _per_user(rows, hit, n)[have]
        dcg = _per_user(rows, np.where(hit, gain, 0.0), n)[have]
        ideal = ideal_cum[np.minimum(count[have], k) - 1]
        out[f"hr@{k}"] = float(np.mean(hits > 0))
        out[f"ndcg@{k}"] = float(np.mean(dcg / ideal))
        out[f"recall@{k}"] = float(np.mean(hits / count[have]))
    best = np.full(n, np.inf)
    np.minimum.at(best, rows, ranks)
    out["mrr"] = float(np.mean(1.0 / best[have]))
    return out


def ranking_metrics(scores: np.ndarray, targets, ks=KS) -> dict[str, float]:
    """HR@K, NDCG@K, recall@K for each K, and MRR, averaged over users with a held-out item."""
    return metrics_from_ranks(*target_ranks(scores, targets), ks=ks)


def metric_at(name: str, scores: np.ndarray, targets) -> float:
    """One metric ("ndcg@10", "hr@5", "recall@20", "mrr") of `scores`."""
    k = int(name.split("@")[1]) if "@" in name else 20
    return ranking_metrics(scores, targets, ks=(k,)).get(name, float("nan"))


def metric_curve(rows: np.ndarray, ranks: np.ndarray, k_max: int = 20) -> dict[str, list]:
    """HR, NDCG and recall at K = 1..k_max (for the report's metric-vs-K plot)."""
    m = metrics_from_ranks(rows, ranks, ks=tuple(range(1, k_max + 1)))
    return {name: [m.get(f"{name}@{k}") for k in range(1, k_max + 1)]
            for name in ("hr", "ndcg", "recall")}  # fmt: skip


# --------------------------------------------------------------------------------------------
# sampled metrics: for comparison with papers only


def sample_negatives(targets, n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For every held-out entry (the order of `target_ranks`): `n` items its user never had
    (neither in the history nor held out), sampled without replacement (seeded); (entries, n)
    item codes, -1 padding when the user has fewer than `n` such items."""
    rows, _ = _entries(targets)
    pos = sp.csr_matrix(targets.history.matrix) + sp.csr_matrix(targets.target)
    pos = sp.csr_matrix(pos)
    n_items = pos.shape[1]
    rng = np.random.default_rng(seed)
    out = np.full((len(rows), n), -1, dtype=np.int64)
    for u in np.unique(rows):
        have = np.unique(pos.indices[pos.indptr[u] : pos.indptr[u + 1]])
        free = n_items - len(have)
        where = np.flatnonzero(rows == u)
        m = min(n, free)
        for e in where:
            j = rng.choice(free, m, replace=False)
            # the j-th item not in `have`: shift past the positives at or below it
            out[e, :m] = j + np.searchsorted(have - np.arange(len(have)), j, side="right")
    return rows, out


def sampled_ranks(scores: np.ndarray, targets, negatives: np.ndarray) -> tuple:
    """(rows, ranks) of each held-out item among itself and its sampled negatives."""
    s = np.asarray(scores)
    rows, cols = _entries(targets)
    value = s[rows, cols]
    neg = s[rows[:, None], np.maximum(negatives, 0)]
    ranks = 1 + np.count_nonzero((neg >= value[:, None]) & (negatives >= 0), axis=1)
    ranks[np.isnan(value)] = negatives.shape[1] + 1
    return rows, ranks


def sampled_metrics(rows: np.ndarray, ranks: np.ndarray, ks=KS) -> dict[str, float]:
    """HR@K, NDCG@K and MRR of sampled ranks: each held-out item is its own case (one relevant
    item among itself and its negatives), averaged per user, then over users."""
    if not len(rows):
        return {}
    n = int(rows.max()) + 1
    count = np.bincount(rows, minlength=n)
    have = np.flatnonzero(count)

    def mean(values: np.ndarray) -> float:
        return float(np.mean(_per_user(rows, values, n)[have] / count[have]))

    out: dict[str, float] = {}
    for k in ks:
        hit = ranks <= k
        out[f"hr@{k}"] = mean(hit)
        out[f"ndcg@{k}"] = mean(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0))
    out["mrr"] = mean(1.0 / ranks)
    return out


# --------------------------------------------------------------------------------------------
# what gets recommended: catalogue coverage, popularity bias


def coverage(top: np.ndarray, n_items: int) -> float:
    """The share of the catalogue that appears in at least one user's list (`top`: (n, K)
    item codes, -1 for an empty slot)."""
    shown = np.unique(top[top >= 0])
    return float(len(shown) / n_items) if n_items else float("nan")


def top_popular(popularity: np.ndarray, share: float = 0.01) -> np.ndarray:
    """Codes of the `share` most popular items (at least one), most popular first."""
    n = max(1, int(np.ceil(share * len(popularity))))
    return np.argsort(-np.asarray(popularity), kind="stable")[:n]


def popularity_share(top: np.ndarray, popular: np.ndarray) -> float:
    """The share of recommended slots (`top`: (n, K), -1 empty) taken by `popular` items."""
    slots = top[top >= 0]
    return float(np.isin(slots, popular).mean()) if len(slots) else float("nan")


# --------------------------------------------------------------------------------------------
# results by user-history length


def history_lengths(histories) -> np.ndarray:
    """Events each user had before the held-out ones (sequence length; the matrix's distinct
    items when a Histories has no sequences)."""
    if histories.sequences is not None and len(histories.sequences) == len(histories):
        return np.array([len(s) for s in histories.sequences], dtype=np.int64)
    return np.diff(sp.csr_matrix(histories.matrix).indptr).astype(np.int64)


def history_bucket(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


def bucket_of(lengths: np.ndarray) -> np.ndarray:
    """Index into HISTORY_BUCKETS of each length (0 and below land in the first bucket)."""
    edges = np.array([hi for _, hi in HISTORY_BUCKETS[:-1]])
    return np.searchsorted(edges, lengths, side="left")
