"""`monitor`: is a registered model still seeing the data it was trained on, and still right?

It reads the prediction log of one model over a time window and compares it with the drift
reference saved with the model version that made the predictions:

- data drift: every feature column (PII columns excepted) against the training sample, with
  Evidently's default tests (see ``drift.py``); the dataset drifts when at least half of the
  columns do;
- prediction drift: the logged labels (or values) against the model's out-of-fold predictions;
- live metrics: where users sent the true label back (``/v1/feedback``), accuracy, ROC AUC and
  F1 (classification) or RMSE and MAE (regression), next to the validation score of the model.

Each version is compared with its own reference: without ``version``, the newest version that
logged predictions in the window is checked and rows of older versions are counted, not mixed in.
The result is plain JSON. ``status`` is ``"drift"``, ``"no_drift"`` or ``"no_data"`` (no
prediction in the window: nothing to check, which is not an error). A recommender is "checked"
for hit rate and CTR instead (monitor/recommend.py): drift tests do not apply to it.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipml.errors import DataError, RegistryError
from shipml.monitor.log import parse_since, read_log

__all__ = ["monitor", "LIVE_METRICS", "FEW_ROWS"]

log = logging.getLogger("shipml.monitor")

#: Live metrics shown next to the validation score, per task (the model's primary metric too).
LIVE_METRICS = {
    "binary": ("accuracy", "roc_auc", "f1_macro"),
    "multiclass": ("accuracy", "f1_macro", "log_loss"),
    "regression": ("rmse", "mae"),
}
#: Below this many predictions, drift tests can only catch large changes: the result says so.
FEW_ROWS = 30
_PROBA_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "calibration")
_EXAMPLES = 5


def monitor(
    registry,
    name: str,
    since: str | dt.datetime | None = "7d",
    until: str | dt.datetime | None = None,
    version: int | None = None,
    *,
    report: str | Path | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Drift and live metrics of model ``name`` over the predictions logged in [since, until).

    ``since`` / ``until``: "7d", "12h", "2w", an ISO date or an aware datetime (None: no bound).
    ``name`` may also be "churn/3" or "churn@production" (that version only). With ``report``,
    the HTML report is written there and its path is ``result["report_path"]``.
    Raises ModelNotFound for an unknown model or version, RegistryError when the checked version
    has no drift reference (trained before shipml saved one).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    start, end = _window(since, until, now)
    info, version = _resolve(registry, name, version)
    name = info.name
    if info.task == "recommend":  # hit rate and CTR; no feature columns to drift
        return _recommender(registry, info, version, start, end, now, report)
    if info.task == "answer":  # answer rate, helpfulness, unanswered questions (monitor/answer.py)
        return _answers(registry, info, version, start, end, now, report)
    # A version asked for by the user must be checkable, whatever the window holds.
    reference = _load_reference(registry, info) if version is not None else None
    logged = read_log(registry.engine, name, since=start, until=end, version=version)
    result = _empty(name, version, start, end, now)
    if logged.empty:
        return _with_report(result, report)
    rows, checked = _one_version(result, logged, version, name)
    if reference is None:
        info = registry.get(name, checked)
        reference = _load_reference(registry, info)
    typed = _check_drift(result, rows, checked, info, reference)
    return _with_report(result, report, reference, typed, rows["prediction"].dropna())


def _window(since, until, now: dt.datetime):
    """(start, end) of the window; either may be None (no bound)."""
    start = _when(since, now)
    end = _when(until, now)
    if start is not None and end is not None and start >= end:
        raise DataError(f"--since ({_human(start)}) must be before --until ({_human(end)})")
    return start, end


def _resolve(registry, name: str, version: int | None):
    """(the registered version's info, the version to check or None: the newest logged)."""
    # Unknown names, versions and aliases fail here, with the registry's own message.
    from shipml.registry.store import parse_ref

    base, ref_version, alias = parse_ref(name)
    if version is not None:  # --version wins over a version in the reference
        return registry.get(base, version), version
    info = registry.resolve(name)
    if ref_version is not None or alias is not None:  # "churn/3", "churn@production"
        version = info.version
    return info, version


def _one_version(result: dict, logged: pd.DataFrame, version: int | None, name: str):
    """(the logged rows of the version checked, that version): `version`, else the newest in
    the window; the other versions' counts go into `result`."""
    # One version at a time: each is compared with the reference of its own training data.
    versions = logged["version"].astype(int)
    checked = int(version if version is not None else versions.max())
    others = versions[versions != checked].value_counts().sort_index()
    rows = logged[versions == checked].reset_index(drop=True)
    result.update(version=checked, n_predictions=len(rows))
    result["other_versions"] = {str(v): int(n) for v, n in others.items()}
    if len(others):
        listed = ", ".join(f"{n:,} by version {v}" for v, n in others.items())
        result["notes"].append(
            f"Only the {len(rows):,} predictions of version {checked} (the newest in the window) "
            f"were checked; {listed} were left out. Each version is compared with its own "
            f"training data: run `shipml monitor {name} --version N` to check another one."
        )
    result["first_prediction"] = _iso(rows["created_at"].min())
    result["last_prediction"] = _iso(rows["created_at"].max())
    return rows, checked


def _check_drift(result: dict, rows: pd.DataFrame, checked: int, info, reference: dict):
    """Input, prediction and live-metric drift of `rows` against the version's reference into
    `result`; returns the rows' typed inputs (for the report)."""
    from shipml.data.schema import Schema
    from shipml.monitor.drift import dataset_drift

    schema = Schema.from_dict(info.schema)
    task = schema.task
    result["task"] = task
    result["reference"] = {
        "version": checked,
        "n_rows": reference.get("n_rows"),
        "n_sample": reference.get("n_sample"),
    }
    typed = _typed_inputs(rows, schema, result["notes"])
    result["dataset"] = dataset_drift(reference, typed, schema)
    result["pii_excluded"] = result["dataset"]["pii_excluded"]
    result["drifted_columns"] = _drifted(result["dataset"])
    result["prediction"] = _prediction_drift(reference, rows, task)
    result["live"] = _live(rows, schema, info.metrics)
    if len(rows) < FEW_ROWS:
        result["notes"].append(
            f"Only {len(rows)} predictions in the window: the drift tests can only catch large "
            "changes on so few rows. Widen the window with --since for a firmer answer."
        )
    drift = bool(result["dataset"]["dataset_drift"] or result["prediction"]["drift"])
    result.update(status="drift" if drift else "no_drift", drift_detected=drift)
    result["message"] = _summary(result)
    return typed


def _empty(name: str, version: int | None, start, end, now) -> dict[str, Any]:
    """The result before anything was read: no predictions in the window."""
    which = f"version {version} of " if version is not None else ""
    return {
        "model": name,
        "version": version,
        "window": {"since": _iso(start), "until": _iso(end) or _iso(now)},
        "generated_at": _iso(now),
        "status": "no_data",
        "drift_detected": False,
        "n_predictions": 0,
        "other_versions": {},
        "notes": [],
        "message": (
            f"no predictions of {which}{name!r} were logged between {_human(start)} and "
            f"{_human(end or now)}: nothing to check (is the model served with `shipml serve`, "
            "and is the window right?)"
        ),
    }


def _recommender(registry, info, version, start, end, now, report) -> dict:
    from shipml.monitor.recommend import recommendation_monitor

    result = _empty(info.name, version, start, end, now)
    result = recommendation_monitor(registry.engine, result, start=start, end=end,
                                    version=version, offline=info.metrics or {})  # fmt: skip
    return _with_report(result, report)


def _answers(registry, info, version, start, end, now, report) -> dict:
    from shipml.monitor.answer import answer_monitor

    result = _empty(info.name, version, start, end, now)
    result = answer_monitor(registry.engine, result, start=start, end=end, version=version,
                            offline=info.metrics or {})  # fmt: skip
    return _with_report(result, report)


# -- steps -----------------------------------------------------------------------------------
def _load_reference(registry, info) -> dict:
    from shipml.monitor.reference import ARTIFACT, FORMAT

    reader = registry.open(info)
    if ARTIFACT not in reader.files:
        raise RegistryError(
            f"{info.ref} has no drift reference: it was trained before shipml saved one with "
            f"each model. Retrain it (shipml train ... --name {info.name}) and serve the new "
            "version to monitor it"
        )
    reference = reader.read_json(ARTIFACT)  # sha256-checked against the manifest
    if not isinstance(reference, dict) or reference.get("format") != FORMAT:
        raise RegistryError(f"{info.ref}: {ARTIFACT} is not a shipml drift reference")
    return reference


def _with_report(result: dict, path, *data) -> dict:
    if path is not None:
        from shipml.monitor.report import write_monitor_report

        written = write_monitor_report(path, result, *data)
        result["report_path"] = str(written)
    return result


def _typed_inputs(rows: pd.DataFrame, schema, notes: list[str]) -> pd.DataFrame:
    """The logged inputs as the model's typed feature columns (bad values become missing)."""
    inputs = rows.copy()
    absent = [c.name for c in schema.features if not c.pii and c.name not in inputs.columns]
    for column in absent:  # never logged: every value is missing, and the result shows it
        inputs[column] = None
    if absent:
        notes.append(
            f"The prediction log has no values for {len(absent)} column(s) the model uses: "
            f"{', '.join(absent[:10])}. They count as missing."
        )
    pii = [c.name for c in schema.features if c.pii]
    for column in pii:  # only keyed hashes are logged; they are never compared
        inputs[column] = None
    if pii:
        notes.append(
            f"Column(s) marked as personal data were not checked for drift (the training "
            f"reference never stores them): {', '.join(pii)}."
        )
    images = [c.name for c in schema.features if c.kind == "image" and c.name in inputs]
    logged = {c: inputs.pop(c) for c in images}  # the log's statistics of each image, kept as is
    typed = schema.coerce(inputs.assign(**{c: None for c in images}), strict=False)
    return typed.assign(**logged)


def _drifted(dataset: dict) -> list[str]:
    """Drifted column names, strongest first (smallest p-value, then largest distance)."""
    drifted = [c for c in dataset["columns"] if c["drift"]]

    def strength(c: dict) -> tuple:
        if c["p_value"] is not None:
            return (0, c["p_value"])
        return (1, -(c["statistic"] or 0.0))

    return [c["column"] for c in sorted(drifted, key=strength)]


def _prediction_drift(reference: dict, rows: pd.DataFrame, task: str) -> dict:
    from shipml.monitor.drift import prediction_drift

    predictions = rows["prediction"]
    predictions = predictions[predictions.notna()].tolist()
    if "prediction" not in reference:
        raise RegistryError("the drift reference has no predictions; retrain the model")
    return prediction_drift(reference["prediction"], predictions, task)


def _live(rows: pd.DataFrame, schema, offline: dict) -> dict | None:
    """Metrics on the predictions that received a true label, next to the validation score."""
    labelled = rows[rows["feedback"].notna()]
    if labelled.empty:
        return None
    task = schema.task
    if task == "regression":
        truth = pd.to_numeric(labelled["feedback"], errors="coerce").to_numpy(dtype="float64")
        pred = pd.to_numeric(labelled["prediction"], errors="coerce").to_numpy(dtype="float64")
        ok = np.isfinite(truth) & np.isfinite(pred)
        bad = labelled["feedback"][~np.isfinite(truth)]
    else:
        truth = _as_classes(labelled["feedback"], schema)
        pred = _as_classes(labelled["prediction"], schema)
        ok = np.array([t is not None and p is not None for t, p in zip(truth, pred)], dtype=bool)
        bad = labelled["feedback"][[t is None for t in truth]]
    out: dict[str, Any] = {
        "n_feedback": len(labelled),
        "n_scored": int(ok.sum()),
        "n_unmatched": len(bad),
        "unmatched_examples": list(dict.fromkeys(map(str, bad)))[:_EXAMPLES],
        "metrics": None,
        "comparison": [],
    }
    if not ok.any():
        return out
    if task == "regression":
        from shipml.evaluate.metrics import regression_metrics

        metrics = regression_metrics(truth[ok], pred[ok])
    else:
        metrics = _classification(labelled[ok], truth[ok], pred[ok], schema)
    out["metrics"] = metrics
    from shipml.evaluate.metrics import METRIC_DIRECTIONS, is_better

    names = list(LIVE_METRICS[task])
    primary = offline.get("primary")
    if primary and primary not in names and primary in METRIC_DIRECTIONS:
        names.append(primary)
    for metric in names:
        live, before = metrics.get(metric), offline.get(metric)
        if live is None:
            continue
        out["comparison"].append(
            {
                "metric": metric,
                "live": live,
                "offline": before,
                "change": None if before is None else live - before,
                "worse": before is not None and is_better(metric, before, live),
            }
        )
    return out


def _classification(labelled: pd.DataFrame, truth, pred, schema) -> dict:
    from shipml.evaluate.metrics import classification_metrics

    classes = list(schema.classes)
    proba = _logged_proba(labelled, classes)
    if proba is None:  # no probabilities logged: score the labels only
        proba = np.asarray(pred, dtype=object)[:, None] == np.asarray(classes, dtype=object)
        metrics = classification_metrics(truth, proba.astype(float), classes, y_pred=pred)
        return {**metrics, **dict.fromkeys(_PROBA_METRICS)}
    return classification_metrics(truth, proba, classes, y_pred=pred)


def _logged_proba(labelled: pd.DataFrame, classes: list) -> np.ndarray | None:
    from shipml.data.schema import as_category

    columns = []
    for cls in classes:
        names = [f"proba:{cls}", f"proba:{as_category(cls)}"]
        found = next((n for n in names if n in labelled.columns), None)
        if found is None:
            return None
        columns.append(found)
    proba = labelled[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    if not np.isfinite(proba).all() or np.abs(proba.sum(axis=1) - 1).max() > 1e-3:
        return None
    return proba


def _as_classes(values: pd.Series, schema) -> np.ndarray:
    """Labels as the model's class values (1, "1" and 1.0 match); unknown or missing: None."""
    from shipml.data.schema import UnknownLabel

    frame = pd.DataFrame({schema.target: values.to_numpy(dtype=object)})
    labels = schema.target_values(frame)
    return np.array([None if isinstance(v, UnknownLabel) else v for v in labels], dtype=object)


# -- wording ---------------------------------------------------------------------------------
def _summary(result: dict) -> str:
    data = result["dataset"]
    share = f"{data['n_drifted']} of {data['n_columns']} feature columns drifted"
    parts = [
        f"{'DRIFT' if result['drift_detected'] else 'no drift'} in {result['n_predictions']:,} "
        f"predictions of {result['model']}/{result['version']}",
        share + (" (dataset drift)" if data["dataset_drift"] else ""),
        "predictions drifted" if result["prediction"]["drift"] else "predictions stable",
    ]
    live = result.get("live")
    if live and live["comparison"]:
        first = live["comparison"][0]
        offline = "" if first["offline"] is None else f" vs {first['offline']:.4g} at validation"
        parts.append(f"live {first['metric']} {first['live']:.4g}{offline}")
    return "; ".join(parts)


def _when(value: str | dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    return parse_since(str(value), now=now)


def _iso(value) -> str | None:
    if value is None or value is pd.NaT:
        return None
    return pd.Timestamp(value).isoformat()


def _human(value: dt.datetime | None) -> str:
    return "the beginning" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")
