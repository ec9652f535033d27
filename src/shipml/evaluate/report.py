"""One self-contained HTML report per model: metrics explained in plain words, plots, data.

This module gathers what each section shows (numbers, rows, PNG plots); the page itself is the
autoescaped Jinja2 template ``templates/model_report.html.j2``, so every string that comes from
the user's data (column names, class labels, notes, texts) is HTML-escaped. The file has no
external reference at all (CSS inlined, plots as base64 PNG data URIs, no JavaScript), so it
can be mailed, attached to a ticket or opened offline years later. The file is written
atomically: readers see the old report or the new one, never half of one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipml.errors import DataError, UsageError
from shipml.evaluate.markup import (
    atomic_write,
    info_rows,
    metric_name,
    metric_value,
    num,
    render,
)
from shipml.evaluate.metric_registry import display_order
from shipml.evaluate.metrics import METRIC_DIRECTIONS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["write_report"]

TASKS = ("binary", "multiclass", "regression")

# The key-metrics table, in reading order (the metric registry's); unknown numeric keys follow.
_ORDER = {task: display_order(task) for task in TASKS}
# The three cards next to the primary metric.
_CARDS = {
    "binary": ["accuracy", "f1_macro", "pr_auc"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro"],
    "regression": ["mae", "r2", "mape"],
}
_NOT_SCALAR = {
    "n_rows",
    "primary",
    "positive_class",
    "per_class",
    "confusion_matrix",
    "calibration",
    "report_path",
}
_MATRIX_MAX_CLASSES = 20  # more classes: the most confused pairs instead of the matrix picture
_TOP_PAIRS = 10
_MAX_EXAMPLES = 15
_EXAMPLE_CHARS = 200
_TASK_NAMES = {
    "binary": "Binary classification",
    "multiclass": "Multiclass classification",
    "regression": "Regression",
}
_NO_PAIRS: dict[str, Any] = {"pairs": [], "n_mistakes": 0}
_BETTER = {"maximize": "higher is better", "minimize": "lower is better"}
# Why a metric has no value, per metric ({pos}: the positive class).
_MISSING = {
    "roc_auc": "Not defined: some class has no row in the scored data.",
    "pr_auc": "Not defined: no row of “{pos}” in the scored data.",
    "brier": "Only defined for two classes.",
    "r2": "Not defined for fewer than two rows.",
    "mape": "Not defined: every real value is 0.",
    "rmse_log": "Not defined: some values are -1 or below, so their log cannot be taken.",
}


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    task: str,
    metrics: Mapping[str, Any],
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: Sequence[Sequence[float]] | np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
    importance: Mapping[str, float] | None = None,
    trials: Sequence[Mapping[str, Any]] | None = None,
    data_summary: Mapping[str, Any] | None = None,
    validation: str = "",
    model_info: Mapping[str, Any] | None = None,
    notes: Sequence[str] | None = None,
    examples: pd.DataFrame | None = None,
    threshold: float | None = None,
    images: Sequence[Any] | None = None,
) -> Path:
    """Write the HTML report to ``path`` (parent folders are created) and return its path.

    ``metrics`` is the dict of :func:`~shipml.evaluate.metrics.classification_metrics` or
    :func:`~shipml.evaluate.metrics.regression_metrics`. For classification the confusion matrix
    comes from ``metrics`` when it has one (so that it matches the per-class table), else from
    ``y_true`` / ``y_pred``; ROC, precision-recall and calibration plots need ``proba`` (columns
    in the order of ``classes``). The search-history plot scores trials with the trials' own
    ``"metric"`` key if they have one, else ``metrics["primary"]``. Sections whose input is
    ``None`` are left out.

    Multiclass reports list the most confused pairs of classes (true -> predicted); past
    20 classes they replace the confusion-matrix picture, which would be unreadable.
    ``examples`` (classification): a DataFrame of the scored rows' text columns, in the order
    of ``y_true``; up to 15 misclassified rows are shown with their text, the most confident
    mistakes first. ``threshold`` (binary, with ``proba``): the decision threshold the labels
    use, marked on a plot of precision, recall and F1 against the threshold and on the ROC and
    precision-recall curves. ``images`` (classification): the scored rows' image cells (paths
    or bytes), in the order of ``y_true``; up to 48 are shown as thumbnails captioned
    "predicted / real", the mistakes first (evaluate/image_grid.py).
    """
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name such as {path / 'report.html'}")
    from shipml.evaluate import plots

    ctx = _Context(task, metrics, y_true, classes, data_summary)
    sections = [
        _section("metrics", "Key metrics", rows=_metric_rows(ctx), facts=_facts(ctx)),
        _section("plots", "Plots", **_plots(ctx, plots, y_true, y_pred, proba, threshold)),
    ]
    pairs = _confused_pairs(ctx, y_true, y_pred) if task == "multiclass" else _NO_PAIRS
    if task != "regression" and (metrics.get("per_class") or pairs["pairs"]):
        per_class = _per_class(ctx) if metrics.get("per_class") else []
        sections.append(_section("classes", "Results per class", per_class=per_class, **pairs))
    if task != "regression" and examples is not None:
        body = _error_examples(ctx, examples, y_true, y_pred, proba)
        sections.append(_section("errors", "Examples of errors", **body))
    if task != "regression" and images is not None:
        from shipml.evaluate.image_grid import image_grid

        grid = image_grid(images, y_true, y_pred, proba, ctx.classes)
        sections.append(_section("images", "Scored images", **grid))
    if importance:
        png = plots.importance_png(importance)
        sections.append(_section("importance", "Feature importance", png=png))
    if trials:
        sections.append(_section("search", "Search history", **_search(ctx, plots, trials)))
    if data_summary:
        sections.append(_section("data", "Data summary", **_data(plots, data_summary)))
    if model_info:
        sections.append(_section("model", "Model information", rows=info_rows(model_info)))
    if notes:
        sections.append(_section("notes", "Notes", notes=[str(n) for n in notes]))
    page = render(
        "model_report.html.j2",
        title=title,
        eyebrow=f"shipml model report · {_TASK_NAMES[task]}",
        badge=_badge(ctx),
        cards=_cards(ctx),
        validation=validation,
        n_rows=ctx.n_rows if isinstance(ctx.n_rows, int) else None,
        sections=sections,
    )
    return atomic_write(path, page)


def _section(anchor: str, heading: str, **data: Any) -> dict[str, Any]:
    """One <section> of the page: its anchor, heading, template and the data it shows."""
    return {"id": anchor, "heading": heading, "template": f"model/{anchor}.html.j2", **data}


# --------------------------------------------------------------------------------------------
# context: what every section needs to phrase things for this model


class _Context:
    def __init__(self, task, metrics, y_true, classes, data_summary) -> None:
        self.task = task
        self.metrics = dict(metrics)
        self.primary = self.metrics.get("primary") or _ORDER[task][0]
        self.n_rows = self.metrics.get("n_rows") or len(y_true)
        per_class = self.metrics.get("per_class") or {}
        self.raw_classes = list(classes) if classes is not None else None
        if classes is not None:
            self.classes = [str(c) for c in classes]
        elif self.metrics.get("confusion_matrix"):
            self.classes = list(self.metrics["confusion_matrix"]["labels"])
        elif per_class:
            self.classes = list(per_class)
        elif task != "regression":
            self.classes = sorted({str(v) for v in np.asarray(y_true).ravel()})
        else:
            self.classes = []
        self.positive = self.metrics.get("positive_class") or (
            self.classes[1] if task == "binary" and len(self.classes) == 2 else None
        )
        supports = {c: v.get("support", 0) for c, v in per_class.items()}
        total = sum(supports.values())
        self.shares = {c: s / total for c, s in supports.items()} if total else {}
        self.target = (data_summary or {}).get("target")

    @property
    def pos(self) -> str:
        """The positive class as the text says it (quoted), escaped by the template."""
        return f"“{self.positive}”" if self.positive is not None else "the positive class"


# --------------------------------------------------------------------------------------------
# sections


def _badge(ctx: _Context) -> str:
    if ctx.task == "binary" and ctx.positive is not None:
        return f"positive class: {ctx.positive}"
    if ctx.task == "multiclass":
        return f"{len(ctx.classes)} classes"
    return f"target: {ctx.target}" if ctx.target else ""


def _cards(ctx: _Context) -> list[dict[str, Any]]:
    names = [ctx.primary]
    names += [m for m in _CARDS[ctx.task] if m != ctx.primary and m in ctx.metrics][:3]
    cards = []
    for name in names:
        hint = _BETTER.get(METRIC_DIRECTIONS.get(name), "")
        if name == ctx.primary:
            hint = f"main score · {hint}" if hint else "main score"
        value = ctx.metrics.get(name)
        cards.append(
            {
                "label": metric_name(name),
                "value": metric_value(value, name),
                "hint": hint,
                "primary": name == ctx.primary,
                "alarm": False,
            }
        )
    return cards


def _metric_rows(ctx: _Context) -> list[dict[str, Any]]:
    names = [m for m in _ORDER[ctx.task] if m in ctx.metrics]
    # Other scores someone added (e.g. a business metric), unless they do not apply (None).
    names += [
        k
        for k, v in ctx.metrics.items()
        if k not in names and k not in _NOT_SCALAR and num(v) is not None
    ]
    return [
        {
            "name": name,
            "value": ctx.metrics.get(name),
            "better": _BETTER.get(METRIC_DIRECTIONS.get(name), ""),
            "primary": name == ctx.primary,
            "missing": _MISSING.get(name, "Not available.").format(pos=ctx.positive),
        }
        for name in names
    ]


def _facts(ctx: _Context) -> dict[str, Any]:
    """What the metric explanations (templates/model/explain.html.j2) say about this model."""
    k = max(len(ctx.classes), 2)
    return {
        "task": ctx.task,
        "pos": ctx.pos,
        "target": ctx.target,
        "k": k,
        "guess": f"{1 / k:.2g}",
        "log_k": math.log(k),
        "majority": max(ctx.shares.values()) if ctx.shares else None,
        "positive_share": ctx.shares.get(ctx.positive),
    }


def _plots(ctx: _Context, plots, y_true, y_pred, proba, threshold=None) -> dict[str, Any]:
    if ctx.task == "regression":
        png = plots.residuals_png(y_true, y_pred, target=ctx.target)
        return {"task": "regression", "residuals": png}
    matrix, labels = _confusion(ctx, y_true, y_pred)
    out: dict[str, Any] = {"task": ctx.task, "n_labels": len(labels), "pos": ctx.pos}
    out["matrix"] = (
        None if len(labels) > _MATRIX_MAX_CLASSES else plots.confusion_matrix_png(matrix, labels)
    )
    out.update(roc=None, pr=None, threshold_marked=False)
    if proba is None:
        return out
    classes = _proba_classes(ctx, proba)
    marked = threshold if ctx.task == "binary" else None
    out["roc"] = plots.roc_curve_png(y_true, proba, classes, threshold=marked)
    out["pr"] = plots.pr_curve_png(y_true, proba, classes, threshold=marked)
    out["threshold_marked"] = marked is not None
    if ctx.task == "binary":
        out["calibration"] = plots.calibration_png(y_true, proba, classes)
        out["threshold_png"] = plots.threshold_png(y_true, proba, classes, threshold)
        out["threshold"] = threshold
    return out


def _per_class(ctx: _Context) -> list[dict[str, Any]]:
    return [
        {
            "label": label,
            "support": m.get("support"),
            "share": ctx.shares.get(label),
            "precision": m.get("precision"),
            "recall": m.get("recall"),
            "f1": m.get("f1"),
        }
        for label, m in ctx.metrics["per_class"].items()
    ]


def _confused_pairs(ctx: _Context, y_true, y_pred) -> dict[str, Any]:
    """The off-diagonal cells of the confusion matrix with the most rows."""
    matrix, labels = _confusion(ctx, y_true, y_pred)
    m = np.asarray(matrix, dtype=np.int64)
    off = [(int(m[i, j]), i, j) for i, j in zip(*np.nonzero(m)) if i != j] if m.size else []
    if not off:
        return _NO_PAIRS
    real = m.sum(axis=1)
    off.sort(key=lambda cij: (-cij[0], -cij[0] / real[cij[1]], cij[1], cij[2]))
    pairs = [
        {"real": labels[i], "predicted": labels[j], "count": count, "share": count / real[i]}
        for count, i, j in off[:_TOP_PAIRS]
    ]
    return {"pairs": pairs, "n_mistakes": len(off)}


def _error_examples(ctx: _Context, examples, y_true, y_pred, proba) -> dict[str, Any]:
    """Up to 15 misclassified rows with their (clipped) text, most confident first."""
    yt = [str(v) for v in np.asarray(y_true, dtype=object).ravel()]
    yp = [str(v) for v in np.asarray(y_pred, dtype=object).ravel()]
    if len(examples) != len(yt) or len(yp) != len(yt):
        raise DataError(
            f"examples has {len(examples)} rows but y_true has {len(yt)} and y_pred {len(yp)}: "
            "give the text of the scored rows, in the same order"
        )
    wrong = [i for i in range(len(yt)) if yt[i] != yp[i]]
    confidence = _confidence(ctx, proba, yp, wrong)
    if confidence is not None:
        wrong.sort(key=lambda i: -confidence.get(i, 0.0))
    columns = list(examples.columns)
    rows = [
        {
            "texts": [_clip(examples[c].iloc[i]) for c in columns],
            "real": yt[i],
            "predicted": yp[i],
            "probability": confidence.get(i) if confidence is not None else None,
        }
        for i in wrong[:_MAX_EXAMPLES]
    ]
    return {
        "rows": rows,
        "columns": columns,
        "n_wrong": len(wrong),
        "n_scored": len(yt),
        "by_confidence": confidence is not None,
        "max_chars": _EXAMPLE_CHARS,
    }


def _confidence(ctx: _Context, proba, yp: list[str], wrong: list[int]) -> dict[int, float] | None:
    """The predicted class's probability for each wrong row, or None without usable proba."""
    if proba is None:
        return None
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1:  # binary, probability of the positive class
        p = np.column_stack([1.0 - p, p])
    if p.shape[1] != len(ctx.classes):
        return None
    column = {c: j for j, c in enumerate(ctx.classes)}
    return {i: float(p[i, column[yp[i]]]) for i in wrong if yp[i] in column}


