""" "None of these": out-of-scope answers for classification models.

Two ways in (issue 16, part 2):

- `out_of_scope=LABEL`: rows labelled LABEL belong to no class. The model learns LABEL as an
  ordinary class, and on top of it answers LABEL when its confidence (the largest probability
  among the other classes) is below a threshold. The threshold is chosen on the out-of-fold
  validation predictions: the one that maximizes out-of-scope recall while in-scope accuracy
  stays within `max_in_scope_loss` of the oos-as-a-class model (threshold 0). Threshold 0 is a
  candidate, so when no threshold helps, the class alone is kept.
- `reject=True` without out-of-scope examples: the threshold is the validation quantile that
  rejects at most `max_in_scope_loss` of the correct predictions; rejected rows answer None.

`min_confidence` at prediction overrides the threshold. The decision is stored in
`model.info["scope"]` (JSON):

    {"label": "oos" | None, "threshold": 0.31, "mode": "threshold" | "class" | "reject",
     "max_in_scope_loss": 0.01, "validation": {...}, "curve": [{threshold, in_scope_accuracy,
     oos_recall}, ...], "reason": "..."}

Example::

    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1, 0.0], [0.4, 0.35, 0.25], [0.1, 0.2, 0.7]])
    >>> apply_scope(np.array(["a", "a", "oos"], dtype=object), proba, ["a", "b", "oos"], "oos",
    ...             0.5).tolist()
    ['a', 'oos', 'oos']
"""

from __future__ import annotations

import numpy as np

from shipml.errors import UsageError

__all__ = [
    "GRID",
    "apply_scope",
    "check_scope_args",
    "choose_scope",
    "confidence",
    "scope_metrics",
]

#: Candidate confidence thresholds: 0 (the oos class alone) to 0.99 by 0.01.
GRID = np.round(np.arange(0, 100) / 100, 2)
_CURVE_POINTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def check_scope_args(schema, out_of_scope, reject: bool, max_in_scope_loss: float) -> None:
    """UsageError for an out-of-scope label the target does not hold, or on a regression."""
    if out_of_scope is None and not reject:
        return
    flag = "out_of_scope" if out_of_scope is not None else "reject"
    if schema.task == "regression":
        raise UsageError(
            f"{flag}: out-of-scope answers are for classification; target "
            f"'{schema.target}' is a regression (numbers)"
        )
    if not 0.0 <= float(max_in_scope_loss) < 1.0:
        raise UsageError(f"max_in_scope_loss must be in [0, 1), got {max_in_scope_loss!r}")
    if out_of_scope is None:
        return
    names = [str(c) for c in schema.classes]
    if str(out_of_scope) not in names:
        few = ", ".join(repr(c) for c in names[:8]) + (", ..." if len(names) > 8 else "")
        raise UsageError(
            f"out_of_scope={out_of_scope!r} is not a label of target '{schema.target}' "
            f"({len(names)} labels: {few})"
        )
    if len(names) < 3:
        raise UsageError(
            f"out_of_scope={out_of_scope!r}: target '{schema.target}' needs at least two "
            "in-scope labels besides it"
        )


def _oos_index(classes, label) -> int | None:
    if label is None:
        return None
    names = [str(c) for c in classes]
    return names.index(str(label)) if str(label) in names else None


def confidence(proba: np.ndarray, classes, label) -> np.ndarray:
    """The largest probability among the in-scope classes, per row."""
    k = _oos_index(classes, label)
    if k is None:
        return proba.max(axis=1)
    return np.delete(proba, k, axis=1).max(axis=1)


def apply_scope(labels: np.ndarray, proba: np.ndarray, classes, label, threshold) -> np.ndarray:
    """`labels` with the rows whose confidence is below `threshold` answered `label` (None
    when there is no out-of-scope label)."""
    if threshold is None or threshold <= 0:
        return labels
    out = np.asarray(labels, dtype=object).copy()
    out[confidence(proba, classes, label) < threshold] = label
    return out


def scope_metrics(y_true, y_pred, label) -> dict:
    """In-scope accuracy, out-of-scope recall, precision and F1 (`label` None: rows answered
    None are the rejected ones, and every true row is in scope)."""
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    is_oos = _is(y_true, label) if label is not None else np.zeros(len(y_true), dtype=bool)
    said_oos = _is(y_pred, label)
    out = {
        "in_scope_accuracy": float(np.mean(_same(y_true, y_pred)[~is_oos])) if (~is_oos).any()
        else float("nan"),
        "rejected_rate": float(np.mean(said_oos)),
    }  # fmt: skip
    if label is None:
        return out
    tp = float(np.sum(is_oos & said_oos))
    recall = tp / is_oos.sum() if is_oos.any() else float("nan")
    precision = tp / said_oos.sum() if said_oos.any() else 0.0
    f1 = 2 * tp / (is_oos.sum() + said_oos.sum()) if (is_oos.sum() + said_oos.sum()) else 0.0
    out.update({"oos_recall": float(recall), "oos_precision": float(precision),
                "oos_f1": float(f1)})  # fmt: skip
    return out


