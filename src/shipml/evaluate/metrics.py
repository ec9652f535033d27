"""Scores for a fitted model, as plain JSON-ready dicts.

Every number comes from scikit-learn's metric functions; this module only chooses which ones,
handles the edge cases a small real dataset produces (a class never predicted, a validation fold
with a single class) and turns NumPy scalars and NaN into ``float`` / ``None`` so that the result
can be stored in the registry with ``json.dumps(..., allow_nan=False)``.

scikit-learn is imported inside the functions: ``import shipml`` and ``shipml --help`` stay fast.

Example (German credit: 1 = good, 2 = bad)::

    >>> m = classification_metrics([1, 2, 2, 1], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.8, 0.2]],
    ...                            classes=[1, 2])
    >>> m["primary"], m["roc_auc"], m["accuracy"], m["positive_class"]
    ('roc_auc', 1.0, 0.75, '2')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from shipml.errors import DataError
from shipml.evaluate.metric_registry import METRICS
from shipml.evaluate.metric_registry import get as get_metric

__all__ = [
    "METRIC_DIRECTIONS",
    "METRIC_NAMES",
    "classification_metrics",
    "regression_metrics",
    "is_better",
]

#: "maximize" or "minimize" for every scalar metric this module returns (from the registry).
METRIC_DIRECTIONS: dict[str, str] = {m.name: m.direction for m in METRICS}

#: How each metric is written for people (report, plots, CLI tables).
METRIC_NAMES: dict[str, str] = {m.name: m.label for m in METRICS}

_CALIBRATION_BINS = 10
# Rows of ``proba`` may drift from 1 by float32 rounding; more than this is not a probability.
_PROBA_SUM_TOLERANCE = 1e-3


def is_better(metric: str, a: float | None, b: float | None) -> bool:
    """True when score ``a`` is strictly better than score ``b`` for ``metric``.

    ``None`` (an undefined score) is worse than any number, so a real score always beats it.

    >>> is_better("roc_auc", 0.8, 0.7), is_better("rmse", 0.8, 0.7), is_better("rmse", 1.0, None)
    (True, False, True)
    """
    direction = get_metric(metric).direction  # a UsageError naming the known ones
    if a is None or _is_nan(a):
        return False
    if b is None or _is_nan(b):
        return True
    return a > b if direction == "maximize" else a < b


# --------------------------------------------------------------------------------------------
# classification


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray,
    proba: Sequence[Sequence[float]] | np.ndarray,
    classes: Sequence[Any],
    *,
    sample_weight: Sequence[float] | np.ndarray | None = None,
    y_pred: Sequence[Any] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Scores of class probabilities ``proba`` (n, k) against the true labels ``y_true``.

    Columns of ``proba`` follow ``classes``; the predicted label is the column with the highest
    probability, unless ``y_pred`` gives the labels the model really answers (e.g. after a tuned
    decision threshold): then accuracy, precision, recall, F1 and the confusion matrix score
    ``y_pred``, and the probability scores (log loss, AUCs, Brier) still score ``proba``. For two
    classes the positive class is ``classes[1]`` and ``proba`` may also be the 1-D probability
    of that class. Keys that do not apply (``brier``, ``calibration``, ``f1`` (of the positive
    class) and ``positive_class`` for multiclass; ``roc_auc`` when a class is missing from
    ``y_true``) are ``None``, so every result has the same keys. ``per_class[...]["support"]``
    and the confusion matrix count rows; ``sample_weight`` weighs every score.
    """
    classes = _checked_classes(classes)
    codes = _encode(y_true, classes)
    n, k = len(codes), len(classes)
    p = _check_proba(proba, n, k)
    w = _check_weight(sample_weight, n)
    pred = p.argmax(axis=1) if y_pred is None else _encoded_pred(y_pred, classes, n)
    labels = list(range(k))
    names = [str(c) for c in classes]

    from sklearn import metrics as skm

    with _quiet_sklearn():
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            codes, pred, labels=labels, sample_weight=w, zero_division=0
        )
        support = np.bincount(codes, minlength=k)
        out: dict[str, Any] = {
            "n_rows": int(n),
            "primary": "roc_auc" if k == 2 else "log_loss",
            "positive_class": names[1] if k == 2 else None,
            "accuracy": skm.accuracy_score(codes, pred, sample_weight=w),
            "balanced_accuracy": skm.balanced_accuracy_score(codes, pred, sample_weight=w),
            "precision_macro": float(np.mean(prec)),
            "recall_macro": float(np.mean(rec)),
            "f1_macro": float(np.mean(f1)),
            "f1_weighted": skm.f1_score(
                codes, pred, labels=labels, average="weighted", sample_weight=w, zero_division=0
            ),
            "f1": f1[1] if k == 2 else None,
            "mcc": skm.matthews_corrcoef(codes, pred, sample_weight=w),
            "log_loss": skm.log_loss(codes, p, labels=labels, sample_weight=w),
            **_ranking_scores(codes, p, w, support > 0),
        }
        cm = skm.confusion_matrix(codes, pred, labels=labels)
    out["per_class"] = {
        names[j]: {
            "precision": prec[j],
            "recall": rec[j],
            "f1": f1[j],
            "support": int(support[j]),
        }
        for j in labels
    }
    out["confusion_matrix"] = {"labels": names, "matrix": cm.astype(int).tolist()}
    return _jsonable(out)


