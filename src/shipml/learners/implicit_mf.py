"""Matrix factorization of the user x item confidence matrix with the `implicit` library
(the `recommend` extra): ALS, weighted least squares on confidence 1 + alpha * r (Hu, Koren &
Volinsky 2008), and BPR, a pairwise ranking loss by SGD (Rendle et al. 2009).

Training runs epoch by epoch and stops at the budget's deadline (a callback of implicit's fit).
What is stored is data only (item and user factors as .npy); the stored model scores with NumPy
and does not need `implicit`: ALS solves each user's factors from the history it is given (the
closed-form least squares of one ALS step on the item factors, implicit's `recalculate_user`),
so a new visitor's basket scores as well as a known user; BPR uses a known user's trained
factors and, for a new visitor, the mean of its items' factors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shipml.learners.base import Budget, Candidate, Config, RankFolds

__all__ = ["FactorsFitted", "ALS", "BPR", "Diverged", "fold_in", "mean_factors", "unit_rows"]

log = logging.getLogger(__name__)

_THREADS = {"als": 2, "bpr": 1}  # BPR's SGD is Hogwild! over threads: one keeps it seeded


class _Deadline(Exception):
    """Raised from implicit's epoch callback when the budget's deadline has passed."""


class Diverged(Exception):
    """The factors came out NaN or infinite (BPR's SGD at a learning rate too large for the
    log; implicit's ModelFitError): a configuration that failed, not a failed training."""


def fold_in(item_factors: np.ndarray, histories: sp.csr_matrix, regularization: float,
            alpha: float, gram: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """User factors from their histories, given fixed item factors Y: per user, the ALS
    solution x = (Y^T Y + Y^T (C - I) Y + reg I)^-1 Y^T C p with confidence C = alpha * r on
    the user's items (1 elsewhere) and preference p = 1 on them (implicit's formulation).
    `gram`: Y^T Y + reg I when the caller keeps it (a served model: once, not per request)."""
    h = sp.csr_matrix(histories, dtype=np.float64)
    base = regularized_gram(item_factors, regularization) if gram is None else gram
    out = np.zeros((h.shape[0], item_factors.shape[1]), dtype=np.float64)
    for u in range(h.shape[0]):
        lo, hi = h.indptr[u], h.indptr[u + 1]
        if lo == hi:
            continue
        # only the user's rows in float64: a served request must not copy the catalogue
        Yh = np.asarray(item_factors[h.indices[lo:hi]], dtype=np.float64)
        c = alpha * h.data[lo:hi]
        A = base + (Yh.T * (c - 1.0)) @ Yh
        out[u] = np.linalg.solve(A, Yh.T @ c)
    return out.astype(np.float32)


def regularized_gram(item_factors: np.ndarray, regularization: float) -> np.ndarray:
    Y = np.asarray(item_factors, dtype=np.float64)
    return Y.T @ Y + regularization * np.eye(Y.shape[1])


def mean_factors(item_factors: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
    """Each user's confidence-weighted mean of its items' factors (BPR's fold-in: as good as
    the trained user factors on the test log; a least-squares fold-in on BPR's factors is not)."""
    h = sp.csr_matrix(histories, dtype=np.float32)
    total = np.asarray(h.sum(axis=1)).ravel()
    mean = (h @ item_factors) / np.where(total > 0, total, 1.0)[:, None]
    return np.asarray(mean, dtype=np.float32)


def unit_rows(factors: np.ndarray) -> np.ndarray:
    """The rows scaled to unit length (zero rows stay zero), float32."""
    norms = np.linalg.norm(factors, axis=1)
    return (factors / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)


@dataclass
class FactorsFitted:
    """ALS (`kind` "als": users always folded in) or BPR ("bpr": the last item column is the
    item bias, the users' last column 1; known users use their trained factors)."""

    kind: str
    item_factors: np.ndarray  # (n_items, f) float32
    user_factors: np.ndarray | None  # (n_users, f) float32 for BPR (zero rows: not trained)
    regularization: float
    alpha: float = 1.0
    epochs: int = 0  # the epochs trained (fewer than asked when the deadline stopped them)
    _gram: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _latent: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _unit: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def latent(self) -> np.ndarray:
        """The item factors without BPR's bias column (contiguous, kept once)."""
        if self._latent is None:
            y = self.item_factors if self.kind == "als" else self.item_factors[:, :-1]
            self._latent = np.ascontiguousarray(y)
        return self._latent

    def user_vectors(self, histories) -> np.ndarray:
        if self.kind == "als":
            if self._gram is None:
                self._gram = regularized_gram(self.item_factors, self.regularization)
            return fold_in(self.item_factors, histories.matrix, self.regularization, self.alpha,
                           self._gram)  # fmt: skip
        out = np.column_stack([mean_factors(self.latent, histories.matrix),
                               np.ones(len(histories), np.float32)])  # fmt: skip
        users = np.asarray(histories.users, dtype=np.int64)
        n = 0 if self.user_factors is None else len(self.user_factors)
        known = np.flatnonzero((users >= 0) & (users < n))
        if n:
            known = known[np.any(self.user_factors[users[known]] != 0, axis=1)]
            out[known] = self.user_factors[users[known]]
        return out

    def scores(self, histories) -> np.ndarray:
        return (self.user_vectors(histories) @ self.item_factors.T).astype(np.float32)

    def similar(self, items: np.ndarray) -> np.ndarray:
        if self._unit is None:
            self._unit = unit_rows(self.latent)
        return self._unit[np.asarray(items, dtype=np.int64)] @ self._unit.T

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        items = f"{prefix}_{self.kind}_items.npy"
        meta = {"kind": self.kind, "item_factors": items, "regularization": self.regularization,
                "alpha": self.alpha, "epochs": self.epochs}  # fmt: skip
        files = {items: self.item_factors}
        if self.user_factors is not None:
            meta["user_factors"] = f"{prefix}_{self.kind}_users.npy"
            files[meta["user_factors"]] = self.user_factors
        return meta, files

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> FactorsFitted:
        items = reader.read_npy(meta["item_factors"]).astype(np.float32, copy=False)
        users = None
        if meta.get("user_factors"):
            users = reader.read_npy(meta["user_factors"]).astype(np.float32, copy=False)
        return cls(meta["kind"], items, users, float(meta["regularization"]),
                   float(meta.get("alpha", 1.0)), int(meta.get("epochs", 0)))  # fmt: skip


def _implicit_missing() -> str | None:
    try:
        import implicit  # noqa: F401
    except ImportError:
        return "the `implicit` package is not installed (pip install 'shipml[recommend]')"
    return None


def train_factors(kind: str, data, params: dict, seed: int,
                  budget: Budget) -> tuple[FactorsFitted, bool]:  # fmt: skip
    """(the fitted factors, whether every epoch ran) of ALS or BPR on `data`'s events,
    stopping after the epoch in which the budget's deadline passes."""
    import implicit.cpu.als  # noqa: F401  (loaded before the limit: its BLAS is limited too)
    from threadpoolctl import threadpool_limits

    X = data.matrix()
    done = [0]

    def each_epoch(epoch, *_):
        done[0] = epoch + 1
        if budget.expired and done[0] < params["iterations"]:
            raise _Deadline

    from implicit.recommender_base import ModelFitError

    with threadpool_limits(limits=1, user_api="blas"):
        model = _model(kind, params, seed)
        try:
            model.fit(X, show_progress=False, callback=each_epoch)
        except _Deadline:
            pass
        except ModelFitError as exc:
            raise Diverged(f"{kind} {params}: {exc}") from exc
    items = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    if not np.isfinite(items).all():  # a deadline stops it before implicit's own check
        raise Diverged(f"{kind} {params}: non-finite item factors")
    users = None
    if kind == "bpr":
        users = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        users[np.diff(X.indptr) == 0] = 0.0  # never trained: folded in when they come
    fitted = FactorsFitted(kind, items, users, float(params["regularization"]),
                           float(params.get("alpha", 1.0)), done[0])  # fmt: skip
    return fitted, done[0] >= params["iterations"]


def _model(kind: str, params: dict, seed: int):
    if kind == "als":
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=params["factors"], regularization=params["regularization"],
            alpha=params["alpha"], iterations=params["iterations"], dtype=np.float32,
            num_threads=_THREADS[kind], random_state=seed)  # fmt: skip
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(
        factors=params["factors"], learning_rate=params["learning_rate"],
        regularization=params["regularization"], iterations=params["iterations"],
        dtype=np.float32, num_threads=_THREADS[kind], random_state=seed)  # fmt: skip


_KEYS = {
    "als": {"factors": int, "regularization": float, "alpha": float, "iterations": int},
    "bpr": {"factors": int, "learning_rate": float, "regularization": float, "iterations": int},
}


@dataclass(frozen=True)
class FactorsFamily:
    name: str
    kind: str
    keep: int = 2
    floor: bool = False
    baseline: bool = False
    searched: bool = True
    refits: bool = True
    stops_at_deadline: bool = True

    def available(self) -> str | None:
        return _implicit_missing()

    def configs(self, data) -> list[Config]:
        if self.kind == "als":
            return [Config("als(64 factors)", {"factors": 64, "regularization": 10.0,
                                                "alpha": 1.0, "iterations": 15})]  # fmt: skip
        params = {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100}
        return [Config("bpr(64 factors)", params)]

    def suggest(self, trial, task, transforms) -> dict:
        factors = trial.suggest_int("factors", 16, 256, log=True)
        if self.kind == "als":
            return {"factors": factors,
                    "regularization": trial.suggest_float("regularization", 1e-3, 10.0, log=True),
                    "alpha": trial.suggest_float("alpha", 0.5, 100.0, log=True),
                    "iterations": trial.suggest_int("iterations", 5, 40, log=True)}  # fmt: skip
        return {"factors": factors,
                "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
                "regularization": trial.suggest_float("regularization", 1e-4, 0.3, log=True),
                "iterations": trial.suggest_int("iterations", 20, 300, log=True)}  # fmt: skip

    def fit(self, folds: RankFolds, config: Config, budget: Budget, trial=None) -> Candidate:
        params = {k: cast(config.params[k]) for k, cast in _KEYS[self.kind].items()}
        try:
            fitted, complete = train_factors(self.kind, folds.data, params, folds.seed, budget)
        except Diverged as exc:  # scored worst and left out of the blend (not complete)
            log.info("%s", exc)
            fitted = self._zeros(folds.data, params)
            scores = np.zeros((len(folds.targets), folds.data.n_items), np.float32)
            return folds.candidate(self.name, params, scores, fitted, complete=False,
                                   scored=False)  # fmt: skip
        scores = fitted.scores(folds.targets.history)
        return folds.candidate(self.name, params, scores, fitted, complete=complete)

    def refit(self, cand: Candidate, data, seed: int, budget: Budget) -> Candidate:
        """Retrain on `data`; when that diverges, the validation run's factors are kept."""
        try:
            cand.fitted, complete = train_factors(self.kind, data, cand.params, seed, budget)
        except Diverged as exc:
            log.info("%s (refit): the validation run's factors kept", exc)
            complete = False
        cand.complete = cand.complete and complete  # fewer epochs than validated: say so
        return cand

    def _zeros(self, data, params: dict) -> FactorsFitted:
        items = np.zeros((data.n_items, params["factors"]), np.float32)
        users = (
            np.zeros((data.n_users, params["factors"]), np.float32) if self.kind == "bpr" else None
        )
        return FactorsFitted(self.kind, items, users, float(params["regularization"]),
                             float(params.get("alpha", 1.0)), 0)  # fmt: skip

    def load(self, meta: dict, reader, task: str) -> FactorsFitted:
        return FactorsFitted.load(meta, reader, task)


ALS = FactorsFamily("als", "als")
BPR = FactorsFamily("bpr", "bpr")
