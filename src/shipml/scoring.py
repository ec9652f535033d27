"""The score that search and ensembling optimize: one number from raw scores, and its direction."""

from __future__ import annotations

import numpy as np

from shipml.learners.base import to_proba, untransform_target

__all__ = ["OPTIMIZE", "check_metric", "default_metric", "score", "better", "worst", "binary_auc"]

# metric -> True when larger is better
OPTIMIZE = {
    "roc_auc": True,
    "log_loss": False,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "f1": True,  # of the positive class (binary)
    "mcc": True,  # Matthews correlation coefficient
    "rmse": False,
    "mae": False,
    "r2": True,
}


def default_metric(task: str) -> str:
    return {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]


_FOR = {
    "regression": ("rmse", "mae", "r2"),
    "binary": ("roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1_macro", "f1", "mcc"),
    "multiclass": ("roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1_macro", "mcc"),
}


def check_metric(metric: str, task: str) -> None:
    """A ShipmlError unless `metric` can be optimized for `task`."""
    from shipml.errors import ShipmlError

    if metric not in OPTIMIZE:
        raise ShipmlError(f"unknown metric {metric!r}; choose one of {', '.join(OPTIMIZE)}")
    if metric not in _FOR[task]:
        hint = " (f1 is the positive class's F1: use f1_macro)" if metric == "f1" else ""
        raise ShipmlError(
            f"metric {metric!r} does not apply to a {task} target{hint}; choose one of "
            f"{', '.join(_FOR[task])}"
        )


def better(metric: str, a: float, b: float) -> bool:
    """Is score a strictly better than score b?"""
    return a > b if OPTIMIZE[metric] else a < b


def worst(metric: str) -> float:
    return -np.inf if OPTIMIZE[metric] else np.inf


def score(metric: str, task: str, y: np.ndarray, raw: np.ndarray, transform: str = "none") -> float:
    """Metric of raw scores `raw` against encoded targets `y` (class index or float)."""
    from sklearn import metrics as m

    if task == "regression":
        pred = untransform_target(raw, transform)
        if not np.all(np.isfinite(pred)):
            return worst(metric)
        if metric == "rmse":
            return float(np.sqrt(np.mean((pred - y) ** 2)))
        if metric == "mae":
            return float(np.mean(np.abs(pred - y)))
        if metric == "r2":
            return float(m.r2_score(y, pred))
        raise ValueError(f"metric {metric!r} does not apply to regression")
    proba = to_proba(raw, task)
    labels = np.arange(proba.shape[1])
    y = y.astype(int)
    if metric == "roc_auc":
        if len(np.unique(y)) < 2:
            return 0.5
        if task == "binary":
            return binary_auc(y, raw)
        present = np.unique(y)
        sub = proba[:, present] / proba[:, present].sum(axis=1, keepdims=True)
        if len(present) == 2:
            return binary_auc(np.searchsorted(present, y), sub[:, 1])
        return float(m.roc_auc_score(np.searchsorted(present, y), sub, multi_class="ovr"))
    if metric == "log_loss":
        return float(m.log_loss(y, np.clip(proba, 1e-15, 1), labels=labels))
    pred = proba.argmax(axis=1)
    if metric == "accuracy":
        return float(np.mean(pred == y))
    if metric == "balanced_accuracy":
        return float(m.balanced_accuracy_score(y, pred))
    if metric == "f1_macro":
        return float(m.f1_score(y, pred, average="macro", labels=labels, zero_division=0))
    if metric == "f1" and task == "binary":
        return float(m.f1_score(y, pred, zero_division=0))
    if metric == "mcc":
        return float(m.matthews_corrcoef(y, pred))
    raise ValueError(f"metric {metric!r} does not apply to classification")


def binary_auc(y: np.ndarray, score_: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic with average ranks for ties (what scikit-learn
    computes), in NumPy: ensemble selection calls it hundreds of times."""
    values, inverse, counts = np.unique(score_, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    ranks = avg_rank[inverse]
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    del values
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
