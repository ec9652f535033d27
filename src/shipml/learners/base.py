"""The Learner contract shared by every kind of model.

A Learner's constructor only stores parameters. `fit(train, valid, budget)` returns a Fitted,
which maps an encoded feature matrix to raw scores (log-odds for binary, per-class scores for
multiclass, the (possibly transformed) target for regression) and to per-feature contributions
that sum to those scores. The Model turns raw scores into labels and probabilities, so that an
ensemble of Fitted objects averages in one space and its explanations stay exact.

A Fitted saves itself as data only (`artifacts()` -> {file name: str | bytes | ndarray}) and is
rebuilt from those files by `load(meta, files)`; see registry/formats.py for the reading side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = [
    "TrainData",
    "Budget",
    "Fitted",
    "Learner",
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

    def transformed(self, how: str) -> TrainData:
        """The same rows with the regression target transformed ("none" returns self)."""
        if how == "none" or self.task != "regression":
            return self
        y = transform_target(self.y, how)
        return TrainData(self.X, y, self.task, self.n_classes, self.categorical, self.weight)

    def take(self, idx: np.ndarray) -> TrainData:
        w = None if self.weight is None else self.weight[idx]
        return TrainData(self.X[idx], self.y[idx], self.task, self.n_classes, self.categorical, w)


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


class Learner(Protocol):
    def fit(self, train: TrainData, valid: TrainData | None, budget: Budget) -> Fitted: ...


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
