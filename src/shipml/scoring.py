"""The score that search and ensembling optimize: one number from raw scores, and its direction.

The metrics, their directions and their scorers are the table in `evaluate/metric_registry.py`.
"""

from __future__ import annotations

import numpy as np

from shipml.evaluate import metric_registry as registry
from shipml.evaluate.metric_registry import binary_auc
from shipml.learners.base import untransform_target

__all__ = ["OPTIMIZE", "check_metric", "default_metric", "score", "better", "worst", "binary_auc"]

#: metric -> True when larger is better, for every metric the search can optimize
OPTIMIZE = {name: registry.get(name).maximize for name in registry.searchable()}


def default_metric(task: str) -> str:
    return {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse",
            "recommend": "ndcg@10"}[task]  # fmt: skip


def check_metric(metric: str, task: str) -> None:
    """A UsageError unless `metric` can be optimized for `task`."""
    from shipml.errors import UsageError

    if metric not in OPTIMIZE:
        raise UsageError(f"unknown metric {metric!r}; choose one of {', '.join(OPTIMIZE)}")
    allowed = registry.searchable(task)
    if metric not in allowed:
        hint = " (f1 is the positive class's F1: use f1_macro)" if metric == "f1" else ""
        raise UsageError(
            f"metric {metric!r} does not apply to a {task} target{hint}; choose one of "
            f"{', '.join(allowed)}"
        )


def better(metric: str, a: float, b: float) -> bool:
    """Is score a strictly better than score b?"""
    return a > b if OPTIMIZE[metric] else a < b


def worst(metric: str) -> float:
    return -np.inf if OPTIMIZE[metric] else np.inf


def score(metric: str, task: str, y: np.ndarray, raw: np.ndarray, transform: str = "none") -> float:
    """Metric of raw scores `raw` against encoded targets `y` (class index or float)."""
    spec = registry.get(metric)
    if task not in spec.search:
        kind = "regression" if task == "regression" else "classification"
        raise ValueError(f"metric {metric!r} does not apply to {kind}")
    if task == "regression":
        raw = untransform_target(raw, transform)
        if not np.all(np.isfinite(raw)):
            return worst(metric)
    return spec.scorer(task, y, raw)
