"""Ensemble selection (Caruana et al., 2004): greedily add, with replacement, the candidate that
most improves the validation score of the average; keep it only if it beats the best single one.

Members are averaged in raw-score space (log-odds / class scores / transformed target), so
per-feature contributions of the ensemble are the same weighted average, exactly. Only
candidates with the same target transform as the best can join.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Candidate
from shipml.scoring import better, score
from shipml.search import SearchResult

__all__ = ["Ensemble", "select_ensemble"]

_ROUNDS = 25


@dataclass
class Ensemble:
    members: list[Candidate]
    weights: list[float]
    score: float
    single_best_score: float
    transform: str

    def raw_oof(self) -> np.ndarray:
        return sum(w * m.oof for m, w in zip(self.members, self.weights))


def select_ensemble(result: SearchResult, y_scored: np.ndarray, task: str) -> Ensemble:
    """Weights over `result.candidates` chosen on their out-of-fold scores (`y_scored` = the
    encoded targets of the scored rows)."""
    metric = result.metric
    best = result.best
    # Models the deadline cut short are not what their score says they are: leave them out,
    # unless one is the best there is.
    pool = [best] + [
        c for c in result.candidates[1:] if c.transform == best.transform and c.complete
    ]
    counts = np.zeros(len(pool))
    counts[0] = 1
    total = pool[0].oof.copy()
    for step in range(2, _ROUNDS + 1):
        trial_scores = [
            score(metric, task, y_scored, (total + c.oof) / step, best.transform) for c in pool
        ]
        pick = int(np.argmax(trial_scores) if better(metric, 1, 0) else np.argmin(trial_scores))
        counts[pick] += 1
        total += pool[pick].oof
    weights = counts / counts.sum()
    ens_score = score(
        metric, task, y_scored, sum(w * c.oof for c, w in zip(pool, weights)), best.transform
    )
    if not better(metric, ens_score, best.score) or np.count_nonzero(weights) == 1:
        return Ensemble([best], [1.0], best.score, best.score, best.transform)
    keep = weights > 0
    members = [c for c, k in zip(pool, keep) if k]
    return Ensemble(
        members, [float(w) for w in weights[keep]], ens_score, best.score, best.transform
    )
