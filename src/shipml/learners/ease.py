"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): an item x item
weight matrix in closed form, B = I - P / diag(P) with P = (X^T X + lambda I)^-1 and diag(B) = 0;
a user's scores are `history @ B`. One dense Cholesky inverse of an items x items matrix: fast
up to a few thousand items, minutes at ten thousand (about n^3 floating-point operations and
8 n^2 bytes twice over), so catalogues above MAX_ITEMS are left to the other families.

A user's history is the query: recency-weighted (learners/recency.py, tau chosen on the
validation users after the fit; None: no decay).

B is stored as one float32 .npy, scored with NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shipml.errors import DataError
from shipml.learners.base import Budget, Candidate, Config, RankFolds
from shipml.learners.recency import decayed_candidate, recency_weighted, tau_of

__all__ = ["EaseFitted", "EASE", "ease_weights", "default_strength", "MAX_ITEMS"]

#: the largest catalogue EASE is tried on (a 10,000-item inverse: ~1e12 flops, 800 MB)
MAX_ITEMS = 10_000
_BLOCK = 1024


def gram(X: sp.spmatrix) -> np.ndarray:
    """X^T X as a dense float64 (n_items, n_items) array."""
    X = sp.csr_matrix(X, dtype=np.float64)
    return np.asarray((X.T @ X).toarray(), dtype=np.float64)


def default_strength(X: sp.spmatrix) -> float:
    """A lambda scaled to the data: a few times the mean diagonal of X^T X (an item's summed
    squared confidence), within [1, 2000] (Steck used 500 on the 20M-event MovieLens)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    mean_diag = float(X.multiply(X).sum()) / max(X.shape[1], 1)
    return float(np.clip(2.0 * mean_diag, 1.0, 2000.0))


def ease_weights(X: sp.spmatrix, strength: float) -> np.ndarray:
    """B (float32, (n_items, n_items)) for the user x item matrix X and lambda `strength`."""
    from scipy.linalg import lapack

    G = gram(X)
    n = G.shape[0]
    G.flat[:: n + 1] += strength
    c, info = lapack.dpotrf(G, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        P, info = lapack.dpotri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise DataError(
            f"EASE: X^T X + {strength} I is not positive definite (LAPACK {info}); "
            "the confidence weights must be finite"
        )
    for start in range(0, n, _BLOCK):  # dpotri fills the upper triangle: mirror it in blocks
        stop = min(n, start + _BLOCK)
        P[start:stop, :start] = P[:start, start:stop].T
        diag = np.triu(P[start:stop, start:stop])
        P[start:stop, start:stop] = diag + np.triu(diag, 1).T
    P /= -np.diag(P)[None, :].copy()
    P.flat[:: n + 1] = 0.0
    # LAPACK's dpotri leaves P in Fortran order: `history @ B` would copy B on every request
    return np.ascontiguousarray(P, dtype=np.float32)


@dataclass
class EaseFitted:
    weights: np.ndarray  # (n_items, n_items) float32 B, zero diagonal
    strength: float = 0.0
    tau: float | None = None  # the query's recency decay in events (None: none)
    kind: str = "ease"

    def scores(self, histories) -> np.ndarray:
        return self.scores_of(recency_weighted(histories, self.tau))

    def scores_of(self, query: sp.csr_matrix) -> np.ndarray:
        return np.asarray(query @ self.weights, dtype=np.float32)

    def similar(self, items: np.ndarray) -> np.ndarray:
        """B's columns for the items (how much each item predicts them), symmetrized."""
        items = np.asarray(items, dtype=np.int64)
        out = (self.weights[items] + self.weights[:, items].T) / 2.0
        out[np.arange(len(items)), items] = max(1.0, float(out.max(initial=0.0)))
        return out.astype(np.float32)

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        name = f"{prefix}_ease.npy"
        meta = {"kind": self.kind, "strength": self.strength, "tau": self.tau, "weights": name}
        return meta, {name: self.weights}

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> EaseFitted:
        weights = np.ascontiguousarray(reader.read_npy(meta["weights"]), dtype=np.float32)
        return cls(weights, float(meta.get("strength", 0.0)), tau_of(meta.get("tau")))


@dataclass(frozen=True)
class EaseFamily:
    name: str = "ease"
    kind: str = "ease"
    keep: int = 2
    floor: bool = False
    baseline: bool = False
    searched: bool = False  # one parameter: a grid around the data's default (`configs`)
    refits: bool = True
    stops_at_deadline: bool = False  # one inverse, not cut

    def available(self) -> str | None:
        return None

    def configs(self, data) -> list[Config]:
        """lambda at the data's default, then a quarter, four times and a sixteenth of it (log
        scale); none on a catalogue above MAX_ITEMS (the dense inverse would not fit)."""
        if data.n_items > MAX_ITEMS or data.n_items < 2:
            return []
        base = default_strength(data.matrix())
        grid = [(1.0, ""), (0.25, "/4"), (4.0, "x4"), (1 / 16, "/16")]
        return [Config(f"ease(lambda{tag or '=' + format(base, '.3g')})",
                       {"strength": base * f}) for f, tag in grid]  # fmt: skip

    def suggest(self, trial, task, transforms):
        return None

    def fit(self, folds: RankFolds, config: Config, budget: Budget, trial=None) -> Candidate:
        """B for the configuration's lambda, then the query's decay chosen on validation."""
        strength = float(config.params["strength"])
        fitted = EaseFitted(ease_weights(folds.data.matrix(), strength), strength)
        return decayed_candidate(folds, self.name, {"strength": strength}, fitted)

    def refit(self, cand: Candidate, data, seed: int, budget: Budget) -> Candidate:
        strength, tau = float(cand.params["strength"]), tau_of(cand.params.get("tau"))
        cand.fitted = EaseFitted(ease_weights(data.matrix(), strength), strength, tau)
        return cand

    def load(self, meta: dict, reader, task: str) -> EaseFitted:
        return EaseFitted.load(meta, reader, task)


EASE = EaseFamily()
