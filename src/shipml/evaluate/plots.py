"""Evaluation plots as PNG bytes, ready to embed in the HTML report as data URIs.

matplotlib is imported inside the functions (``shipml --help`` must not import it). Figures are
built with the object-oriented API (``matplotlib.figure.Figure`` rendered by the Agg canvas) and
never through ``pyplot``: no window is opened, no global figure list grows in a long-running
server, and the caller's own pyplot backend (e.g. in a notebook) is left untouched.

Every function draws something even for degenerate input (a single class, an empty dict): a
short message in the figure instead of an exception, so a report is always complete.
Text from user data (class labels, column names) is shown literally: ``$`` is escaped so that
matplotlib does not read it as math, and long names are shortened.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from shipml.errors import DataError
from shipml.evaluate.metrics import (
    METRIC_DIRECTIONS,
    METRIC_NAMES,
    _calibration,
    _check_proba,
    _encode,
)

__all__ = [
    "BLUE",
    "ORANGE",
    "calibration_png",
    "class_balance_png",
    "confusion_matrix_png",
    "draw_message",
    "figure_png",
    "importance_png",
    "new_figure",
    "plot_label",
    "plot_style",
    "pr_curve_png",
    "residuals_png",
    "roc_curve_png",
    "threshold_png",
    "trials_png",
]

DPI = 110
#: One palette for every figure (and the report's CSS accents).
PALETTE = [
    "#2563eb",  # blue: the model
    "#f97316",  # orange: best so far / second series
    "#16a34a",
    "#dc2626",
    "#9333ea",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
]
BLUE, ORANGE = PALETTE[0], PALETTE[1]
GREY = "#9ca3af"
_MAX_CURVES = 10
_MAX_BARS = 30
_MAX_POINTS = 5000
# Trial states (Optuna's and shipml's own) in plain words.
_STATE_WORDS = {
    "pruned": "stopped early",
    "fail": "failed",
    "running": "unfinished",
    "waiting": "unfinished",
}

_RC = {
    "font.size": 10,
    "axes.titlesize": 11.5,
    "axes.titlelocation": "left",
    "axes.titlepad": 10,
    "axes.labelsize": 10,
    "axes.labelcolor": "#1f2937",
    "axes.edgecolor": "#9ca3af",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": "#374151",
    "ytick.color": "#374151",
    "legend.frameon": False,
    "legend.fontsize": 9,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
}


# --------------------------------------------------------------------------------------------
# classification


def confusion_matrix_png(matrix: Sequence[Sequence[int]], labels: Sequence[Any]) -> bytes:
    """Counts and row percentages (share of each actual class); rows = actual, columns = predicted.

    ``matrix`` and ``labels`` are ``metrics["confusion_matrix"]["matrix"]`` and ``["labels"]``.
    Drawn by scikit-learn's ``ConfusionMatrixDisplay`` on the row shares (so that a rare class
    is as visible as a common one), its cell texts replaced by count and share.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    m = np.asarray(matrix, dtype=float)
    k = len(labels)
    if m.shape != (k, k):
        raise DataError(f"confusion matrix must be {k}x{k} for {k} labels, got {m.shape}")
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    names = [plot_label(label, 22) for label in labels]
    side = min(max(4.8, 0.45 * k + 2.4), 10.5)  # ~1,150 px at most: readable in a 1,000 px page
    font = max(6.0, min(10.5, 120.0 / k))
    with plot_style():
        fig, ax = new_figure(side + 0.6, side)
        ax.grid(False)
        display = ConfusionMatrixDisplay(share, display_labels=names)
        display.plot(ax=ax, cmap="Blues", colorbar=False, im_kw={"vmin": 0.0, "vmax": 1.0,
                     "aspect": "auto"}, text_kw={"fontsize": font})  # fmt: skip
        for (i, j), cell in np.ndenumerate(display.text_):
            empty = m[i, j] == 0 and k > 8  # empty cells stay blank: the eye finds errors faster
            text = f"{int(m[i, j]):,}\n{share[i, j]:.0%}" if k <= 15 else f"{share[i, j]:.0%}"
            cell.set_text("" if empty else text)
            cell.set_color("white" if share[i, j] > 0.55 else "#1f2937")
        long = k > 8 or max((len(n) for n in names), default=0) > 6
        ax.set_xticks(range(k), names, rotation=40 if long else 0, ha="right" if long else "center",
                      rotation_mode="anchor", fontsize=min(10.0, font + 1))  # fmt: skip
        ax.set_yticks(range(k), names, fontsize=min(10.0, font + 1))
        for side_name in ("top", "right", "left", "bottom"):
            ax.spines[side_name].set_visible(False)
        ax.tick_params(length=0)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("Actual class")
        what = "count and % of the actual class" if k <= 15 else "% of the actual class"
        ax.set_title(f"Confusion matrix ({what})")
        return figure_png(fig)


