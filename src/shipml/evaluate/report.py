"""One self-contained HTML report per model: metrics explained in plain words, plots, data.

The file has no external reference at all (CSS inlined, plots as base64 PNG data URIs, no
JavaScript), so it can be mailed, attached to a ticket or opened offline years later. Every
string that comes from the user's data (column names, class labels, notes) is HTML-escaped.
The file is written atomically: readers see the old report or the new one, never half of one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipml.errors import DataError, ShipmlError
from shipml.evaluate.markup import (
    atomic_write,
    esc,
    figure,
    fmt,
    kv_table,
    metric_name,
    metric_value,
    num,
    page,
    pct,
    table,
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
    use, marked on a plot of precision, recall and F1 against the threshold.
    """
    if task not in TASKS:
        raise ShipmlError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    path = Path(path)
    if path.is_dir():
        raise ShipmlError(f"{path} is a folder; give a file name such as {path / 'report.html'}")
    from shipml.evaluate import plots

    ctx = _Context(task, metrics, y_true, classes, data_summary)
    parts: list[tuple[str, str, str]] = []  # (anchor, heading, body)
    parts.append(("metrics", "Key metrics", _metrics_table(ctx)))
    parts.append(("plots", "Plots", _plots(ctx, plots, y_true, y_pred, proba, threshold)))
    pairs = _confused_pairs(ctx, y_true, y_pred) if task == "multiclass" else ""
    if task != "regression" and (metrics.get("per_class") or pairs):
        per_class = _per_class(ctx) if metrics.get("per_class") else ""
        parts.append(("classes", "Results per class", per_class + pairs))
    if task != "regression" and examples is not None:
        body = _error_examples(ctx, examples, y_true, y_pred, proba)
        parts.append(("errors", "Examples of errors", body))
    if importance:
        parts.append(("importance", "Feature importance", _importance(plots, importance)))
    if trials:
        parts.append(("search", "Search history", _search(ctx, plots, trials)))
    if data_summary:
        parts.append(("data", "Data summary", _data(ctx, plots, data_summary)))
    if model_info:
        parts.append(("model", "Model information", kv_table(model_info)))
    if notes:
        items = "".join(f"<li>{esc(n)}</li>" for n in notes)
        parts.append(("notes", "Notes", f'<ul class="notes">{items}</ul>'))

    body = _header(ctx, title, validation, [(a, h) for a, h, _ in parts])
    for anchor, heading, content in parts:
        body += f'<section id="{anchor}"><h2>{heading}</h2>{content}</section>\n'
    return atomic_write(path, page(title, body))


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


# --------------------------------------------------------------------------------------------
# sections


def _header(ctx: _Context, title: str, validation: str, toc: list[tuple[str, str]]) -> str:
    task = _TASK_NAMES[ctx.task]
    if ctx.task == "binary" and ctx.positive is not None:
        badge = f"positive class: {esc(ctx.positive)}"
    elif ctx.task == "multiclass":
        badge = f"{len(ctx.classes)} classes"
    else:
        badge = f"target: {esc(ctx.target)}" if ctx.target else ""
    badge_html = f'<span class="badge">{badge}</span>' if badge else ""
    cards = [_card(ctx, ctx.primary, primary=True)]
    cards += [_card(ctx, m) for m in _CARDS[ctx.task] if m != ctx.primary and m in ctx.metrics][:3]
    rows = f"{ctx.n_rows:,} rows scored" if isinstance(ctx.n_rows, int) else ""
    how = esc(validation) if validation else "How the score was measured was not recorded."
    links = "".join(f'<a href="#{a}">{esc(h)}</a>' for a, h in toc)
    return (
        '<header class="hero">'
        f'<div class="eyebrow">shipml model report · {task}{badge_html}</div>'
        f"<h1>{esc(title)}</h1>"
        f'<div class="cards">{"".join(cards)}</div>'
        f'<p class="validation"><strong>How it was measured:</strong> {how}'
        f"{f' <span class=muted>({rows})</span>' if rows else ''}</p>"
        f'<nav class="toc">{links}</nav>'
        "</header>\n"
    )