def _checked_classes(classes: Sequence[Any]) -> list:
    classes = list(classes)
    if len(classes) < 2:
        raise DataError(f"classification needs at least 2 classes, got {classes!r}")
    if len({str(c) for c in classes}) != len(classes):
        raise DataError(f"class labels must be distinct (also as text), got {classes!r}")
    return classes


def _encoded_pred(y_pred, classes: list, n: int) -> np.ndarray:
    """The labels the model answers, as class codes (one per true label)."""
    pred = _encode(y_pred, classes, what="y_pred")
    if len(pred) != n:
        raise DataError(f"y_true has {n} values but y_pred has {len(pred)}")
    return pred


def _ranking_scores(codes: np.ndarray, p: np.ndarray, w, present: np.ndarray) -> dict[str, Any]:
    """roc_auc, pr_auc, brier and calibration of the probabilities (None where undefined: a
    class missing from the true labels; brier and calibration for multiclass)."""
    from sklearn import metrics as skm

    k = p.shape[1]
    labels = list(range(k))
    out: dict[str, Any] = {"roc_auc": None, "pr_auc": None, "brier": None, "calibration": None}
    if present.all():
        if k == 2:
            out["roc_auc"] = skm.roc_auc_score(codes, p[:, 1], sample_weight=w)
        else:
            out["roc_auc"] = skm.roc_auc_score(
                codes, p, multi_class="ovr", average="macro", labels=labels, sample_weight=w
            )
    if k == 2:
        if present[1]:
            out["pr_auc"] = skm.average_precision_score(codes, p[:, 1], sample_weight=w)
        out["brier"] = skm.brier_score_loss(codes, p[:, 1], sample_weight=w)
        out["calibration"] = _calibration(codes, p[:, 1], w)
    else:
        # Macro over the classes present: average precision is undefined without positives.
        ap = [
            skm.average_precision_score(codes == j, p[:, j], sample_weight=w)
            for j in labels
            if present[j]
        ]
        out["pr_auc"] = float(np.mean(ap)) if ap else None
    return out


def _calibration(codes: np.ndarray, p1: np.ndarray, w: np.ndarray | None) -> dict[str, list]:
    """Reliability curve on 10 equal-width bins of [0, 1], empty bins skipped.

    Same bins as ``sklearn.calibration.calibration_curve(strategy="uniform")``, which has no
    ``sample_weight`` and does not return the bin counts the report needs.
    """
    edges = np.linspace(0.0, 1.0, _CALIBRATION_BINS + 1)
    bins = np.searchsorted(edges[1:-1], p1, side="right")
    weights = np.ones_like(p1) if w is None else w
    total = np.bincount(bins, weights=weights, minlength=_CALIBRATION_BINS)
    sum_p = np.bincount(bins, weights=weights * p1, minlength=_CALIBRATION_BINS)
    sum_y = np.bincount(bins, weights=weights * (codes == 1), minlength=_CALIBRATION_BINS)
    count = np.bincount(bins, minlength=_CALIBRATION_BINS)
    keep = (count > 0) & (total > 0)
    return {
        "prob_pred": (sum_p[keep] / total[keep]).tolist(),
        "prob_true": (sum_y[keep] / total[keep]).tolist(),
        "count": count[keep].astype(int).tolist(),
    }