def roc_curve_png(
    y_true: Sequence[Any],
    proba: Sequence[Sequence[float]],
    classes: Sequence[Any],
    threshold: float | None = None,
) -> bytes:
    """ROC curve of the positive class ``classes[1]``; multiclass: one-vs-rest for the biggest.

    Curves by scikit-learn's ``RocCurveDisplay``; binary: the point the decision ``threshold``
    picks is marked on the curve.
    """
    from sklearn.metrics import RocCurveDisplay

    codes, p, names = _prepare(y_true, proba, classes)
    with plot_style():
        fig, ax = new_figure(6.0, 4.6)
        shown = _curve_classes(codes, len(names))
        for n_drawn, j in enumerate(shown):
            yj = codes == j
            name = "Model" if len(names) == 2 else plot_label(names[j], 24)
            display = RocCurveDisplay.from_predictions(
                yj, p[:, j], pos_label=True, ax=ax, name=name,
                curve_kwargs={"lw": 2, "color": PALETTE[n_drawn % len(PALETTE)]},
                plot_chance_level=n_drawn == 0,
                chance_level_kw={"ls": "--", "color": GREY, "lw": 1},
            )  # fmt: skip
            display.line_.set_label(f"{name}: AUC {display.roc_auc:.3f}")
            if n_drawn == 0:
                chance = display.chance_level_
                chance.set_label("Guessing (AUC 0.5)")
            if len(names) == 2:
                ax.fill_between(display.fpr, display.tpr, alpha=0.08, color=BLUE)
                _mark_threshold(ax, yj, p[:, 1] >= threshold if threshold is not None else None)
        if not shown:
            draw_message(ax, "Rows of at least two classes are needed for this curve.")
        _unit_axes(ax)
        ax.set_xlabel("False positive rate (share of negatives wrongly flagged)")
        ax.set_ylabel("True positive rate (share of positives found)")
        ax.set_title(_curve_title("ROC curve", names, shown))
        if shown:  # guessing first, then the curves
            handles, labels = ax.get_legend_handles_labels()
            first = sorted(range(len(handles)), key=lambda i: handles[i] is not chance)
            ax.legend([handles[i] for i in first], [labels[i] for i in first], loc="lower right")
        return figure_png(fig)


def pr_curve_png(
    y_true: Sequence[Any],
    proba: Sequence[Sequence[float]],
    classes: Sequence[Any],
    threshold: float | None = None,
) -> bytes:
    """Precision-recall curve of ``classes[1]``; multiclass: one-vs-rest for the biggest classes.

    Curves by scikit-learn's ``PrecisionRecallDisplay``; binary: the guessing level (the share
    of positives) and the point the decision ``threshold`` picks are marked.
    """
    from sklearn.metrics import PrecisionRecallDisplay

    codes, p, names = _prepare(y_true, proba, classes)
    with plot_style():
        fig, ax = new_figure(6.0, 4.6)
        shown = _curve_classes(codes, len(names))
        for n_drawn, j in enumerate(shown):
            yj = codes == j
            name = "Model" if len(names) == 2 else plot_label(names[j], 24)
            display = PrecisionRecallDisplay.from_predictions(
                yj, p[:, j], pos_label=True, ax=ax, name=name,
                curve_kwargs={"lw": 2, "color": PALETTE[n_drawn % len(PALETTE)]},
                plot_chance_level=len(names) == 2,
                chance_level_kw={"ls": "--", "color": GREY, "lw": 1},
            )  # fmt: skip
            display.line_.set_label(f"{name}: AP {display.average_precision:.3f}")
            if len(names) == 2:
                display.chance_level_.set_label(f"Guessing (positive rate {yj.mean():.2f})")
                mark = p[:, 1] >= threshold if threshold is not None else None
                _mark_threshold(ax, yj, mark, precision_recall=True)
        if not shown:
            draw_message(ax, "Rows of at least two classes are needed for this curve.")
        _unit_axes(ax)
        ax.set_xlabel("Recall (share of positives found)")
        ax.set_ylabel("Precision (share of flagged rows that are right)")
        ax.set_title(_curve_title("Precision-recall curve", names, shown))
        _legend(ax, loc="lower left")
        return figure_png(fig)