def _card(ctx: _Context, name: str, primary: bool = False) -> str:
    value = ctx.metrics.get(name)
    direction = METRIC_DIRECTIONS.get(name)
    hint = {"maximize": "higher is better", "minimize": "lower is better"}.get(direction, "")
    if primary:
        hint = f"main score · {hint}" if hint else "main score"
    return (
        f'<div class="card{" primary" if primary else ""}">'
        f'<div class="label">{esc(metric_name(name))}</div>'
        f'<div class="value">{metric_value(name, value)}</div>'
        f'<div class="hint">{hint}</div></div>'
    )


def _metrics_table(ctx: _Context) -> str:
    names = [m for m in _ORDER[ctx.task] if m in ctx.metrics]
    # Other scores someone added (e.g. a business metric), unless they do not apply (None).
    names += [
        k
        for k, v in ctx.metrics.items()
        if k not in names and k not in _NOT_SCALAR and num(v) is not None
    ]
    rows = []
    for name in names:
        value = ctx.metrics.get(name)
        direction = METRIC_DIRECTIONS.get(name)
        better = {"maximize": "higher is better", "minimize": "lower is better"}.get(direction, "")
        explain = _explain(ctx, name) if value is not None else _why_missing(ctx, name)
        cls = ' class="primary"' if name == ctx.primary else ""
        rows.append(
            f"<tr{cls}><td class=name>{esc(metric_name(name))}</td>"
            f"<td class=num>{metric_value(name, value)}</td>"
            f"<td class=better>{better}</td><td class=text>{explain}</td></tr>"
        )
    intro = (
        '<p class="intro">The main score is marked ★. Each line says in plain words what the '
        "number means.</p>"
    )
    head = "<tr><th>Metric</th><th class=num>Value</th><th></th><th>What it means</th></tr>"
    return f"{intro}{table(head, rows)}"


def _plots(ctx: _Context, plots, y_true, y_pred, proba, threshold=None) -> str:
    if ctx.task == "regression":
        how = (
            "Left: each dot is a row; dots on the dashed line are perfect predictions, dots "
            "above it are over-estimates. Right: how often errors of each size happen; a narrow "
            "peak centred on 0 is what you want."
        )
        png = plots.residuals_png(y_true, y_pred, target=ctx.target)
        return figure(png, "Predicted vs actual", how, wide=True)

    matrix, labels = _confusion(ctx, y_true, y_pred)
    figs: list[str] = []
    if len(labels) > _MATRIX_MAX_CLASSES:
        figs.append(
            f'<p class="muted">With {len(labels):,} classes the confusion matrix is too large to '
            "read as a picture: the most confused pairs of classes are listed under "
            '<a href="#classes">Results per class</a>.</p>'
        )
    else:
        figs.append(
            figure(
                plots.confusion_matrix_png(matrix, labels),
                "Confusion matrix",
                "Rows are the real classes, columns what the model predicted. The diagonal holds "
                "the correct answers; each cell shows how many rows and which share of that real "
                "class ended there. Dark cells off the diagonal are the mistakes the model makes "
                "most.",
                wide=len(labels) > 10,
            )
        )
    if proba is None:
        figs.append(
            '<p class="muted">No predicted probabilities were given, so the ROC, '
            "precision-recall and calibration plots are left out.</p>"
        )
        return "".join(figs)

    classes = _proba_classes(ctx, proba)
    pos = f"“{esc(ctx.positive)}”" if ctx.positive is not None else "the positive class"
    if ctx.task == "binary":
        roc_how = (
            f"How well the model ranks {pos} rows above the others, at every possible cut-off. "
            "The closer the curve hugs the top-left corner, the better; the dashed diagonal is "
            "guessing. The AUC is the area under the curve."
        )
        pr_how = (
            f"If you act on the rows the model flags as {pos}: recall is the share of all {pos} "
            "rows you catch, precision the share of flagged rows that really are. Moving right "
            "catches more but with more false alarms. Useful when the class is rare."
        )
    else:
        roc_how = (
            "One curve per class (the 10 largest at most), that class against all the others. "
            "Curves near the top-left corner are classes the model separates well; the dashed "
            "diagonal is guessing."
        )
        pr_how = (
            "One curve per class against all the others: recall is the share of that class the "
            "model finds, precision the share of its answers for that class that are right."
        )
    figs.append(figure(plots.roc_curve_png(y_true, proba, classes), "ROC curve", roc_how))
    figs.append(figure(plots.pr_curve_png(y_true, proba, classes), "Precision-recall", pr_how))
    if ctx.task == "binary":
        how = (
            f"Left: when the model says “30% chance of {pos}”, does it happen about 30% of "
            "the time? Points on the dashed line mean the probabilities can be taken at face "
            "value. Right: how many rows got each predicted probability, split by what really "
            "happened."
        )
        png = plots.calibration_png(y_true, proba, classes)
        figs.append(figure(png, "Calibration", how, wide=True))
        figs.append(_threshold_figure(ctx, plots, y_true, proba, classes, threshold))
    return "".join(figs)