def _encode(y_true, classes: list, what: str = "y_true") -> np.ndarray:
    """Map labels to column indices of ``proba``; unknown labels are a DataError naming them."""
    import pandas as pd

    y = pd.Series(np.asarray(y_true).ravel())
    if len(y) == 0:
        raise DataError(f"cannot score 0 rows: {what} is empty")
    index = pd.Index(classes)
    codes = index.get_indexer(y)
    if (codes < 0).any():
        # Numbers read as text (or the reverse) are the usual cause: retry on the text forms.
        codes = pd.Index([str(c) for c in classes]).get_indexer(y.astype(str))
    if (codes < 0).any():
        bad = pd.unique(y[codes < 0])[:5].tolist()
        raise DataError(
            f"{what} has {int((codes < 0).sum())} value(s) that are not among the classes "
            f"{classes!r}, e.g. {bad!r}"
        )
    return codes.astype(np.intp)


def _check_proba(proba, n: int, k: int) -> np.ndarray:
    try:
        p = np.asarray(proba, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"proba must be numbers (class probabilities): {exc}") from None
    if p.ndim == 1 and k == 2:
        p = np.column_stack([1.0 - p, p])
    if p.shape != (n, k):
        raise DataError(
            f"proba must have shape ({n}, {k}) (one row per y_true value, one column per class); "
            f"got {p.shape}"
        )
    if not np.isfinite(p).all():
        raise DataError(f"proba has {int((~np.isfinite(p)).sum())} missing or infinite value(s)")
    if (p < -1e-9).any() or (p > 1 + 1e-9).any():
        raise DataError("proba must be probabilities between 0 and 1")
    sums = p.sum(axis=1)
    if np.abs(sums - 1.0).max() > _PROBA_SUM_TOLERANCE:
        row = int(np.abs(sums - 1.0).argmax())
        raise DataError(f"each row of proba must sum to 1; row {row} sums to {sums[row]:.4g}")
    return np.clip(p, 0.0, 1.0) / sums[:, None]


def _check_weight(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=float).ravel()
    if w.shape != (n,):
        raise DataError(f"sample_weight must have {n} values, got {w.shape[0]}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError("sample_weight must be finite and >= 0")
    return w


# --------------------------------------------------------------------------------------------
# regression


def regression_metrics(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Error scores of numeric predictions; ``primary`` is ``"rmse"``.

    ``mape`` is a fraction (0.12 = 12 %) over the rows whose true value is not 0 (``None`` if
    none); ``rmse_log`` is the RMSE of ``log1p`` values (``None`` unless every value is > -1).

    >>> m = regression_metrics([1.0, 2.0, 4.0], [1.0, 2.0, 5.0])
    >>> m["mae"], m["median_ae"], m["mape"]
    (0.3333333333333333, 0.0, 0.08333333333333333)
    """
    yt = _numeric(y_true, "y_true")
    yp = _numeric(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise DataError(f"y_true has {len(yt)} values but y_pred has {len(yp)}")
    if len(yt) == 0:
        raise DataError("cannot score 0 rows: y_true is empty")

    from sklearn import metrics as skm

    with _quiet_sklearn():
        nonzero = yt != 0
        out: dict[str, Any] = {
            "n_rows": int(len(yt)),
            "primary": "rmse",
            "mae": skm.mean_absolute_error(yt, yp),
            "rmse": skm.root_mean_squared_error(yt, yp),
            "r2": skm.r2_score(yt, yp) if len(yt) >= 2 else None,
            "mape": (
                skm.mean_absolute_percentage_error(yt[nonzero], yp[nonzero])
                if nonzero.any()
                else None
            ),
            "median_ae": skm.median_absolute_error(yt, yp),
            "rmse_log": (
                skm.root_mean_squared_error(np.log1p(yt), np.log1p(yp))
                if (yt > -1).all() and (yp > -1).all()
                else None
            ),
        }
    return _jsonable(out)


def _numeric(values, name: str) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numbers for a regression: {exc}") from None
    if not np.isfinite(a).all():
        raise DataError(f"{name} has {int((~np.isfinite(a)).sum())} missing or infinite value(s)")
    return a


# --------------------------------------------------------------------------------------------
# helpers


@contextmanager
def _quiet_sklearn():
    """Silence sklearn's warnings about undefined scores: we return 0 or None on purpose."""
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"sklearn\.metrics")
        yield


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _jsonable(x: Any) -> Any:
    """Plain Python types only; NaN and infinities become None."""
    if isinstance(x, dict):
        return {str(key): _jsonable(v) for key, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    f = float(x)
    return f if math.isfinite(f) else None
