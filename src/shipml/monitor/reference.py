"""The training reference for drift checks: a small JSON summary saved with each model.

Drift tests compare two samples, so the reference keeps a *sample*, not a histogram: one uniform
random sample of up to ``max_rows`` training rows, from which every column is summarized.

- numeric, boolean, datetime: the sample's non-missing values as sorted floats (datetimes as
  days since 1970-01-01). Sorting drops the row order, so values of different columns can no
  longer be joined back into rows.
- categorical: value counts in the sample, the 200 most frequent categories plus ``"__other__"``.
- text: never the text itself, only character lengths (a sorted sample, mean and quantiles).
- image: never the image, only cheap statistics of up to ``IMAGE_SAMPLE`` of the sampled images
  (width, height, brightness, contrast, saturation: images/stats.py), each a sorted sample; the
  server's prediction log keeps the same statistics of every image it scores.
- id and ignored columns, and columns marked PII (``Column.pii``: left out of the features, or
  kept as keyed hashes): nothing at all, so that no personal data is ever stored in a model's
  artifacts (the PII columns' names are listed in ``"pii_excluded"``).

The missing share of each column is measured on all training rows. Everything is plain JSON
(``json.dumps(reference, allow_nan=False)`` works), so the reference is an artifact like any
other: data, not code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from shipml.data.schema import as_category
from shipml.errors import DataError

__all__ = ["build_reference", "prediction_reference", "image_stat_values", "OTHER", "FORMAT",
           "ARTIFACT", "IMAGE_SAMPLE"]  # fmt: skip

FORMAT = "shipml.drift-reference"
ARTIFACT = "drift_reference.json"  # saved with every registered model (training.py)
VERSION = 1
OTHER = "__other__"
_TOP_CATEGORIES = 200
_LENGTH_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_NUMBER_KINDS = ("numeric", "boolean", "datetime")
IMAGE_SAMPLE = 1000  # images measured for the reference (~3 ms each at 64 px)
_EPOCH = pd.Timestamp("1970-01-01")


def build_reference(typed: pd.DataFrame, schema, *, max_rows: int = 5000, seed: int = 0) -> dict:
    """Summarize the training table for later drift checks.

    ``typed`` is ``schema.coerce(training_frame, strict=False)``. The reference holds, per feature
    column, its kind, missing share and a summary of a uniform random sample of up to
    ``max_rows`` rows (the same rows for every column); ``n_rows`` is the training row count.
    Columns marked PII are left out.

    >>> from shipml.data.schema import infer_schema
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "y": ["a", "b", "a", "a"]})
    >>> schema = infer_schema(frame, "y")
    >>> ref = build_reference(schema.coerce(frame, strict=False), schema)
    >>> ref["n_rows"], ref["columns"]["x"]["values"], ref["columns"]["x"]["missing"]
    (4, [1.0, 2.0, 4.0], 0.25)
    """
    if int(max_rows) < 1:
        raise DataError(f"max_rows must be at least 1, got {max_rows}")
    n = len(typed)
    rows = _sample_rows(n, int(max_rows), seed)
    columns = {}
    for col in schema.features:
        if col.pii:
            continue
        if col.name not in typed.columns:
            raise DataError(
                f"column '{col.name}' ({col.kind}) is missing from the table the reference is "
                "built from; pass schema.coerce(frame, strict=False)"
            )
        values = typed[col.name]
        columns[col.name] = summarize(values, col.kind, sample=values.iloc[rows])
    return {
        "format": FORMAT,
        "version": VERSION,
        "n_rows": n,
        "n_sample": len(rows),
        "max_rows": int(max_rows),
        "seed": seed,
        "columns": columns,
        "pii_excluded": [c.name for c in schema.columns if c.pii],
    }


def prediction_reference(
    predictions: Sequence, task: str, *, max_rows: int = 5000, seed: int = 0
) -> dict:
    """The reference of a model's predictions (e.g. its out-of-fold predictions on the training
    rows): labels for classification, floats for regression. Same shape as a column summary."""
    kind = prediction_kind(task)
    values = pd.Series(list(predictions), dtype=object)
    if kind == "categorical":
        values = values.map(as_category, na_action="ignore")
    else:
        values = pd.to_numeric(values, errors="coerce").astype("float64")
    rows = _sample_rows(len(values), int(max_rows), seed)
    return summarize(values, kind, sample=values.iloc[rows])


def prediction_kind(task: str) -> str:
    """The column kind predictions of a task are compared as."""
    if task in ("binary", "multiclass", "classification"):
        return "categorical"
    if task == "regression":
        return "numeric"
    raise DataError(f"task must be 'binary', 'multiclass' or 'regression', got {task!r}")


def summarize(values: pd.Series, kind: str, *, sample: pd.Series | None = None) -> dict:
    """Summary of one column: missing share over ``values``, distribution from ``sample``."""
    sample = values if sample is None else sample
    out: dict = {"kind": kind, "missing": _missing_share(values, kind)}
    if kind in _NUMBER_KINDS:
        numbers = as_numbers(sample, kind)
        out["values"] = np.sort(numbers).tolist()
    elif kind == "categorical":
        counts = as_labels(sample).value_counts()
        top = counts.iloc[:_TOP_CATEGORIES]
        out["counts"] = {str(k): int(v) for k, v in top.items()}
        rest = int(counts.iloc[_TOP_CATEGORIES:].sum())
        if rest:
            out["counts"][OTHER] = out["counts"].get(OTHER, 0) + rest
        out["n_categories"] = int(len(counts))
    elif kind == "text":
        lengths = as_lengths(sample)
        every = as_lengths(values)
        out["lengths"] = np.sort(lengths).tolist()
        out["length_mean"] = round(float(every.mean()), 3) if len(every) else None
        out["length_quantiles"] = {
            str(q): float(np.quantile(every, q)) if len(every) else None for q in _LENGTH_QUANTILES
        }
    elif kind == "image":
        out["stats"] = {k: np.sort(v).tolist() for k, v in image_stat_values(sample).items()}
    else:
        raise DataError(f"no drift summary for column kind {kind!r}")
    return out


def image_stat_values(values: pd.Series) -> dict[str, np.ndarray]:
    """Finite values of each image statistic: from the images (paths or bytes, the first
    IMAGE_SAMPLE), or from what the prediction log kept of them (dicts of statistics)."""
    from shipml.images.stats import STATS, image_stats

    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    logged = [v for v in present if isinstance(v, dict)]
    if logged:
        table = pd.DataFrame(logged).reindex(columns=list(STATS))
    else:
        table = image_stats(present[:IMAGE_SAMPLE], errors="nan")
    out = {}
    for stat in STATS:
        numbers = pd.to_numeric(table[stat], errors="coerce").to_numpy(dtype="float64")
        out[stat] = numbers[np.isfinite(numbers)]
    return out


# -- conversions shared with drift.py --------------------------------------------------------
def as_numbers(values: pd.Series, kind: str) -> np.ndarray:
    """Finite float values (datetimes as days since 1970-01-01); missing and inf dropped."""
    if kind == "datetime" or pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce")
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        values = (values - _EPOCH) / pd.Timedelta(days=1)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return numbers[np.isfinite(numbers)]


def as_labels(values: pd.Series) -> pd.Series:
    """Non-missing values as category strings (3.0 and "3" are the same category)."""
    present = values[values.notna()]
    return present.map(as_category).astype(object)


def as_lengths(values: pd.Series) -> np.ndarray:
    """Character lengths of the non-missing texts."""
    present = values[values.notna()]
    return present.astype(str).str.len().to_numpy(dtype="float64")


def _missing_share(values: pd.Series, kind: str) -> float | None:
    if len(values) == 0:
        return None
    if kind in ("numeric", "boolean"):
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        missing = int((~np.isfinite(numbers)).sum())
    else:
        missing = int(values.isna().sum())
    return round(missing / len(values), 6)


def _sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_rows, replace=False))
