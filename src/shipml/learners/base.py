"""The learner contract shared by every family of models (docs/architecture.md).

A **Fitted** maps an encoded feature matrix to raw scores (log-odds for binary, per-class scores
for multiclass, the (possibly transformed) target for regression) and to per-feature
contributions that sum to those scores. The Model turns raw scores into labels and
probabilities, so that an ensemble of Fitted objects averages in one space and its explanations
stay exact. A Fitted saves itself as data only (`artifacts(prefix)` -> (meta JSON, {file name:
str | bytes | ndarray})); its family rebuilds it with `load(meta, reader, task)` through
registry/formats.py's ArtifactReader, the one reading path.

A **Family** (learners/registry.py lists them) is what the search knows of a kind of model: its
name, whether it can run here, its fixed configurations (tried in order), its search space (an
Optuna `suggest`), how one configuration fits on the shared validation folds under a deadline
(a Candidate with out-of-fold raw scores), an optional refit on all rows, and its loader.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from shipml.data.split import ValidationPlan

__all__ = [
    "TrainData",
    "Budget",
    "Fitted",
    "Family",
    "Config",
    "Candidate",
    "Folds",
    "Recommender",
    "RankFolds",
    "standardize_rows",
    "empty_oof",
    "report_fold",
    "balanced_weights",
    "prior_offset",
    "to_proba",
    "transform_target",
    "untransform_target",
]


@dataclass
class TrainData:
    """Encoded rows: X float matrix, y class index (int) or float target, optional weights."""

    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int = 0
    categorical: list[int] = field(default_factory=list)
    weight: np.ndarray | None = None
    # where X holds images as pixels, for a family that reads them as images (learners/cnn.py):
    # {"start": first column, "size": side in pixels, "channels": 1 or 3}; None: no pixels
    images: dict | None = None

    def transformed(self, how: str) -> TrainData:
        """The same rows with the regression target transformed ("none" returns self)."""
        if how == "none" or self.task != "regression":
            return self
        y = transform_target(self.y, how)
        return TrainData(self.X, y, self.task, self.n_classes, self.categorical, self.weight,
                         self.images)  # fmt: skip

    def take(self, idx: np.ndarray) -> TrainData:
        w = None if self.weight is None else self.weight[idx]
        return TrainData(self.X[idx], self.y[idx], self.task, self.n_classes, self.categorical, w,
                         self.images)  # fmt: skip


@dataclass
class Budget:
    """A wall-clock deadline, in seconds of `clock` (time.monotonic unless a test injects one)."""

    deadline: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def seconds(cls, s: float, clock: Callable[[], float] = time.monotonic) -> Budget:
        return cls(clock() + s, clock)

    @property
    def remaining(self) -> float:
        return self.deadline - self.clock()

    @property
    def expired(self) -> bool:
        return self.remaining <= 0


class Fitted(Protocol):
    kind: str

    def raw(self, X: np.ndarray) -> np.ndarray: ...

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, p + 1) — or (n, k, p + 1) for multiclass — last column is the bias."""
        ...

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        """(meta JSON, {file name: content}) to store this fitted model as data."""
        ...


@dataclass
class Config:
    """A named configuration of a family: `params` are what its `fit` reads (and what the
    model's candidate list records)."""

    name: str
    params: dict


@dataclass
class Candidate:
    """A validated configuration: its score, out-of-fold raw scores and the fitted model."""

    name: str
    params: dict
    score: float
    oof: np.ndarray  # raw scores on plan.scored_rows
    fitted: Any  # a Fitted
    seconds: float
    transform: str = "none"
    complete: bool = True  # False when the deadline cut its training short
    family: str = ""  # the Family that made it (learners/registry.py)