def threshold_png(
    y_true: Sequence[Any],
    proba: Sequence[Sequence[float]],
    classes: Sequence[Any],
    threshold: float | None,
) -> bytes:
    """Precision, recall and F1 of ``classes[1]`` against the decision threshold (positive
    when P >= t), the threshold the labels use marked (and 0.5 when it differs)."""
    from shipml.evaluate.threshold import threshold_curve

    codes, p, names = _prepare(y_true, proba, classes)
    if len(names) != 2:
        raise DataError(f"the threshold plot is for 2 classes, got {len(names)}")
    curve = threshold_curve(codes == 1, p[:, 1])
    t = curve["threshold"]
    with plot_style():
        fig, ax = new_figure(7.4, 4.6)
        for key, label, color in (
            ("precision", "Precision", ORANGE),
            ("recall", "Recall", PALETTE[2]),
            ("f1", "F1", BLUE),
        ):
            ax.plot(t, curve[key], lw=2.4 if key == "f1" else 1.6, color=color, label=label)
        if threshold is not None:
            i = int(np.argmin(np.abs(t - threshold)))
            ax.axvline(threshold, color=PALETTE[3], lw=1.6, label=f"Used: {threshold:.3g}")
            ax.plot([threshold], [curve["f1"][i]], "o", color=PALETTE[3], ms=6)
            if abs(threshold - 0.5) > 1e-9:
                ax.axvline(0.5, color=GREY, lw=1, ls="--", label="0.5 (most likely class)")
        if not 0 < (codes == 1).sum() < len(codes):
            draw_message(ax, "Rows of both classes are needed for this plot.")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"Threshold on the probability of “{plot_label(names[1], 20)}”")
        ax.set_ylabel("Score")
        ax.set_title(f"Precision, recall and F1 vs threshold ({plot_label(names[1], 24)})")
        _legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return figure_png(fig)


def calibration_png(
    y_true: Sequence[Any], proba: Sequence[Sequence[float]], classes: Sequence[Any]
) -> bytes:
    """Reliability diagram (predicted vs observed share of ``classes[1]``, scikit-learn's
    ``CalibrationDisplay`` on the bins of the metrics) + histogram of the probabilities."""
    from sklearn.calibration import CalibrationDisplay

    codes, p, names = _prepare(y_true, proba, classes)
    if len(names) != 2:
        raise DataError(f"the calibration plot is for 2 classes, got {len(names)}")
    p1 = p[:, 1]
    curve = _calibration(codes, p1, None)
    pos, neg = f"“{plot_label(names[1], 20)}”", f"“{plot_label(names[0], 20)}”"
    with plot_style():
        fig, (left, right) = new_figure(10.0, 4.2, ncols=2)
        display = CalibrationDisplay(curve["prob_true"], curve["prob_pred"], p1)
        display.plot(ax=left, name="Model", color=BLUE, lw=2, ms=5)
        display.line_.set_marker("o")
        reference = next(line for line in left.get_lines() if line is not display.line_)
        reference.set(ls="--", color=GREY, lw=1, label="Perfectly honest")
        left.set_xlim(0, 1)
        left.set_ylim(0, 1)
        left.set_xlabel(f"Predicted probability of {pos}")
        left.set_ylabel(f"Observed share of {pos}")
        left.set_title("Calibration: do the probabilities mean what they say?")
        _legend(left, loc="upper left")

        bins = np.linspace(0, 1, 21)
        right.hist(
            [p1[codes == 0], p1[codes == 1]],
            bins=bins,
            stacked=True,
            color=[GREY, BLUE],
            label=[f"Actual {neg}", f"Actual {pos}"],
        )
        right.set_xlim(0, 1)
        right.set_xlabel(f"Predicted probability of {pos}")
        right.set_ylabel("Rows")
        right.set_title("How confident the predictions are")
        _legend(right, loc="upper center")
        return figure_png(fig)


