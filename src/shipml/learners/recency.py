"""Recency-weighted query histories: when a user is scored, each item of their history counts
exp(-r / tau), r = how many events ago it was last seen (0: the latest event). In logs where the
next event is close to the last ones (MovieLens: ratings given in sessions; shops: a browsing
session) the latest items say more about the next one than the whole history does.

Only the *query* is weighted: the item-item models (EASE's B, item-kNN's S) are fitted as
before, and tau is chosen on the validation users from `TAUS` after the fit (one scoring per
value, no refit); None is no decay (every item its confidence, as the plain model).

Measured on MovieLens-100k, leave-last-out by time, EASE at lambda = 116 (validation / test
NDCG@10): no decay 0.087 / 0.071, tau = 10 0.118 / 0.102 (/work/notes/REC.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["TAUS", "recency_weighted", "best_tau", "decayed_candidate", "tau_of"]

#: the decays tried, in events (None: no decay, the plain model; tried first, kept on ties)
TAUS: tuple[float | None, ...] = (None, 30.0, 10.0, 3.0, 1.0)
_CUTOFF = 12.0  # events older than tau * _CUTOFF weigh < 1e-5: dropped from the query


def tau_of(value) -> float | None:
    """A decay read from params or model.json (None, or absent in a model stored before it
    existed: no decay)."""
    return None if value is None else float(value)


def recency_weighted(histories, tau: float | None) -> sp.csr_matrix:
    """The histories' (n, n_items) confidence matrix with entry (u, i) scaled by
    exp(-r / tau), r: the events since user u last had item i (None, or histories without
    their sequences: the matrix as it is)."""
    m = sp.csr_matrix(histories.matrix, dtype=np.float32)
    if tau is None or histories.sequences is None:
        return m
    decay = _decay_matrix(histories.sequences, m.shape, float(tau))
    return sp.csr_matrix(m.multiply(decay), dtype=np.float32)


def _decay_matrix(sequences, shape: tuple[int, int], tau: float) -> sp.csr_matrix:
    """(n, n_items) CSR of exp(-r / tau) at each item's most recent position in each
    sequence (r counted back from the sequence's end)."""
    horizon = max(1, int(np.ceil(tau * _CUTOFF)))
    rows, cols, vals = [], [], []
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq[-horizon:], dtype=np.int64)
        if not len(tail):
            continue
        back = np.arange(len(tail) - 1, -1, -1, dtype=np.float32)  # 0 at the latest event
        rows.append(np.full(len(tail), row, dtype=np.int64))
        cols.append(tail)
        vals.append(np.exp(-back / tau))
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    latest = np.lexsort((-v, c, r))  # per (row, item): the largest weight (latest event) first
    r, c, v = r[latest], c[latest], v[latest]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return sp.csr_matrix((v[first], (r[first], c[first])), shape=shape, dtype=np.float32)


def best_tau(folds, scorer: Callable[[sp.csr_matrix], np.ndarray],
             taus=TAUS) -> tuple[float | None, np.ndarray]:  # fmt: skip
    """(tau, scores): the decay in `taus` whose query matrix, scored by `scorer`, ranks the
    validation users (`folds.targets`) best by the search's metric; the first on ties."""
    from shipml.learners.base import standardize_rows
    from shipml.scoring import better, score

    history = folds.targets.history
    best, best_scores, best_value = None, None, None
    for tau in taus:
        scores = scorer(recency_weighted(history, tau))
        value = score(folds.metric, "recommend", folds.targets, standardize_rows(scores))
        beats = best_value is None or not np.isfinite(best_value)
        if beats or (np.isfinite(value) and better(folds.metric, value, best_value)):
            best, best_scores, best_value = tau, scores, value
    return best, best_scores


def decayed_candidate(folds, name: str, params: dict, fitted):
    """The Candidate of a fitted item-item model whose query decay (`fitted.tau`) is chosen
    on the validation users; the decay joins the candidate's params (what a refit reads)."""
    fitted.tau, scores = best_tau(folds, fitted.scores_of)
    return folds.candidate(name, {**params, "tau": fitted.tau}, scores, fitted)
