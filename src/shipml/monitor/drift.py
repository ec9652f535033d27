"""Data and prediction drift: recent inputs against the training reference, Evidently's way.

The test for each column is chosen as Evidently's default data-drift preset does
(``evidently.legacy.calculations.stattests.registry._get_default_stattest``), from the column
kind, the number of reference values and the number of distinct values:

=================================  =======================================  ==================
column                             reference <= 1000 values                 > 1000 values
=================================  =======================================  ==================
numeric, > 5 distinct values       Kolmogorov-Smirnov, drift if p <= 0.05   Wasserstein / std,
                                                                            drift if >= 0.1
numeric <= 5 distinct, categorical chi-square, drift if p <= 0.05           Jensen-Shannon,
                                   (2 values: Z-test of proportions)        drift if >= 0.1
text                               KS on character lengths                  Wasserstein on
                                                                            lengths
=================================  =======================================  ==================

Boolean columns are categorical with two values; datetimes are numbers of days since 1970.
Where shipml differs from Evidently, on purpose:

- chi-square is the two-sample test of homogeneity (``scipy.stats.chi2_contingency`` on the
  2 x k table of counts), not ``chisquare`` of current counts against reference proportions: the
  reference is a sample too, and a category absent from the reference sample does not make
  the statistic infinite. For two categories it equals Evidently's Z-test exactly.
- text: Evidently trains a domain classifier on the words; shipml keeps no raw text in the
  reference, so it compares character lengths.
- a column with fewer than 5 current (or reference) values is not tested: "too few values".

The dataset drifts when the share of drifted feature columns is at least ``share`` (0.5).
Every result is plain JSON (NaN and inf become None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shipml.errors import DataError
from shipml.monitor.reference import (
    OTHER,
    as_labels,
    as_lengths,
    as_numbers,
    image_stat_values,
    prediction_kind,
    prediction_reference,
)

__all__ = ["column_drift", "dataset_drift", "prediction_drift", "drift_png"]

#: Evidently's defaults.
SMALL_REFERENCE = 1000  # reference values at most this many: p-value tests; more: distances
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
FEW_DISTINCT = 5  # numbers with at most this many distinct values are tested as categories
DRIFT_SHARE = 0.5
MIN_VALUES = 5  # fewer values than this on either side: no test
_STD_FLOOR = 0.001  # Evidently's floor for the Wasserstein norm (a constant reference column)
_MAX_BARS = 25


def column_drift(reference_col: dict, current: pd.Series, kind: str) -> dict:
    """Drift of one column: ``reference_col`` is ``reference["columns"][name]``, ``current`` the
    typed recent values (``schema.coerce(frame, strict=False)[name]``).

    Returns {"column", "kind", "method", "statistic", "threshold", "p_value", "drift",
    "reference_missing", "current_missing", "n_current"}; "column" is ``current.name``.
    """
    current = pd.Series(current)
    ref_kind = reference_col.get("kind", kind)
    if ref_kind != kind:
        raise DataError(
            f"column '{current.name}' is {kind} but its reference was built as {ref_kind}; "
            "rebuild the reference with the model's schema"
        )
    n_current = len(current)
    result: dict[str, Any] = {
        "column": None if current.name is None else str(current.name),
        "kind": kind,
        "method": None,
        "statistic": None,
        "threshold": None,
        "p_value": None,
        "drift": False,
        "reference_missing": _json_float(reference_col.get("missing")),
        "current_missing": _current_missing(current, kind),
        "n_current": n_current,
    }
    if kind in ("numeric", "datetime"):
        ref = np.asarray(reference_col["values"], dtype="float64")
        cur = as_numbers(current, kind)
        if _too_few(ref, cur):
            return {**result, "method": "too few values"}
        test = _number_test(ref, cur)
    elif kind == "boolean":
        ref = np.asarray(reference_col["values"], dtype="float64")
        cur = as_numbers(current, kind)
        if _too_few(ref, cur):
            return {**result, "method": "too few values"}
        test = _categorical_test(*_value_counts(ref, cur))
    elif kind == "categorical":
        ref_counts = {str(k): int(v) for k, v in reference_col["counts"].items()}
        cur_counts = as_labels(current).value_counts()
        if sum(ref_counts.values()) < MIN_VALUES or int(cur_counts.sum()) < MIN_VALUES:
            return {**result, "method": "too few values"}
        test = _categorical_test(*_count_arrays(ref_counts, cur_counts))
    elif kind == "text":
        ref = np.asarray(reference_col["lengths"], dtype="float64")
        cur = as_lengths(current)
        if _too_few(ref, cur):
            return {**result, "method": "too few values"}
        test = _numeric_test(ref, cur)
        test["method"] = "length-" + test["method"]
    elif kind == "image":
        test = _image_test(_image_tests(reference_col, image_stat_values(current)))
        if test is None:
            return {**result, "method": "too few values"}
    else:
        raise DataError(f"column '{current.name}': no drift test for kind {kind!r}")
    return {**result, **test}


def _number_test(ref: np.ndarray, cur: np.ndarray) -> dict:
    """Numbers with few distinct values are compared as categories, others as distributions."""
    if len(np.unique(np.concatenate([ref, cur]))) <= FEW_DISTINCT:
        return _categorical_test(*_value_counts(ref, cur))
    return _numeric_test(ref, cur)


def _image_tests(reference_col: dict, cur_stats: dict[str, np.ndarray]) -> dict[str, dict]:
    """Each image statistic (size, brightness, contrast, saturation) tested as a number, from
    the current images' statistics (reference.image_stat_values); too few values: left out."""
    tests = {}
    for stat, ref_values in reference_col.get("stats", {}).items():
        ref = np.asarray(ref_values, dtype="float64")
        cur = cur_stats.get(stat, np.empty(0))
        if not _too_few(ref, cur):
            tests[stat] = _number_test(ref, cur)
    return tests