def _threshold_figure(ctx: _Context, plots, y_true, proba, classes, threshold) -> str:
    pos = f"“{esc(ctx.positive)}”"
    used = (
        f"The red line is the threshold the labels use ({fmt(threshold)})"
        if threshold is not None
        else "No decision threshold was given: labels are the most likely class (0.5)"
    )
    how = (
        f"A row is labelled {pos} when its probability is at least the threshold. Lowering it "
        f"flags more rows: recall (the share of {pos} rows caught) rises, precision (the share "
        f"of flagged rows that really are {pos}) falls; F1 balances the two. {used}. To use "
        "another one, predict with --threshold (or model.predict(df, threshold=...)), or train "
        "with --metric f1 to have it chosen for F1."
    )
    png = plots.threshold_png(y_true, proba, classes, threshold)
    return figure(png, "Decision threshold", how)


def _per_class(ctx: _Context) -> str:
    rows = []
    for label, m in ctx.metrics["per_class"].items():
        share = ctx.shares.get(label)
        rows.append(
            f"<tr><td class=wrap>{esc(label)}</td><td class=num>{fmt(m.get('support'))}</td>"
            f"<td class=num>{pct(share * 100) if share is not None else '—'}</td>"
            f"<td class=num>{fmt(m.get('precision'), True)}</td>"
            f"<td class=num>{fmt(m.get('recall'), True)}</td>"
            f"<td class=num>{fmt(m.get('f1'), True)}</td></tr>"
        )
    intro = (
        '<p class="intro"><b>Precision</b>: when the model answers this class, how often it is '
        "right. <b>Recall</b>: of the rows really in this class, the share the model finds. "
        "<b>F1</b> balances the two. A class with few rows usually scores lower.</p>"
    )
    head = (
        "<tr><th>Class</th><th class=num>Rows</th><th class=num>Share</th>"
        "<th class=num>Precision</th><th class=num>Recall</th><th class=num>F1</th></tr>"
    )
    return f"{intro}{table(head, rows)}"


def _confused_pairs(ctx: _Context, y_true, y_pred) -> str:
    """The off-diagonal cells of the confusion matrix with the most rows, as a table."""
    matrix, labels = _confusion(ctx, y_true, y_pred)
    m = np.asarray(matrix, dtype=np.int64)
    if m.size == 0:
        return ""
    real = m.sum(axis=1)
    off = [(int(m[i, j]), i, j) for i, j in zip(*np.nonzero(m)) if i != j]
    if not off:
        return ""
    off.sort(key=lambda cij: (-cij[0], -cij[0] / real[cij[1]], cij[1], cij[2]))
    rows = [
        f"<tr><td class=wrap>{esc(labels[i])}</td><td class=wrap>{esc(labels[j])}</td>"
        f"<td class=num>{count:,}</td><td class=num>{pct(100 * count / real[i])}</td></tr>"
        for count, i, j in off[:_TOP_PAIRS]
    ]
    shown = min(len(off), _TOP_PAIRS)
    intro = (
        f'<p class="intro">The {shown} mix-up{"s" if shown != 1 else ""} the model makes most '
        f"often, out of {len(off):,} kinds of mistake. Share: of the rows really in that class, "
        "how many were answered as the other. Classes confused often may mean similar "
        "meanings, or labels to merge or to define more clearly.</p>"
    )
    head = (
        "<tr><th>Real class</th><th>Predicted as</th><th class=num>Rows</th>"
        "<th class=num>Share</th></tr>"
    )
    return f"<h3>Most confused classes</h3>{intro}{table(head, rows)}"