def _is(values: np.ndarray, label) -> np.ndarray:
    if label is None:
        return np.array([v is None for v in values], dtype=bool)
    return np.array([v is not None and str(v) == str(label) for v in values], dtype=bool)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([x is not None and y is not None and str(x) == str(y) for x, y in zip(a, b)])


def choose_scope(y_true, proba, classes, label, max_in_scope_loss: float = 0.01) -> dict:
    """The stored decision (module doc) from validation labels and class probabilities."""
    classes = list(classes)
    base = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    conf = confidence(proba, classes, label)
    if label is None:
        return _reject_quantile(y_true, base, conf, max_in_scope_loss)
    curve = [_point(y_true, base, proba, classes, label, t) for t in GRID]
    floor = curve[0]["in_scope_accuracy"] - max_in_scope_loss - 1e-12
    ok = [p for p in curve if p["in_scope_accuracy"] >= floor]
    best = max(ok, key=lambda p: (round(p["oos_recall"], 12), -p["threshold"]))
    t = best["threshold"]
    mode = "threshold" if t > 0 and best["oos_recall"] > curve[0]["oos_recall"] else "class"
    if mode == "class":
        t, best = 0.0, curve[0]
    reason = _reason(mode, label, t, curve[0], best, max_in_scope_loss)
    return {"label": label, "threshold": float(t), "mode": mode,
            "max_in_scope_loss": float(max_in_scope_loss), "validation": best,
            "as_class": curve[0], "curve": _thin(curve), "reason": reason}  # fmt: skip


def _point(y_true, base, proba, classes, label, t: float) -> dict:
    pred = apply_scope(base, proba, classes, label, t)
    m = scope_metrics(y_true, pred, label)
    return {"threshold": float(t), "in_scope_accuracy": m["in_scope_accuracy"],
            "oos_recall": m["oos_recall"], "oos_f1": m["oos_f1"]}  # fmt: skip


def _thin(curve: list[dict]) -> list[dict]:
    return [p for p in curve if round(p["threshold"], 2) in _CURVE_POINTS]


def _reason(mode, label, t, as_class, best, loss) -> str:
    if mode == "class":
        return (
            f"{label!r} as an ordinary class: no confidence threshold raised out-of-scope "
            f"recall on validation while losing at most {loss:.1%} in-scope accuracy"
        )
    return (
        f"{label!r} also below confidence {t:.2f}: validation out-of-scope recall "
        f"{best['oos_recall']:.1%} vs {as_class['oos_recall']:.1%} as a class alone, in-scope "
        f"accuracy {best['in_scope_accuracy']:.1%} vs {as_class['in_scope_accuracy']:.1%} "
        f"(at most {loss:.1%} lost)"
    )


def _reject_quantile(y_true, base, conf, loss: float) -> dict:
    """No out-of-scope examples: reject at most `loss` of the correct validation answers."""
    correct = _same(np.asarray(y_true, dtype=object), base)
    t = float(np.quantile(conf[correct], loss)) if correct.any() and loss > 0 else 0.0
    t = float(np.floor(t * 1000) / 1000)  # at or below the quantile: rejects no more
    kept = conf >= t
    curve = []
    for q in GRID[::10]:
        keep = conf >= q
        curve.append(
            {
                "threshold": float(q),
                "answered": float(keep.mean()),
                "accuracy_answered": float(correct[keep].mean()) if keep.any() else 0.0,
            }
        )
    reason = (
        f"no out-of-scope examples: answers below confidence {t:.3f} are rejected (None), "
        f"the validation quantile that rejects {loss:.1%} of the correct answers"
    )  # fmt: skip
    validation = {
        "threshold": t,
        "answered": float(kept.mean()),
        "in_scope_accuracy": float(np.mean(correct & kept)),
        "accuracy_answered": float(correct[kept].mean()) if kept.any() else 0.0,
    }
    return {"label": None, "threshold": t, "mode": "reject", "max_in_scope_loss": float(loss),
            "validation": validation, "curve": curve, "reason": reason}  # fmt: skip