def _most_drifted(tests: dict[str, dict]) -> str | None:
    if not tests:
        return None
    return max(tests, key=lambda k: (tests[k]["drift"], _strength(tests[k])))


def _image_test(tests: dict[str, dict]) -> dict | None:
    """The column's result: its most drifted statistic's, with every statistic's under
    "stats" (None: no statistic had values enough)."""
    worst = _most_drifted(tests)
    if worst is None:
        return None
    return {**tests[worst], "method": f"image {worst}: {tests[worst]['method']}",
            "stats": tests}  # fmt: skip


def _strength(test: dict) -> float:
    """How far a test is past (or short of) its threshold, comparable across methods."""
    if test.get("p_value") is not None:
        return -float(test["p_value"])
    return float(test["statistic"] or 0.0) - float(test["threshold"] or 0.0)


def dataset_drift(
    reference: dict, current_typed: pd.DataFrame, schema, *, share: float = DRIFT_SHARE
) -> dict:
    """Drift of every feature column of ``schema`` (except PII columns, listed in
    ``"pii_excluded"``), and of the dataset: it drifts when the share of drifted columns is at
    least ``share``.

    ``reference`` comes from ``build_reference``; ``current_typed`` is
    ``schema.coerce(recent_inputs, strict=False)``.
    """
    if not 0.0 < share <= 1.0:
        raise DataError(f"share must be in (0, 1], got {share}")
    summaries = reference.get("columns", {})
    results = []
    for col in schema.features:
        if col.pii:  # personal data has no reference and is not compared
            continue
        if col.name not in summaries:
            raise DataError(
                f"the drift reference has no summary of column '{col.name}'; "
                "rebuild it with the model's schema"
            )
        if col.name not in current_typed.columns:
            raise DataError(f"current data is missing column '{col.name}' ({col.kind})")
        results.append(column_drift(summaries[col.name], current_typed[col.name], col.kind))
    n_drifted = sum(r["drift"] for r in results)
    share_drifted = n_drifted / len(results) if results else 0.0
    return {
        "columns": results,
        "n_drifted": n_drifted,
        "n_columns": len(results),
        "share_drifted": round(share_drifted, 6),
        "share_threshold": share,
        "dataset_drift": bool(results) and share_drifted >= share,
        "n_reference": int(reference.get("n_rows", 0)),
        "n_current": len(current_typed),
        "pii_excluded": [c.name for c in schema.columns if c.pii],
    }


def prediction_drift(
    reference_predictions: Sequence | dict, current_predictions: Sequence, task: str
) -> dict:
    """Drift of the model's predictions: labels for classification (categorical tests), floats
    for regression (numeric tests).

    ``reference_predictions`` is the model's out-of-fold predictions on the training rows, as a
    list or as summarized by ``prediction_reference`` (what a saved model keeps).
    """
    kind = prediction_kind(task)
    if isinstance(reference_predictions, dict):
        ref = reference_predictions
    else:
        ref = prediction_reference(reference_predictions, task)
    current = pd.Series(list(current_predictions), dtype=object, name="prediction")
    if kind == "numeric":
        current = pd.to_numeric(current, errors="coerce").astype("float64")
    return column_drift(ref, current, kind)


