"""Every metric shipml knows, in one table: its name, direction, label, the tasks it is reported
for (and where it stands in their tables), the tasks the search can optimize it for, and the
scorer the search calls.

Search (`shipml.scoring`), evaluation (`evaluate/metrics.py`), the HTML report and the CLI all
read this table; adding a metric is one row here (and its value in `evaluate/metrics.py`).

The search scorers take the encoded targets `y` (class index, or float) and the raw scores of a
classifier (log-odds for binary, class scores for multiclass) or the predictions of a regressor.
They are scikit-learn's functions, except where scikit-learn's input checks dominate the cost of
a call that ensemble selection makes hundreds of times (RMSE, MAE, accuracy, binary ROC AUC:
about 2-14 ms per call in scikit-learn against 12-370 us in NumPy on 1,000 rows); those are
written in NumPy here and tests/evaluate/test_scoring.py proves them equal to scikit-learn.

This module imports nothing at the top (the CLI reads it for `shipml --help`-fast tables).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Metric",
    "METRICS",
    "TASKS",
    "get",
    "names",
    "display_order",
    "summary_names",
    "searchable",
    "binary_auc",
]

TASKS = ("binary", "multiclass", "regression", "recommend")
_CLASSIFICATION = ("binary", "multiclass")

Scorer = Callable[[str, Any, Any], float]


@dataclass(frozen=True)
class Metric:
    """One metric. `order` maps each task the evaluation reports it for to its row in that
    task's tables (0 first); `search` lists the tasks the search can optimize it for, with
    `scorer(task, y, raw_or_pred)`; `summary` says whether the CLI's summary table shows it."""

    name: str
    maximize: bool
    label: str
    order: Mapping[str, int]
    search: tuple[str, ...] = ()
    scorer: Scorer | None = field(default=None, compare=False)
    summary: bool = True

    @property
    def direction(self) -> str:
        """Optuna's word for it: "maximize" or "minimize"."""
        return "maximize" if self.maximize else "minimize"

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks whose evaluation reports this metric."""
        return tuple(t for t in TASKS if t in self.order)

    def better(self, a: float, b: float) -> bool:
        """Is score `a` strictly better than score `b`?"""
        return a > b if self.maximize else a < b

    def worst(self) -> float:
        return float("-inf") if self.maximize else float("inf")


# --------------------------------------------------------------------------------------------
# search scorers (lazy imports: this module must stay import-free)


def _proba(task: str, raw):
    from shipml.learners.base import to_proba

    return to_proba(raw, task)


def _labels(task: str, raw):
    return _proba(task, raw).argmax(axis=1)


def binary_auc(y, score_) -> float:
    """ROC AUC as the Mann-Whitney statistic with average ranks for ties (what scikit-learn
    computes), in NumPy: ensemble selection calls it hundreds of times. 0.5 with one class."""
    import numpy as np

    _, inverse, counts = np.unique(score_, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based average rank of each value
    pos = np.asarray(y) == 1
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(task: str, y, raw) -> float:
    import numpy as np

    y = y.astype(int)
    present = np.unique(y)
    if len(present) < 2:
        return 0.5
    if task == "binary":
        return binary_auc(y, raw)
    proba = _proba(task, raw)
    sub = proba[:, present] / proba[:, present].sum(axis=1, keepdims=True)
    if len(present) == 2:
        return binary_auc(np.searchsorted(present, y), sub[:, 1])
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.searchsorted(present, y), sub, multi_class="ovr"))


def _log_loss(task: str, y, raw) -> float:
    import numpy as np
    from sklearn.metrics import log_loss

    proba = _proba(task, raw)
    labels = np.arange(proba.shape[1])
    return float(log_loss(y.astype(int), np.clip(proba, 1e-15, 1), labels=labels))


def _accuracy(task: str, y, raw) -> float:
    import numpy as np

    return float(np.mean(_labels(task, raw) == y.astype(int)))


def _balanced_accuracy(task: str, y, raw) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y.astype(int), _labels(task, raw)))


def _f1_macro(task: str, y, raw) -> float:
    import numpy as np
    from sklearn.metrics import f1_score

    proba = _proba(task, raw)
    labels = np.arange(proba.shape[1])
    return float(
        f1_score(y.astype(int), proba.argmax(axis=1), average="macro", labels=labels,
                 zero_division=0)
    )  # fmt: skip


def _f1(task: str, y, raw) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y.astype(int), _labels(task, raw), zero_division=0))


def _mcc(task: str, y, raw) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(y.astype(int), _labels(task, raw)))


def _rmse(task: str, y, pred) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((pred - y) ** 2)))


def _mae(task: str, y, pred) -> float:
    import numpy as np

    return float(np.mean(np.abs(pred - y)))


def _r2(task: str, y, pred) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, pred))


def _ranking(name: str) -> Scorer:
    """A scorer of a full ranking: `y` is a recommend.interactions.RankTargets, `raw` the
    (n, n_items) scores of its users (recommend/metrics.py)."""

    def scorer(task: str, y, raw) -> float:
        from shipml.recommend.metrics import metric_at

        return metric_at(name, raw, y)

    return scorer


# --------------------------------------------------------------------------------------------
# the table (its order is the CLI summary's order)

_B, _M, _R, _K = TASKS

METRICS: tuple[Metric, ...] = (
    Metric("roc_auc", True, "ROC AUC", {_B: 0, _M: 7}, _CLASSIFICATION, _roc_auc),
    Metric("pr_auc", True, "PR AUC", {_B: 1, _M: 8}),
    Metric("accuracy", True, "Accuracy", {_B: 2, _M: 1}, _CLASSIFICATION, _accuracy),
    Metric("balanced_accuracy", True, "Balanced accuracy", {_B: 3, _M: 2}, _CLASSIFICATION,
           _balanced_accuracy),
    # F1 of the positive class: binary only (f1_macro is its multiclass form)
    Metric("f1", True, "F1 (positive class)", {_B: 4}, (_B,), _f1),
    Metric("f1_macro", True, "F1 (macro)", {_B: 5, _M: 3}, _CLASSIFICATION, _f1_macro),
    # Matthews correlation coefficient
    Metric("mcc", True, "MCC", {_B: 6, _M: 9}, _CLASSIFICATION, _mcc),
    Metric("precision_macro", True, "Precision (macro)", {_B: 7, _M: 5}),
    Metric("recall_macro", True, "Recall (macro)", {_B: 8, _M: 6}),
    Metric("f1_weighted", True, "F1 (weighted)", {_B: 9, _M: 4}, summary=False),
    Metric("log_loss", False, "Log loss", {_B: 10, _M: 0}, _CLASSIFICATION, _log_loss),
    Metric("brier", False, "Brier score", {_B: 11}),
    Metric("rmse", False, "RMSE", {_R: 0}, (_R,), _rmse),
    Metric("mae", False, "MAE", {_R: 1}, (_R,), _mae),
    Metric("median_ae", False, "Median abs. error", {_R: 2}, summary=False),
    Metric("r2", True, "R²", {_R: 3}, (_R,), _r2),
    Metric("mape", False, "MAPE", {_R: 4}),
    Metric("rmse_log", False, "RMSE of log", {_R: 5}),
    # recommendation: full ranking over every item, the user's own items excluded
    *(Metric(f"{m}@{k}", True, f"{label}@{k}", {_K: i * 3 + j}, (_K,), _ranking(f"{m}@{k}"),
             summary=k == 10)
      for i, k in enumerate((5, 10, 20))
      for j, (m, label) in enumerate((("hr", "HR"), ("ndcg", "NDCG"), ("recall", "Recall")))),
    Metric("mrr", True, "MRR", {_K: 9}, (_K,), _ranking("mrr")),
)  # fmt: skip

_BY_NAME = {m.name: m for m in METRICS}


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get(name: str) -> Metric:
    """The metric called `name`; a UsageError naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        from shipml.errors import UsageError

        known = ", ".join(sorted(_BY_NAME))
        raise UsageError(f"unknown metric {name!r}; choose one of: {known}") from None


def display_order(task: str) -> tuple[str, ...]:
    """The metrics reported for `task`, in the order its tables show them."""
    rows = [m for m in METRICS if task in m.order]
    return tuple(m.name for m in sorted(rows, key=lambda m: m.order[task]))


def summary_names() -> tuple[str, ...]:
    """The metrics of the CLI's summary tables, in their order (any task)."""
    return tuple(m.name for m in METRICS if m.summary)


def searchable(task: str | None = None) -> tuple[str, ...]:
    """The metrics the search can optimize (for `task`, or for any task)."""
    return tuple(m.name for m in METRICS if m.search and (task is None or task in m.search))