def _clip(value: Any) -> str | None:
    """A cell of text on one line, cut to _EXAMPLE_CHARS characters; None when missing."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    text = " ".join(str(value).split())
    if len(text) > _EXAMPLE_CHARS:
        text = text[: _EXAMPLE_CHARS - 1].rstrip() + "…"
    return text


def _search(ctx: _Context, plots, trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    metric = next((str(t["metric"]) for t in trials if t.get("metric")), ctx.primary)
    direction = METRIC_DIRECTIONS.get(metric, "maximize")
    states = [str(t.get("state") or "complete").rsplit(".", 1)[-1].lower() for t in trials]
    values = [num(t.get("value")) for t in trials]
    scored = [
        (v, t)
        for v, t, s in zip(values, trials, states, strict=True)
        if v is not None and s not in ("pruned", "fail", "failed")
    ]
    elapsed = [e for e in (num(t.get("elapsed_s")) for t in trials) if e is not None]
    counts: dict[str, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    best = None
    if scored:
        pick = max if direction == "maximize" else min
        value, trial = pick(scored, key=lambda vt: vt[0])
        best = {
            "value": value,
            "number": trial.get("number", "?"),
            "name": trial.get("name") or "",
            "elapsed": num(trial.get("elapsed_s")),
        }
    return {
        "png": plots.trials_png(trials, metric, direction),
        "metric": metric,
        "n_trials": len(trials),
        "elapsed": max(elapsed) if elapsed else None,
        "states": sorted(counts.items()),
        "best": best,
    }


def _data(plots, summary: Mapping[str, Any]) -> dict[str, Any]:
    columns = summary.get("columns") or []
    dropped = summary.get("dropped") or []
    facts = [
        (kind, value)
        for kind, value in (
            ("rows", summary.get("rows")),
            ("target", summary.get("target") or None),
            ("columns", len(columns) or None),
            ("dropped", len(dropped) or None),
        )
        if value is not None
    ]
    balance = summary.get("class_balance")
    return {
        "facts": facts,
        "balance": plots.class_balance_png(balance) if balance else None,
        "columns": [
            {
                "name": c.get("name"),
                "kind": c.get("kind") or "—",
                "missing": num(c.get("missing_pct")),
                "note": c.get("note") or "",
            }
            for c in columns
        ],
        "dropped": [{"name": d.get("name"), "reason": d.get("reason") or ""} for d in dropped],
    }


# --------------------------------------------------------------------------------------------
# building blocks


def _confusion(ctx: _Context, y_true, y_pred) -> tuple[list[list[int]], list[str]]:
    cm = ctx.metrics.get("confusion_matrix")
    if cm and cm.get("matrix") is not None:
        return cm["matrix"], list(cm["labels"])
    from sklearn.metrics import confusion_matrix

    labels = list(ctx.classes)
    yt = np.asarray([str(v) for v in np.asarray(y_true).ravel()], dtype=object)
    yp = np.asarray([str(v) for v in np.asarray(y_pred).ravel()], dtype=object)
    if len(yt) != len(yp):
        raise DataError(f"y_true has {len(yt)} values but y_pred has {len(yp)}")
    extra = sorted((set(yt) | set(yp)) - set(labels))
    labels += extra
    return confusion_matrix(yt, yp, labels=labels).tolist(), labels


def _proba_classes(ctx: _Context, proba) -> list[Any]:
    k = np.shape(proba)[1] if np.ndim(proba) == 2 else 2
    if len(ctx.classes) != k:
        raise DataError(
            f"proba has {k} columns but there are {len(ctx.classes)} classes; pass classes= "
            "in the order of the proba columns"
        )
    return ctx.raw_classes if ctx.raw_classes is not None else ctx.classes