def _error_examples(ctx: _Context, examples, y_true, y_pred, proba) -> str:
    """Up to 15 misclassified rows with their (clipped, escaped) text, most confident first."""
    yt = [str(v) for v in np.asarray(y_true, dtype=object).ravel()]
    yp = [str(v) for v in np.asarray(y_pred, dtype=object).ravel()]
    if len(examples) != len(yt) or len(yp) != len(yt):
        raise DataError(
            f"examples has {len(examples)} rows but y_true has {len(yt)} and y_pred {len(yp)}: "
            "give the text of the scored rows, in the same order"
        )
    wrong = [i for i in range(len(yt)) if yt[i] != yp[i]]
    if not wrong:
        return '<p class="muted">No scored row was misclassified.</p>'
    confidence = None
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        if p.ndim == 1:  # binary, probability of the positive class
            p = np.column_stack([1.0 - p, p])
        column = {c: j for j, c in enumerate(ctx.classes)}
        if p.shape[1] == len(ctx.classes):
            confidence = {i: float(p[i, column[yp[i]]]) for i in wrong if yp[i] in column}
            wrong.sort(key=lambda i: -confidence.get(i, 0.0))
    shown = wrong[:_MAX_EXAMPLES]
    columns = list(examples.columns)
    rows = []
    for i in shown:
        texts = "".join(f"<td class=example>{_clip(examples[c].iloc[i])}</td>" for c in columns)
        prob = confidence.get(i) if confidence is not None else None
        rows.append(
            f"<tr>{texts}<td class=wrap>{esc(yt[i])}</td><td class=wrap>{esc(yp[i])}</td>"
            f"<td class=num>{pct(prob * 100) if prob is not None else '—'}</td></tr>"
        )
    order = "the most confident mistakes first" if confidence is not None else "in data order"
    intro = (
        f'<p class="intro">{len(shown)} of the {len(wrong):,} misclassified rows '
        f"({pct(100 * len(wrong) / len(yt))} of {len(yt):,}), {order}. Reading them often "
        "shows mislabelled rows, classes that overlap, or wording the model has not seen. "
        f"Texts are cut at {_EXAMPLE_CHARS} characters.</p>"
    )
    head = (
        "".join(f"<th>{esc(c)}</th>" for c in columns)
        + "<th>Real class</th><th>Predicted</th><th class=num>Probability</th>"
    )
    return f"{intro}{table(f'<tr>{head}</tr>', rows)}"


