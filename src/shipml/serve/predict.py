"""One prediction request: validate records, score, give each row an id, count and log it."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import numpy as np

from shipml.data.cells import cell_problem
from shipml.errors import SchemaError

__all__ = ["Predictor", "check_records", "csv_field", "json_field"]

QUICK_ROWS = 16


def json_field(i: int, column: str) -> str:
    """Where a cell of a JSON request is: records[3].age."""
    return f"records[{i}].{column}"


def csv_field(i: int, column: str) -> str:
    """Where a cell of an uploaded CSV is: row 4 (the 4th data row), column 'age'."""
    return f"row {i + 1}, column {column!r}"


def check_records(model, records: list[dict], where=json_field) -> None:
    """Every record names every input column (null is a missing value; an absent key is a
    client bug worth reporting) and each value suits its column (data/cells.py): otherwise a
    SchemaError (422) naming `where(i, column)`."""
    needed = [(c.name, c.kind) for c in model.schema.features]
    for i, record in enumerate(records):
        for name, kind in needed:
            value = record.get(name, _ABSENT)
            if value is _ABSENT:
                _absent(i, record, needed)
            problem = cell_problem(kind, value)
            if problem:
                raise SchemaError(f"{where(i, name)}: {problem}")


_ABSENT = object()


def _absent(i: int, record: dict, needed) -> None:
    absent = [c for c, _ in needed if c not in record]
    shown = ", ".join(repr(c) for c in absent[:5])
    more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
    raise SchemaError(f"records[{i}] has no {shown}{more} (use null for a missing value)")


class Predictor:
    """Scores records for the routes; counts them in the metrics and appends them to the log.

    `log` is a PredictionLog or None (logging off); `pii` maps a model to its PiiHasher.
    """

    def __init__(self, metrics, log, hasher_for) -> None:
        self.metrics, self.log, self.hasher_for = metrics, log, hasher_for

    def quick(self, model, n_rows: int) -> bool:
        """Whether scoring `n_rows` takes about a millisecond (a few rows of a tabular model on
        the pandas-free path): then the server runs it on the event loop, in arrival order,
        instead of queueing it behind other requests in the thread pool."""
        rows = model._rows
        return (
            n_rows <= QUICK_ROWS
            and (rows is None or rows.usable)
            and all(c.kind in ("numeric", "boolean", "categorical") for c in model.schema.features)
        )

    def predict(self, name: str, model, version: int, records: list[dict], key: str | None,
                where=json_field):  # fmt: skip
        """One dict per record: id, label + probabilities (classification) or value.
        `where=None`: the caller checked the records already (the CSV route checks every row
        first, so that an error names the CSV's row, then scores in chunks)."""
        started = time.perf_counter()
        if where is not None:
            check_records(model, records, where)
        labels, proba = model.outputs(records)
        ids = [str(uuid.uuid4()) for _ in records]
        if proba is None:
            rows = [{"id": i, "value": float(v)} for i, v in zip(ids, labels)]
            self.metrics.count_predictions(name, version, values=labels)
        else:
            classes = [str(c) for c in model.classes]
            rounded = np.round(proba, 6).tolist()
            rows = [
                {"id": i, "label": _plain(lab), "probabilities": dict(zip(classes, row))}
                for i, lab, row in zip(ids, labels, rounded)
            ]
            self.metrics.count_predictions(name, version, labels=labels)
        self._log(name, model, version, records, rows, key, time.perf_counter() - started)
        return rows

    def log_frame(self, name: str, model, version: int, frame, outputs: dict, key) -> None:
        """Count and log what an Open Inference Protocol request computed (`outputs` as made by
        v2.compute_outputs: label array, probabilities DataFrame, prediction array)."""
        started = time.perf_counter()
        n = len(frame)
        rows: list[dict] = [{"id": str(uuid.uuid4())} for _ in range(n)]
        if "prediction" in outputs:
            values = np.asarray(outputs["prediction"], dtype=float)
            self.metrics.count_predictions(name, version, values=values)
            for row, value in zip(rows, values):
                row["value"] = float(value)
        proba = outputs.get("probabilities")
        proba = None if proba is None else np.asarray(proba, dtype=float)
        labels = outputs.get("label")
        if labels is None and proba is not None:
            labels = model.labels_from_proba(proba)
        if labels is not None:
            self.metrics.count_predictions(name, version, labels=labels)
            for row, label in zip(rows, labels):
                row["label"] = _plain(label)
        if proba is not None:
            classes = [str(c) for c in model.classes]
            for row, p in zip(rows, np.round(proba, 6).tolist()):
                row["probabilities"] = dict(zip(classes, p))
        records = frame.to_dict(orient="records")
        self._log(name, model, version, records, rows, key, time.perf_counter() - started)

    def _log(self, name, model, version, records, rows, key, seconds) -> None:
        if self.log is None:
            return
        from shipml.serve.images import image_columns, log_cell

        hasher = self.hasher_for(model)
        columns = [c.name for c in model.schema.features]
        images = set(image_columns(model))  # a fingerprint of each image, never the image
        now = dt.datetime.now(dt.timezone.utc)
        latency_ms = 1000 * seconds / max(1, len(rows))
        entries = []
        for record, row in zip(records, rows):
            inputs = hasher.scrub({c: _plain_json(record.get(c)) for c in columns
                                   if c not in images})  # fmt: skip
            inputs.update({c: log_cell(record.get(c)) for c in images})
            outputs = {k: v for k, v in row.items() if k != "id"}
            entries.append({
                "id": row["id"], "model": name, "version": version, "created_at": now,
                "inputs": inputs, "outputs": outputs, "latency_ms": latency_ms,
                "key_name": key,
            })  # fmt: skip
        self.log.append(entries)


def _plain_json(value):
    """A cell as JSON stores it: NaN and infinities (Python's json accepts them) become null,
    NumPy scalars (records from a DataFrame) plain numbers; anything else is already JSON."""
    if isinstance(value, (str, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if value - value == 0 else None
    from shipml.model import json_safe

    return json_safe(value)


def _plain(value):
    return value.item() if hasattr(value, "item") else value