class Folds:
    """The shared validation folds of one search: the data, the plan, the seed and the metric
    every family fits and scores on, and a cache a family may keep per-fold structures in
    (LightGBM's binned datasets: binning is a large share of a small trial's time)."""

    def __init__(self, data: TrainData, plan: ValidationPlan, *, seed: int, metric: str) -> None:
        self.data, self.plan, self.seed, self.metric = data, plan, seed, metric
        self._cache: dict = {}

    def cached(self, key: tuple, build: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def candidate(self, family: str, params: dict, oof: np.ndarray, fitted, *,
                  transform: str = "none", complete: bool = True,
                  scored: bool = True) -> Candidate:  # fmt: skip
        """A Candidate from out-of-fold raw scores on all rows (`oof`), scored on the plan's
        scored rows with the search's metric. `scored=False` (folds left untrained by the
        deadline) or a non-finite score gives it the metric's worst value."""
        from shipml.scoring import score, worst

        rows = self.plan.scored_rows
        value = score(self.metric, self.data.task, self.data.y[rows], oof[rows], transform)
        if not scored or not np.isfinite(value):
            value = worst(self.metric)
        return Candidate(family, params, value, oof[rows], fitted, 0.0, transform, complete,
                         family)  # fmt: skip


class Recommender(Protocol):
    """The Fitted of a recommender family (task kind `recommend`): scores every item for some
    users given their histories; stored as data only, like every Fitted."""

    kind: str

    def scores(self, histories) -> np.ndarray:
        """(n, n_items) float32 scores (higher: recommend first) for the users of a
        recommend.interactions.Histories; items a user already has are *not* masked here."""
        ...

    def similar(self, items: np.ndarray) -> np.ndarray:
        """(len(items), n_items) item-to-item similarity for item codes (itself included)."""
        ...

    def artifacts(self, prefix: str) -> tuple[dict, dict]: ...


class RankFolds:
    """What a recommender family fits and is scored on: the training events (`data`, an
    Interactions), the held-out validation events (`targets`, a RankTargets), the seed and the
    metric ("ndcg@10"). `candidate(...)` scores a full ranking of the validation users' scores
    and keeps them, standardized per user, as the candidate's out-of-fold scores: ensemble
    selection averages members in that common scale."""

    def __init__(self, data, targets, *, seed: int, metric: str) -> None:
        self.data, self.targets, self.seed, self.metric = data, targets, seed, metric
        self._cache: dict = {}

    def cached(self, key: tuple, build: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def candidate(self, family: str, params: dict, scores: np.ndarray, fitted, *,
                  complete: bool = True, scored: bool = True) -> Candidate:  # fmt: skip
        from shipml.scoring import score, worst

        oof = standardize_rows(scores)
        value = score(self.metric, "recommend", self.targets, oof)
        if not scored or not np.isfinite(value):
            value = worst(self.metric)
        return Candidate(family, params, value, oof, fitted, 0.0, "none", complete, family)


def standardize_rows(scores: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit deviation (float32): recommenders' scores live on
    different scales, and a blend must weigh them alike. A constant row becomes zeros."""
    s = np.asarray(scores, dtype=np.float32)
    mean = s.mean(axis=1, keepdims=True)
    std = s.std(axis=1, keepdims=True)
    return (s - mean) / np.where(std > 0, std, 1.0)


def empty_oof(data: TrainData, n: int) -> np.ndarray:
    """Zeros shaped like `n` rows of raw scores."""
    shape = (n, data.n_classes) if data.task == "multiclass" else (n,)
    return np.zeros(shape)


def report_fold(trial, fold_scores: list[float], step: int, n_folds: int) -> None:
    """Tell Optuna the mean score of the folds done so far; prune a trial that already lags."""
    if n_folds > 1 and trial is not None:
        import optuna

        trial.report(float(np.mean(fold_scores)), step)
        if trial.should_prune():
            raise optuna.TrialPruned()


class Family(Protocol):
    """A learner family, as the search and Model.read use it (docs/architecture.md). One
    module under learners/ per family, one line in learners/registry.py."""

    name: str  # what candidates and trials are named after
    kind: str  # the `kind` its Fitted writes into model.json (several families may share one)
    keep: int  # candidates of this family the search's pool keeps for ensembling
    baseline: bool  # a fast baseline: with defaults_first=False it runs before the floor
    searched: bool  # has a search space (`suggest`): Optuna samples it after its configs
    floor: bool  # its first configuration is the score the search must not end below
    refits: bool  # `refit` retrains on all rows (the time plan reserves time for it)
    stops_at_deadline: bool  # `fit` ends at the budget's deadline (else it runs to the end)

    def available(self) -> str | None:
        """None when the family can run here, else a note saying why not (a missing extra)."""
        ...

    def configs(self, data: TrainData) -> list[Config]:
        """Fixed configurations, tried in this order (a searched family's first ones are
        enqueued into the Optuna study)."""
        ...

    def suggest(self, trial, task: str, transforms: list[str]) -> dict | None:
        """One configuration from Optuna's `trial` (None: the family has no search space)."""
        ...

    def fit(self, folds: Folds, config: Config, budget: Budget, trial=None) -> Candidate:
        """Fit `config` on every fold (stopping at `budget`), score it out of fold."""
        ...

    def refit(self, cand: Candidate, data: TrainData, seed: int, budget: Budget) -> Candidate:
        """`cand` retrained on all rows (a holdout plan), or `cand` itself."""
        ...

    def load(self, meta: dict, reader, task: str) -> Fitted:
        """The Fitted that `artifacts()` stored, read through an ArtifactReader."""
        ...


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-row weights n / (k * n_class): every class weighs the same in the loss."""
    counts = np.bincount(y.astype(int), minlength=n_classes).astype(float)
    present = counts > 0
    per_class = np.zeros(n_classes)
    per_class[present] = len(y) / (present.sum() * counts[present])
    return per_class[y.astype(int)]


def prior_offset(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Raw-score shift that turns a class-balanced model's scores back into calibrated ones:
    log(prior) per class (binary: one log-odds shift). Exact for the reweighted likelihood."""
    counts = np.bincount(y.astype(int), minlength=n_classes).astype(float) + 0.5
    prior = counts / counts.sum()
    if n_classes == 2:
        return np.array([np.log(prior[1] / prior[0])])
    return np.log(prior)


def to_proba(raw: np.ndarray, task: str) -> np.ndarray:
    """Raw scores -> (n, k) class probabilities (sigmoid for binary, softmax for multiclass)."""
    if task == "binary":
        p1 = 1.0 / (1.0 + np.exp(-np.clip(raw, -500, 500)))
        return np.column_stack([1.0 - p1, p1])
    z = raw - raw.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def transform_target(y: np.ndarray, how: str) -> np.ndarray:
    """Regression target as the learners see it: "none", or "log" (log1p, for skewed prices)."""
    return np.log1p(y) if how == "log" else y


def untransform_target(raw: np.ndarray, how: str) -> np.ndarray:
    return np.expm1(raw) if how == "log" else raw