def class_balance_png(counts: Mapping[Any, int | float]) -> bytes:
    """Rows per class as horizontal bars with count and share; the 30 biggest classes."""
    items = sorted(counts.items(), key=lambda kv: -float(kv[1]))
    total = float(sum(v for _, v in items)) or 1.0
    if len(items) > _MAX_BARS:
        rest = items[_MAX_BARS - 1 :]
        items = items[: _MAX_BARS - 1] + [(f"other ({len(rest)} classes)", sum(v for _, v in rest))]
    names = [plot_label(k, 30) for k, _ in items]
    values = np.array([float(v) for _, v in items])
    with plot_style():
        fig, ax = new_figure(6.0, 1.3 + 0.32 * max(len(items), 2))
        ax.grid(axis="y", visible=False)
        y = np.arange(len(items))
        ax.barh(y, values, color=BLUE, height=0.65)
        ax.set_yticks(y)
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        top = values.max() if len(values) else 1.0
        for yi, v in zip(y, values, strict=True):
            ax.text(v + top * 0.01, yi, f"{v:,.0f} ({v / total:.1%})", va="center", fontsize=9)
        ax.set_xlim(0, top * 1.25 if top > 0 else 1)
        if not items:
            draw_message(ax, "No rows.")
        ax.set_xlabel("Rows")
        ax.set_title("Rows per class")
        return figure_png(fig)


# --------------------------------------------------------------------------------------------
# regression


def residuals_png(
    y_true: Sequence[float], y_pred: Sequence[float], *, target: str | None = None
) -> bytes:
    """Actual vs predicted (scikit-learn's ``PredictionErrorDisplay``, at most 5,000 dots, with
    the y = x line) and a histogram of errors (actual - predicted)."""
    from sklearn.metrics import PredictionErrorDisplay

    yt = np.asarray(y_true, dtype=float).ravel()
    yp = np.asarray(y_pred, dtype=float).ravel()
    if yt.shape != yp.shape:
        raise DataError(f"y_true has {len(yt)} values but y_pred has {len(yp)}")
    ok = np.isfinite(yt) & np.isfinite(yp)
    yt, yp = yt[ok], yp[ok]
    what = plot_label(target, 30) if target else "value"
    with plot_style():
        fig, (left, right) = new_figure(10.0, 4.3, ncols=2)
        if len(yt) == 0:
            draw_message(left, "No rows to plot.")
            draw_message(right, "No rows to plot.")
            return figure_png(fig)
        alpha = float(np.clip(300 / min(len(yt), _MAX_POINTS), 0.15, 0.7))
        PredictionErrorDisplay.from_predictions(
            yt, yp, kind="actual_vs_predicted", subsample=_MAX_POINTS, random_state=0, ax=left,
            scatter_kwargs={"s": 12, "alpha": alpha, "color": BLUE, "edgecolors": "none"},
            line_kwargs={"ls": "--", "color": ORANGE, "lw": 1.5, "alpha": 1.0},
        )  # fmt: skip
        left.get_lines()[0].set_label("Perfect prediction")
        left.set_aspect("auto")  # the display makes it square; the page has room for wider
        lo, hi = float(min(yt.min(), yp.min())), float(max(yt.max(), yp.max()))
        pad = max((hi - lo) * 0.03, _tiny(lo, hi))
        left.set_xlim(lo - pad, hi + pad)
        left.set_ylim(lo - pad, hi + pad)
        left.set_xlabel(f"Predicted {what}")
        left.set_ylabel(f"Actual {what}")
        _round_ticks(left.xaxis, left.yaxis)  # the display puts 5 ticks at odd values
        left.set_title("Predicted vs actual")
        _legend(left, loc="upper left")

        err = yt - yp
        bins: Any = min(40, max(10, int(math.sqrt(len(err)))))
        e_lo, e_hi = float(err.min()), float(err.max())
        if e_hi - e_lo < _tiny(e_lo, e_hi):  # (almost) constant error: one visible bar
            bins = [e_lo - _tiny(e_lo, e_hi), e_hi + _tiny(e_lo, e_hi)]
        right.hist(err, bins=bins, color=BLUE, alpha=0.85)
        right.axvline(0, color=ORANGE, ls="--", lw=1.5, label="No error")
        _round_ticks(right.xaxis)
        right.set_xlabel("Error = actual - predicted")
        right.set_ylabel("Rows")
        right.set_title("How big the errors are")
        _legend(right, loc="upper right")
        return figure_png(fig)


# --------------------------------------------------------------------------------------------
# model and search