# -- tests -----------------------------------------------------------------------------------
def _numeric_test(ref: np.ndarray, cur: np.ndarray) -> dict:
    from scipy import stats

    if len(ref) <= SMALL_REFERENCE:
        ks = stats.ks_2samp(ref, cur)
        p = float(ks.pvalue)
        return _p_result("KS", float(ks.statistic), p)
    norm = max(float(np.std(ref)), _STD_FLOOR)
    distance = float(stats.wasserstein_distance(ref, cur)) / norm
    return _distance_result("Wasserstein", distance)


def _categorical_test(keys: list, ref: np.ndarray, cur: np.ndarray) -> dict:
    """Counts over the union of categories (``keys``) of both samples."""
    if ref.sum() <= SMALL_REFERENCE:
        if len(keys) < 2:  # one value on both sides: the same distribution
            return _p_result("Z-test", 0.0, 1.0)
        if len(keys) == 2:
            z, p = _z_test(ref, cur)
            return _p_result("Z-test", z, p)
        from scipy.stats import chi2_contingency

        chi2 = chi2_contingency(np.vstack([ref, cur]), correction=False)
        return _p_result("chi-square", float(chi2.statistic), float(chi2.pvalue))
    from scipy.spatial.distance import jensenshannon

    # Natural log, as Evidently (scipy's default base): the distance lies in [0, 0.833].
    distance = float(jensenshannon(ref / ref.sum(), cur / cur.sum()))
    return _distance_result("Jensen-Shannon", distance)


