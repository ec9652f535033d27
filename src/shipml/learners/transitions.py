"""Item-to-item transitions: "what comes next after these". T[i, j] counts how often item j
follows item i within `window` events of the same user's time-ordered history, each pair
weighted 1 / gap (the sequential rules of Ludewig & Jannach, "Evaluation of session-based
recommendation algorithms", 2018, in item form). `backward` weighs the reverse pairs too: 1.0
makes T symmetric (logs where the events of one moment come in no reliable order, as
MovieLens' ratings given within the same seconds), 0.0 keeps directed rules (a strictly ordered
log: the validation users choose). Each count is divided by row_i^0.75 col_j^0.25 (between
P(j | i) and a cosine: a popular j is damped a little) and each item keeps its `neighbours`
strongest followers. A user's scores: their recency-weighted history (learners/recency.py, tau
chosen on the validation users) times T, so the latest items weigh most.

Measured on MovieLens-100k, leave-last-out by time (validation / test NDCG@10): 0.129 / 0.125
at window 10, both directions, tau 3, against EASE's 0.087 / 0.071 (/work/notes/REC.md).

T is stored as a sparse matrix (three .npy arrays), scored with SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shipml.learners.base import Budget, Candidate, Config, RankFolds
from shipml.learners.itemknn import read_csr, write_csr
from shipml.learners.recency import decayed_candidate, recency_weighted, tau_of

__all__ = ["TransitionsFitted", "TRANSITIONS", "transition_matrix"]

_COLUMN_POWER = 0.25  # of the normalisation row^(1 - p) col^p: 0 is P(j | i), 0.5 a cosine


def transition_matrix(data, window: int, backward: float, neighbours: int) -> sp.csr_matrix:
    """(n_items, n_items) float32 CSR T of the Interactions `data` (see the module docstring);
    row i: the items that follow i, at most `neighbours` of them; the diagonal is zero."""
    n = data.n_items
    order = np.argsort(data.user, kind="stable")  # events are in time order within a user
    user, item = data.user[order], data.item[order].astype(np.int32)
    counts = sp.csr_matrix((n, n), dtype=np.float32)
    for gap in range(1, max(1, int(window)) + 1):
        same = user[gap:] == user[:-gap]
        before, after = item[:-gap][same], item[gap:][same]
        if not len(before):
            break
        w = np.full(len(before), 1.0 / gap, dtype=np.float32)
        counts = counts + _pairs(before, after, w, n)
        if backward > 0:
            counts = counts + _pairs(after, before, w * np.float32(backward), n)
    counts.setdiag(0.0)
    counts.eliminate_zeros()
    return _strongest(_normalised(counts), neighbours)


def _pairs(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, n: int) -> sp.csr_matrix:
    m = sp.csr_matrix((w, (rows, cols)), shape=(n, n), dtype=np.float32)
    m.sum_duplicates()
    return m


def _normalised(counts: sp.csr_matrix) -> sp.csr_matrix:
    row = np.asarray(counts.sum(axis=1)).ravel()
    col = np.asarray(counts.sum(axis=0)).ravel()
    row_scale = np.where(row > 0, row, 1.0) ** -(1.0 - _COLUMN_POWER)
    col_scale = np.where(col > 0, col, 1.0) ** -_COLUMN_POWER
    out = sp.diags(row_scale.astype(np.float32)) @ counts @ sp.diags(col_scale.astype(np.float32))
    return sp.csr_matrix(out, dtype=np.float32)


def _strongest(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's `k` largest entries (ties: the lower column)."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data, rows))  # by row, then strongest first
    rank = np.arange(len(order)) - m.indptr[rows[order]]
    keep = np.sort(order[rank < k])
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


@dataclass
class TransitionsFitted:
    matrix: sp.csr_matrix  # (n_items, n_items) float32: T[i, j], j follows i
    tau: float | None = None  # the query's recency decay in events (None: none)
    kind: str = "transitions"
    _by_column: sp.csr_matrix | None = field(default=None, init=False, repr=False, compare=False)

    def scores(self, histories) -> np.ndarray:
        return self.scores_of(recency_weighted(histories, self.tau))

    def scores_of(self, query: sp.csr_matrix) -> np.ndarray:
        return np.asarray((query @ self.matrix).toarray(), dtype=np.float32)

    def similar(self, items: np.ndarray) -> np.ndarray:
        """The items that follow each item or that it follows (the larger of T[i, j], T[j, i])."""
        items = np.asarray(items, dtype=np.int64)
        if self._by_column is None:
            self._by_column = self.matrix.T.tocsr()
        out = np.maximum(self.matrix[items].toarray(), self._by_column[items].toarray())
        out[np.arange(len(items)), items] = max(1.0, float(out.max(initial=0.0)))
        return out.astype(np.float32)

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        meta, files = write_csr(f"{prefix}_transitions", self.matrix)
        return {"kind": self.kind, "matrix": meta, "tau": self.tau}, files

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> TransitionsFitted:
        return cls(read_csr(meta["matrix"], reader), tau_of(meta.get("tau")))


def _fitted(data, params: dict) -> TransitionsFitted:
    T = transition_matrix(data, params["window"], params["backward"], params["neighbours"])
    return TransitionsFitted(T, tau_of(params.get("tau")))


@dataclass(frozen=True)
class TransitionsFamily:
    name: str = "transitions"
    kind: str = "transitions"
    keep: int = 2
    floor: bool = False
    baseline: bool = False
    searched: bool = False  # two fixed configurations; the decay is chosen after each fit
    refits: bool = True
    stops_at_deadline: bool = False  # sparse sums over the log: seconds on a shop's log

    def available(self) -> str | None:
        return None

    def configs(self, data) -> list[Config]:
        both = {"window": 10, "backward": 1.0, "neighbours": 200}
        return [Config("transitions(both ways)", both),
                Config("transitions(forward)", {**both, "backward": 0.0})]  # fmt: skip

    def suggest(self, trial, task, transforms):
        return None

    def fit(self, folds: RankFolds, config: Config, budget: Budget, trial=None) -> Candidate:
        """T for the configuration, then the query's decay chosen on validation."""
        params = _params(config.params)
        fitted = _fitted(folds.data, params)
        return decayed_candidate(folds, self.name, params, fitted)

    def refit(self, cand: Candidate, data, seed: int, budget: Budget) -> Candidate:
        cand.fitted = _fitted(data, cand.params)
        return cand

    def load(self, meta: dict, reader, task: str) -> TransitionsFitted:
        return TransitionsFitted.load(meta, reader, task)


def _params(params: dict) -> dict:
    return {"window": int(params["window"]), "backward": float(params["backward"]),
            "neighbours": int(params["neighbours"])}  # fmt: skip


TRANSITIONS = TransitionsFamily()