def importance_png(importance: Mapping[str, float], *, top: int = 20) -> bytes:
    """Horizontal bars of the ``top`` most important features (by absolute importance)."""
    items = [(str(k), float(v)) for k, v in importance.items() if v is not None]
    items = [(k, v) for k, v in items if math.isfinite(v)]
    items.sort(key=lambda kv: -abs(kv[1]))
    shown = items[:top]
    with plot_style():
        fig, ax = new_figure(6.6, 1.3 + 0.3 * max(len(shown), 2))
        ax.grid(axis="y", visible=False)
        if not shown:
            draw_message(ax, "No feature importance available.")
        else:
            y = np.arange(len(shown))
            values = np.array([v for _, v in shown])
            ax.barh(y, values, color=[BLUE if v >= 0 else GREY for v in values], height=0.65)
            ax.set_yticks(y)
            ax.set_yticklabels([plot_label(k, 34) for k, _ in shown])
            ax.invert_yaxis()
            ax.axvline(0, color="#6b7280", lw=0.8)
        more = f" (top {len(shown)} of {len(items)})" if len(items) > len(shown) else ""
        ax.set_xlabel("Importance (higher = the model relies on it more)")
        ax.set_title(f"Most important columns{more}")
        return figure_png(fig)


def trials_png(
    trials: Sequence[Mapping[str, Any]], metric: str, direction: str | None = None
) -> bytes:
    """Search history: each trial's score over time (dots) and the best so far (step line).

    ``trials`` are dicts ``{number, value, elapsed_s, state}``; the state is free text
    ("complete", "pruned", "fail", "cut by deadline", Optuna's ``TrialState.COMPLETE``...).
    Complete trials are blue, other scored trials grey; pruned and failed trials never count
    for the best so far. ``direction`` defaults to the metric's own direction.
    """
    direction = direction or METRIC_DIRECTIONS.get(metric, "maximize")
    maximize = direction == "maximize"
    rows = []
    for i, t in enumerate(trials):
        x = _float(t.get("elapsed_s"))
        state = str(t.get("state") or "complete").rsplit(".", 1)[-1].strip().lower()
        rows.append(
            {
                "x": x if x is not None else float(i),
                "value": _float(t.get("value")),
                "state": _STATE_WORDS.get(state, state),
            }
        )
    rows.sort(key=lambda r: r["x"])
    scored = [r for r in rows if r["value"] is not None]
    counted = [r for r in scored if r["state"] not in ("stopped early", "failed")]
    others: dict[str, list[dict]] = {}
    for r in scored:
        if r["state"] != "complete":
            others.setdefault(r["state"], []).append(r)
    missing = len(rows) - len(scored)
    name = METRIC_NAMES.get(metric, plot_label(metric, 30))
    better = "higher" if maximize else "lower"
    with plot_style():
        fig, ax = new_figure(7.0, 4.0)
        for n_group, (state, group) in enumerate(sorted(others.items())):
            ax.scatter(
                [r["x"] for r in group],
                [r["value"] for r in group],
                s=18,
                color=[GREY, "#c4b5fd", "#fcd34d"][n_group % 3],
                alpha=0.8,
                label=f"{plot_label(state.capitalize(), 24)} ({len(group)})",
            )
        done = [r for r in scored if r["state"] == "complete"]
        if done:
            ax.scatter(
                [r["x"] for r in done],
                [r["value"] for r in done],
                s=22,
                color=BLUE,
                alpha=0.7,
                label=f"Trial ({len(done)})",
            )
        if counted:
            xs = np.array([r["x"] for r in counted])
            vs = np.array([r["value"] for r in counted])
            best = np.maximum.accumulate(vs) if maximize else np.minimum.accumulate(vs)
            end = max(r["x"] for r in rows)
            ax.step(
                np.append(xs, end),
                np.append(best, best[-1]),
                where="post",
                color=ORANGE,
                lw=2,
                label=f"Best so far ({best[-1]:.4g})",
            )
            hidden = _robust_ylim(ax, np.array([r["value"] for r in scored]), best)
            if hidden:
                ax.plot([], [], " ", label=f"{hidden} far-off trial(s) off the chart")
        else:
            draw_message(ax, "No finished trial yet.")
        if missing:
            ax.plot([], [], " ", label=f"{missing} without a score (stopped or failed)")
        ax.set_xlabel("Time since the search started (seconds)")
        ax.set_ylabel(name)
        ax.set_title(f"Search history: {name} ({better} is better)")
        _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=9)
        return figure_png(fig)


# --------------------------------------------------------------------------------------------
# helpers