def _z_test(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Evidently's proportion-difference Z-test (two-sided) for two categories."""
    from scipy.stats import norm

    n1, n2 = float(ref.sum()), float(cur.sum())
    p1, p2 = ref[1] / n1, cur[1] / n2
    pooled = (ref[1] + cur[1]) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0.0:
        return 0.0, 1.0
    z = float((p1 - p2) / spread)
    return z, float(2 * norm.sf(abs(z)))


def _p_result(method: str, statistic: float, p: float) -> dict:
    return {
        "method": method,
        "statistic": _json_float(statistic),
        "threshold": P_VALUE_THRESHOLD,
        "p_value": _json_float(p),
        "drift": bool(p <= P_VALUE_THRESHOLD),
    }


def _distance_result(method: str, distance: float) -> dict:
    return {
        "method": method,
        "statistic": _json_float(distance),
        "threshold": DISTANCE_THRESHOLD,
        "p_value": None,
        "drift": bool(distance >= DISTANCE_THRESHOLD),
    }


# -- counts and small helpers ----------------------------------------------------------------
def _value_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    keys, codes = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    counts_ref = np.bincount(codes[: len(ref)], minlength=len(keys)).astype("float64")
    counts_cur = np.bincount(codes[len(ref) :], minlength=len(keys)).astype("float64")
    return keys.tolist(), counts_ref, counts_cur


def _count_arrays(ref_counts: dict, cur_counts: pd.Series) -> tuple[list, np.ndarray, np.ndarray]:
    """Reference and current counts over the union of categories. When the reference folded
    its rare categories into "__other__", unseen current categories count as "__other__" too."""
    cur: dict[str, int] = {}
    for key, count in cur_counts.items():
        key = str(key)
        if key not in ref_counts and OTHER in ref_counts:
            key = OTHER
        cur[key] = cur.get(key, 0) + int(count)
    keys = [*ref_counts, *(k for k in cur if k not in ref_counts)]
    keys = [k for k in keys if ref_counts.get(k, 0) or cur.get(k, 0)]
    ref_arr = np.array([ref_counts.get(k, 0) for k in keys], dtype="float64")
    cur_arr = np.array([cur.get(k, 0) for k in keys], dtype="float64")
    return keys, ref_arr, cur_arr


def _too_few(ref: np.ndarray, cur: np.ndarray) -> bool:
    return len(ref) < MIN_VALUES or len(cur) < MIN_VALUES


def _current_missing(current: pd.Series, kind: str) -> float | None:
    if len(current) == 0:
        return None
    if kind in ("numeric", "boolean"):
        present = len(as_numbers(current, kind))
    else:
        present = int(current.notna().sum())
    return round(1.0 - present / len(current), 6)


def _json_float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# -- plot ------------------------------------------------------------------------------------
def drift_png(
    reference_col: dict, current: pd.Series, kind: str, *, title: str | None = None
) -> bytes:
    """Reference vs current distribution of one column as PNG bytes: overlaid histograms of
    shares for numbers, datetimes and text lengths; paired bars of shares for categories."""
    from shipml.evaluate.plots import figure_png, new_figure, plot_label, plot_style

    current = pd.Series(current)
    name = title if title is not None else current.name
    if kind == "image":  # the most drifted statistic's distribution
        cur_stats = image_stat_values(current)
        stat = _most_drifted(_image_tests(reference_col, cur_stats)) or "width"
        values = pd.Series(cur_stats[stat])
        numbers = {"values": reference_col.get("stats", {}).get(stat, [])}
        return drift_png(numbers, values, "numeric", title=f"{name} ({stat})")
    heading = (
        f"{plot_label(name, 40)}: reference vs current"
        if name is not None
        else "Reference vs current"
    )
    with plot_style():
        fig, ax = new_figure(6.4, 4.2)
        if kind in ("numeric", "datetime", "text"):
            _histograms(ax, reference_col, current, kind)
        else:
            _bars(ax, reference_col, current, kind)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
        ax.set_title(heading)
        return figure_png(fig)


def _histograms(ax, reference_col: dict, current: pd.Series, kind: str) -> None:
    """Overlaid histograms of shares: numbers, datetimes, text lengths."""
    from shipml.evaluate.plots import BLUE, ORANGE, draw_message

    if kind == "text":
        ref = np.asarray(reference_col.get("lengths", []), dtype="float64")
        cur = as_lengths(current)
    else:
        ref = np.asarray(reference_col.get("values", []), dtype="float64")
        cur = as_numbers(current, kind)
    if len(ref) and len(cur):
        both = np.concatenate([ref, cur])
        edges = np.histogram_bin_edges(both, bins="auto")
        if len(edges) > 51:
            edges = np.linspace(both.min(), both.max(), 51)
        ref_w = np.full(len(ref), 1.0 / len(ref))
        cur_w = np.full(len(cur), 1.0 / len(cur))
        ax.hist(ref, bins=edges, weights=ref_w, color=BLUE, alpha=0.35,
                label=f"Reference ({len(ref):,} values)")  # fmt: skip
        ax.hist(cur, bins=edges, weights=cur_w, histtype="step", lw=2, color=ORANGE,
                label=f"Current ({len(cur):,} values)")  # fmt: skip
        if kind == "datetime":
            ax.xaxis_date()  # matplotlib's date numbers are days since 1970 too
    else:
        draw_message(ax, "No values to compare.")
    ax.set_xlabel({"text": "Length in characters", "datetime": "Date"}.get(kind, "Value"))
    ax.set_ylabel("Share of values")


def _bars(ax, reference_col: dict, current: pd.Series, kind: str) -> None:
    """Paired bars of shares, the largest first: categories, booleans, few-valued numbers."""
    from shipml.evaluate.plots import BLUE, ORANGE, draw_message, plot_label

    keys, ref, cur = _bar_counts(reference_col, current, kind)
    if ref.sum() and cur.sum():
        ref, cur = ref / ref.sum(), cur / cur.sum()
        order = np.argsort(-np.maximum(ref, cur), kind="stable")[:_MAX_BARS]
        y = np.arange(len(order))
        ax.barh(y - 0.2, ref[order], height=0.4, color=BLUE, label="Reference")
        ax.barh(y + 0.2, cur[order], height=0.4, color=ORANGE, label="Current")
        ax.set_yticks(y)
        ax.set_yticklabels([plot_label(keys[i], 24) for i in order])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        draw_message(ax, "No values to compare.")
    ax.set_xlabel("Share of values")


def _bar_counts(reference_col: dict, current: pd.Series, kind: str):
    """(labels, reference counts, current counts) of a column drawn as bars."""
    if kind == "categorical":
        return _count_arrays(
            {str(k): int(v) for k, v in reference_col.get("counts", {}).items()},
            as_labels(current).value_counts(),
        )
    keys, ref, cur = _value_counts(
        np.asarray(reference_col.get("values", []), dtype="float64"),
        as_numbers(current, kind),
    )
    words = {0.0: "false", 1.0: "true"} if kind == "boolean" else {}
    return [words.get(k, f"{k:g}") for k in keys], ref, cur