def _clip(value: Any) -> str:
    """A cell of text, cut to _EXAMPLE_CHARS characters and HTML-escaped."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return '<span class="na">—</span>'
    text = " ".join(str(value).split())
    if len(text) > _EXAMPLE_CHARS:
        text = text[: _EXAMPLE_CHARS - 1].rstrip() + "…"
    return esc(text)


def _importance(plots, importance: Mapping[str, float]) -> str:
    return figure(
        plots.importance_png(importance),
        "Feature importance",
        "How much the model relies on each column to make its predictions. A column can be "
        "important without causing the outcome (it may only go along with it), and two similar "
        "columns share their importance.",
    )


def _search(ctx: _Context, plots, trials: Sequence[Mapping[str, Any]]) -> str:
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
    summary = f"{len(trials):,} trial{'s' if len(trials) != 1 else ''}"
    if elapsed:
        summary += f" in {fmt(max(elapsed))} s"
    counts: dict[str, int] = {}
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    summary += " (" + ", ".join(f"{n:,} {esc(s)}" for s, n in sorted(counts.items())) + ")"
    if scored:
        pick = max if direction == "maximize" else min
        best_value, best = pick(scored, key=lambda vt: vt[0])
        who = f" ({esc(best['name'])})" if best.get("name") else ""
        when = num(best.get("elapsed_s"))
        summary += (
            f". Best {esc(metric_name(metric))}: <b>{fmt(best_value)}</b>, "
            f"trial {esc(best.get('number', '?'))}{who}"
            + (f", after {fmt(when)} s" if when is not None else "")
        )
    how = (
        f"<p>{summary}.</p><p>Each dot is one configuration tried during the automatic search; "
        "the orange line is the best score found so far. A line that flattens early means more "
        "search time would probably not help much.</p>"
    )
    png = plots.trials_png(trials, metric, direction)
    return figure(png, "Search history", how, raw_html=True)


def _data(ctx: _Context, plots, summary: Mapping[str, Any]) -> str:
    out = []
    facts = []
    if summary.get("rows") is not None:
        facts.append(f"<b>{fmt(summary['rows'])}</b> rows")
    if summary.get("target"):
        facts.append(f"target column <b>{esc(summary['target'])}</b>")
    columns = summary.get("columns") or []
    if columns:
        facts.append(f"<b>{len(columns):,}</b> columns used")
    dropped = summary.get("dropped") or []
    if dropped:
        facts.append(f"<b>{len(dropped):,}</b> left out")
    if facts:
        out.append(f"<p>{', '.join(facts)}.</p>")

    balance = summary.get("class_balance")
    if balance:
        out.append("<h3>Class balance</h3>")
        out.append(
            figure(
                plots.class_balance_png(balance),
                "Rows per class",
                "How many rows of each class the data has. When one class is much rarer, accuracy "
                "can look good while the rare class is missed: check its recall above.",
            )
        )
    if columns:
        rows = []
        for col in columns:
            missing = num(col.get("missing_pct"))
            miss = pct(missing) if missing is not None else '<span class="na">—</span>'
            if missing is not None and missing >= 30:
                miss = f'<span class="warn">{miss}</span>'
            rows.append(
                f"<tr><td class=wrap>{esc(col.get('name'))}</td>"
                f"<td><span class=kind>{esc(col.get('kind') or '—')}</span></td>"
                f"<td class=num>{miss}</td><td class=text>{esc(col.get('note') or '')}</td></tr>"
            )
        head = "<tr><th>Column</th><th>Kind</th><th class=num>Missing</th><th>Note</th></tr>"
        out.append(f"<h3>Columns</h3>{table(head, rows)}")
    if dropped:
        rows = [
            f"<tr><td class=wrap>{esc(d.get('name'))}</td>"
            f"<td class=text>{esc(d.get('reason') or '')}</td></tr>"
            for d in dropped
        ]
        head = "<tr><th>Column</th><th>Why it was left out</th></tr>"
        out.append(f"<h3>Columns left out</h3>{table(head, rows)}")
    return "".join(out) or '<p class="muted">No data summary recorded.</p>'


# --------------------------------------------------------------------------------------------
# metric explanations


def _explain(ctx: _Context, name: str) -> str:
    k = max(len(ctx.classes), 2)
    pos = f"“{esc(ctx.positive)}”" if ctx.positive is not None else "the positive class"
    units = f"the units of <b>{esc(ctx.target)}</b>" if ctx.target else "the target's units"
    target = f"<b>{esc(ctx.target)}</b>" if ctx.target else "the target"
    majority = max(ctx.shares.values()) if ctx.shares else None
    texts: dict[str, Callable[[], str]] = {
        "accuracy": lambda: (
            "Share of rows where the predicted class is the right one."
            + (
                f" Always answering the most common class would already score {fmt(majority)}."
                if majority is not None
                else ""
            )
        ),
        "balanced_accuracy": lambda: (
            "Accuracy averaged over the classes, so a rare class counts as much as a common "
            f"one; guessing scores about {1 / k:.2g}, 1 = perfect."
        ),
        "precision_macro": lambda: (
            "When the model answers a class, how often it is right; averaged over the classes."
        ),
        "recall_macro": lambda: (
            "Of the rows really in a class, the share the model finds; averaged over the classes."
        ),
        "f1_macro": lambda: (
            "Balance of precision and recall, averaged over the classes with equal weight; "
            "1 = perfect."
        ),
        "f1_weighted": lambda: (
            "Like F1 (macro), but each class counts in proportion to its number of rows."
        ),
        "f1": lambda: (
            f"Balance of precision and recall for {pos} alone (the rows the model flags); "
            "1 = perfect. It moves with the decision threshold."
        ),
        "mcc": lambda: (
            "Matthews correlation between the predicted and the real classes: uses every cell "
            "of the confusion matrix, so it stays honest when a class is rare; 0 = guessing, "
            "1 = perfect."
        ),
        "roc_auc": lambda: (
            f"Chance that a random {pos} row gets a higher score than a random other row; "
            "0.5 = guessing, 1 = perfect."
            if ctx.task == "binary"
            else "Chance that a row of a class is ranked above a row of another class, for each "
            "class against the rest, averaged; 0.5 = guessing, 1 = perfect."
        ),
        "pr_auc": lambda: (
            f"Average precision for {pos}: how clean the list of rows flagged as {pos} is, from "
            "the most to the least likely; 1 = perfect"
            + (
                f", guessing scores the share of {pos} rows ({fmt(ctx.shares[ctx.positive])})."
                if ctx.positive in ctx.shares
                else "."
            )
            if ctx.task == "binary"
            else "Average precision of each class against the rest, averaged over the classes; "
            "1 = perfect."
        ),
        "log_loss": lambda: (
            "Penalty for confident mistakes in the predicted probabilities; 0 = perfect. "
            + (
                "Always saying 50/50 scores 0.693."
                if k == 2
                else f"Always giving each of the {k} classes the same chance scores "
                f"{fmt(math.log(k))}."
            )
        ),
        "brier": lambda: (
            f"Average squared gap between the predicted chance of {pos} and what happened "
            "(0 or 1); 0 = perfect, always saying 50% scores 0.25."
        ),
        "mae": lambda: f"Average size of an error, in {units}.",
        "rmse": lambda: (
            f"Typical size of an error, in {units}; big errors weigh more than in the MAE."
        ),
        "median_ae": lambda: (
            f"Half of the predictions are closer than this to the real value (in {units})."
        ),
        "r2": lambda: (
            f"Share of the ups and downs of {target} that the model explains; 1 = perfect, "
            "0 = no better than always predicting the average, below 0 = worse than that."
        ),
        "mape": lambda: (
            "Average error as a percentage of the real value (rows where the real value is 0 "
            "are left out). Misleading when real values are close to 0."
        ),
        "rmse_log": lambda: (
            "RMSE of log(1 + value): judges errors relative to size, so being 10 off on 100 "
            "weighs about as much as 100 off on 1,000."
        ),
    }
    return texts[name]() if name in texts else ""


def _why_missing(ctx: _Context, name: str) -> str:
    reasons = {
        "roc_auc": "Not defined: some class has no row in the scored data.",
        "pr_auc": f"Not defined: no row of “{esc(ctx.positive)}” in the scored data.",
        "brier": "Only defined for two classes.",
        "r2": "Not defined for fewer than two rows.",
        "mape": "Not defined: every real value is 0.",
        "rmse_log": "Not defined: some values are -1 or below, so their log cannot be taken.",
    }
    return f'<span class="na">{reasons.get(name, "Not available.")}</span>'


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


# --------------------------------------------------------------------------------------------
# formatting