@contextmanager
def plot_style() -> Iterator[None]:
    """The report's matplotlib style (fonts, grid, colours) around the drawing of one figure."""
    import matplotlib

    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # A label in a script DejaVu Sans lacks still draws (as boxes); the warning is noise.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def new_figure(width: float, height: float, ncols: int = 1):
    """A pyplot-free figure of ``width`` x ``height`` inches and its ``ncols`` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="tight")
    axes = fig.subplots(1, ncols)
    return fig, axes


def figure_png(fig) -> bytes:
    """The figure as PNG bytes, rendered by Agg whatever pyplot backend the caller uses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": "shipml"})
    return buf.getvalue()


def _legend(ax, **kwargs: Any) -> None:
    """A legend only when something is labelled (an empty one is a matplotlib warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def draw_message(ax, text: str) -> None:
    """A grey sentence in the middle of the axes, in place of a plot that cannot be drawn."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280",
            fontsize=11)  # fmt: skip


def plot_label(value: Any, width: int = 30) -> str:
    """A user string as matplotlib shows it literally: no math mode, not hidden, not too long."""
    s = " ".join(str(value).split())
    if len(s) > width:
        s = s[: width - 1] + "…"
    s = s.replace("$", r"\$")
    return " " + s if s.startswith("_") else s  # a leading "_" hides a legend entry


def _unit_axes(ax) -> None:
    """Both axes on [0, 1], not forced square (scikit-learn's displays set an equal aspect)."""
    ax.set_aspect("auto")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)


def _mark_threshold(ax, positive, flagged, *, precision_recall: bool = False) -> None:
    """The operating point of the decision threshold (rows ``flagged`` positive) on a curve."""
    if flagged is None or not 0 < positive.sum() < len(positive):
        return
    tp = float((flagged & positive).sum())
    recall = tp / positive.sum()
    if precision_recall:
        x, y = recall, tp / flagged.sum() if flagged.any() else 1.0
    else:
        x, y = float((flagged & ~positive).sum()) / (~positive).sum(), recall
    ax.plot([x], [y], "o", color=PALETTE[3], ms=7, zorder=5, label="At the decision threshold")


def _round_ticks(*axes) -> None:
    """About 5 ticks at round values, large numbers short (250k, 1.2M) so that they never run
    into each other."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def short(x: float, _pos: int) -> str:
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(x) >= size:
                return f"{x / size:.4g}{suffix}"
        return f"{x:.4g}"

    for axis in axes:
        axis.set_major_locator(MaxNLocator(nbins=5))
        axis.set_major_formatter(FuncFormatter(short))


def _tiny(lo: float, hi: float) -> float:
    """A visible margin around a (nearly) zero-width range."""
    return max(abs(lo), abs(hi), 1.0) * 1e-3


def _float(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _prepare(y_true, proba, classes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = list(classes)
    codes = _encode(y_true, classes)
    p = _check_proba(proba, len(codes), len(classes))
    return codes, p, [str(c) for c in classes]


def _curve_classes(codes: np.ndarray, k: int) -> list[int]:
    """Classes that can get a curve (some positives and some negatives), biggest first, <= 10."""
    if k == 2:
        return [1] if 0 < (codes == 1).sum() < len(codes) else []
    support = np.bincount(codes, minlength=k)
    order = [int(j) for j in np.argsort(-support, kind="stable") if 0 < support[j] < len(codes)]
    return order[:_MAX_CURVES]


def _curve_title(base: str, names: list[str], shown: list[int]) -> str:
    if len(names) == 2:
        return f"{base} (positive class: {plot_label(names[1], 24)})"
    if len(shown) < len(names):
        return f"{base}s, each class vs the rest ({len(shown)} largest of {len(names)})"
    return f"{base}s, each class vs the rest"


def _robust_ylim(ax, values: np.ndarray, best: np.ndarray) -> int:
    """Zoom on the useful range when a few disastrous trials would flatten everything else.

    Returns how many values are left outside the chart.
    """
    if len(values) < 5:
        return 0
    lo, hi = np.percentile(values, [10, 90])
    span = hi - lo
    if span <= 0:
        return 0
    lo = min(lo - 0.6 * span, best.min())
    hi = max(hi + 0.6 * span, best.max())
    pad = (hi - lo) * 0.05
    outside = int(((values < lo - pad) | (values > hi + pad)).sum())
    if outside:
        ax.set_ylim(lo - pad, hi + pad)
    return outside
