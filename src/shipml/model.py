"""Model: what users hold. Schema + encoder + an ensemble of fitted learners + what we know
about it (metrics, lineage, importance). The CLI, the Python API and the server all call these
methods; nothing is implemented twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shipml.data.features import Encoder
from shipml.data.io import read_table
from shipml.data.schema import Schema, UnknownLabel
from shipml.errors import ArtifactIntegrityError, DataError, SchemaError
from shipml.identity import Registered
from shipml.learners.base import to_proba, untransform_target
from shipml.tasks import task_kind

__all__ = [
    "Model",
    "load_model",
    "as_frame",
    "explanation_frame",
    "json_safe",
    "checked_confidence",
    "scoped_metrics",
]

FORMAT = 1
TEXT_ENCODER = "text_encoder"  # file name prefix of a stored sentence encoder
IMAGE_ENCODER = "image_encoder"  # file name prefix of a stored image encoder


def as_frame(data) -> pd.DataFrame:
    """A DataFrame from a path, a DataFrame, one record (dict) or a list of records."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, Path)):
        return read_table(data).frame
    if isinstance(data, dict):
        return pd.DataFrame([data])
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        if not data:
            raise DataError("no records given")
        return pd.DataFrame(data)
    raise DataError(
        f"cannot read input of type {type(data).__name__}: give a file path, a pandas "
        "DataFrame or a list of records (dicts of column -> value)"
    )


@dataclass
class Member:
    fitted: object  # a Fitted (learners/base.py)
    weight: float
    name: str = ""


@dataclass
class Model(Registered):
    schema: Schema
    encoder: Encoder
    members: list[Member]
    transform: str = "none"  # regression target transform
    threshold: float | None = None  # binary: positive when P(positive) >= threshold
    info: dict = field(default_factory=dict)  # metrics, lineage, importance, validation, ...
    _rows: object = field(default=None, init=False, repr=False, compare=False)  # RowEncoder

    # -- identity ----------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def classes(self) -> list | None:
        return self.schema.classes

    def __repr__(self) -> str:
        who = f"{self.name}/{self.version}" if self.name else "unsaved"
        primary = self.metrics.get("primary")
        score = f", {primary}={self.metrics.get(primary):.4g}" if primary in self.metrics else ""
        return f"<shipml.Model {who} {self.task} on {len(self.schema.features)} columns{score}>"

    # -- core computation --------------------------------------------------------------------
    def encode(self, data) -> tuple[pd.DataFrame, np.ndarray]:
        """Validate input against the schema and encode it: (input frame, feature matrix)."""
        frame = self.input_frame(data)
        typed = self.schema.coerce(frame, strict=True)
        return frame, self.encoder.transform(typed)

    def input_frame(self, data) -> pd.DataFrame:
        """`data` as a table (as_frame); for a model with image columns, a folder, a zip or an
        image file is a table of its images (shipml.images.inputs)."""
        from shipml.images.inputs import image_input_frame

        frame = image_input_frame(self.schema, data)
        return as_frame(data) if frame is None else frame

    def raw(self, X: np.ndarray) -> np.ndarray:
        total = None
        for m in self.members:
            part = m.weight * m.fitted.raw(X)
            total = part if total is None else total + part
        return total

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Ensemble contributions per encoded feature (last column: bias), in raw-score space."""
        total = None
        for m in self.members:
            part = m.weight * m.fitted.contributions(X)
            total = part if total is None else total + part
        return total

    def labels_from_proba(self, proba: np.ndarray, threshold: float | None = None, *,
                          min_confidence: float | None = None,
                          scoped: bool = True) -> np.ndarray:  # fmt: skip
        """Class labels of probabilities (columns in the order of `classes`). Binary: positive
        when P(positive) >= `threshold` (default: the model's own decision threshold). Below
        `min_confidence` (default: the model's out-of-scope threshold, scope.py) the answer is
        the out-of-scope label (None without one); `scoped=False`: never."""
        threshold = self._checked_threshold(threshold)
        if self.task == "binary" and threshold is not None:
            idx = (proba[:, 1] >= threshold).astype(int)
        else:
            idx = proba.argmax(axis=1)
        labels = np.asarray(self.classes)[idx]
        if not scoped:
            return labels
        from shipml.scope import apply_scope

        scope = self.scope or {}
        cut = scope.get("threshold")
        if min_confidence is not None:
            cut = checked_confidence(min_confidence)
        return apply_scope(labels, proba, self.classes, scope.get("label"), cut)

    @property
    def scope(self) -> dict | None:
        """The out-of-scope decision (scope.py), or None."""
        return self.info.get("scope")

    def _checked_threshold(self, threshold) -> float | None:
        if threshold is None:
            return self.threshold
        if self.task != "binary":
            raise DataError(f"a decision threshold is for binary models; this one is {self.task}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise DataError(f"threshold must be a number between 0 and 1, got {threshold!r}")
        if not 0.0 <= float(threshold) <= 1.0:  # NaN fails too
            raise DataError(f"threshold must be between 0 and 1, got {threshold!r}")
        return float(threshold)

    # -- public API --------------------------------------------------------------------------
    def _encoded(self, data) -> tuple[pd.Index, np.ndarray]:
        """(row index, feature matrix); a few JSON records skip pandas (data/rows.py)."""
        records = [data] if isinstance(data, dict) else data
        if isinstance(records, list):
            if self._rows is None:
                from shipml.data.rows import RowEncoder

                self._rows = RowEncoder(self.schema, self.encoder)
            X = self._rows.encode(records)
            if X is not None:
                return pd.RangeIndex(len(records)), X
        frame, X = self.encode(data)
        return frame.index, X

    def outputs(self, data, *, threshold: float | None = None,
                min_confidence: float | None = None):  # fmt: skip
        """(labels or values, class probabilities or None): what the server sends back."""
        threshold = self._checked_threshold(threshold)
        if min_confidence is not None:
            if self.task == "regression":
                raise DataError("min_confidence is for classifiers; this model predicts numbers")
            checked_confidence(min_confidence)
        _, X = self._encoded(data)
        return task_kind(self.task).outputs(self, self.raw(X), threshold, min_confidence)

    def predict(self, data, *, threshold: float | None = None,
                min_confidence: float | None = None) -> np.ndarray:  # fmt: skip
        """Labels (classification, the original class values) or numbers (regression).
        Binary: `threshold` overrides the decision threshold (positive when P >= threshold).
        `min_confidence`: below it (the largest in-scope class probability) the answer is the
        out-of-scope label, or None when the model has none (default: the model's own)."""
        return self.outputs(data, threshold=threshold, min_confidence=min_confidence)[0]

    def predict_proba(self, data) -> pd.DataFrame:
        """One column per class label, rows summing to 1."""
        if self.task == "regression":
            raise DataError("predict_proba is for classifiers; this model predicts numbers")
        index, X = self._encoded(data)
        proba = to_proba(self.raw(X), self.task)
        return pd.DataFrame(proba, columns=list(self.classes), index=index)

    def evaluate(self, data, *, report: str | Path | None = None) -> dict:
        """Metrics on labelled data (the target column must be present); optionally an HTML
        report. Rows whose target is missing are left out."""
        from shipml.evaluate.metrics import regression_metrics

        frame = self.input_frame(data)
        y = self.schema.target_values(frame)
        keep = np.array([v is not None and not _is_nan(v) for v in y])
        if not keep.any():
            raise DataError(f"no row has a value in the target column '{self.schema.target}'")
        frame, y = frame[keep], y[keep]
        unknown = [v for v in y if isinstance(v, UnknownLabel)]
        if unknown:
            raise SchemaError(
                f"target column '{self.schema.target}' has {len(unknown)} value(s) the model "
                f"never saw in training, e.g. {unknown[0]!r}; known classes: {self.classes}"
            )
        _, X = self.encode(frame)
        raw = self.raw(X)
        if self.task == "regression":
            pred = untransform_target(raw, self.transform)
            metrics = regression_metrics(y.astype(float), pred)
            proba = None
        else:
            proba = to_proba(raw, self.task)
            pred = self.labels_from_proba(proba)
            metrics = scoped_metrics(self, y, proba, pred)
        if report is not None:
            metrics["report_path"] = str(self._write_report(report, frame, y, pred, proba, metrics))
        return metrics

    def _write_report(self, path, frame, y, pred, proba, metrics) -> Path:
        from shipml.evaluate.report import write_report
        from shipml.evaluate.summary import data_summary

        text = self._text_columns()
        return write_report(
            Path(path),
            title=f"{self.name or 'model'} — evaluation on {len(frame):,} rows",
            task=self.task,
            metrics=metrics,
            y_true=y,
            y_pred=pred,
            proba=proba,
            classes=self.classes,
            importance=self.info.get("importance"),
            data_summary=data_summary(frame, self.schema),
            validation=f"scored on {len(frame):,} labelled rows given for evaluation",
            model_info=self.describe(),
            examples=frame[text] if text and self.task != "regression" else None,
            threshold=self.threshold,
            images=self._report_images(frame),
        )

    def _report_images(self, frame: pd.DataFrame):
        """The first image column's cells, for the report's thumbnails (classifiers)."""
        columns = [c.name for c in self.schema.features if c.kind == "image"]
        if not columns or self.task == "regression" or columns[0] not in frame:
            return None
        return frame[columns[0]].tolist()

    def explain(self, data, *, top: int = 5, words: bool = True) -> pd.DataFrame:
        """Top reasons per row: one line per (row, reason) with the column, its value and its
        contribution (log-odds for classifiers, target units for regression). Models with text
        columns get a `words` column: the text's most influential words ("lost +4.87, ...").
        A classifier that reads only images: one line per image (`explain_image`'s image,
        prediction, probability, region and heat map)."""
        if self._image_only():
            from shipml.images.explain import explanations_frame

            return explanations_frame(self.explain_image(data))
        records = self.explain_records(data, top=top, words=words)
        return explanation_frame(records, words=words and bool(self._text_columns()))

    def explain_records(self, data, *, top: int = 5, words: bool = True) -> list[dict]:
        """Per row: prediction, baseline (the average score) and the top reasons.

        A reason for a text column also lists its `words` that moved the score most: removing
        each (distinct) word and scoring again, contribution = full score - score without it,
        in the reason's units (explain_text.py); `words_omitted` counts the words of a long
        text left untested. `words=False` skips this (it scores each word's variant once)."""
        frame = self.input_frame(data)
        typed = self.schema.coerce(frame, strict=True)
        X = self.encoder.transform(typed)
        contrib = self.contributions(X)
        raw = self.raw(X)
        idx = None
        if self.task == "regression":
            predictions = untransform_target(raw, self.transform)
        else:
            predictions = self.labels_from_proba(to_proba(raw, self.task))
        if self.task == "multiclass":  # explain the predicted class
            idx = np.array([self.classes.index(p) for p in predictions])
            contrib = contrib[np.arange(len(X)), idx]
            raw = raw[np.arange(len(X)), idx]
        per_column, columns = self._by_column(contrib[:, :-1])
        out = []
        for i in range(len(X)):
            order = np.argsort(-np.abs(per_column[i]))[:top]
            reasons = [
                {
                    "column": columns[j],
                    "value": _plain(frame[columns[j]].iloc[i]),
                    "contribution": round(float(per_column[i, j]), 6),
                }
                for j in order
                if per_column[i, j] != 0
            ]
            out.append(
                {
                    "prediction": _plain(predictions[i]),
                    "baseline": round(float(contrib[i, -1]), 6),
                    "reasons": reasons,
                }
            )
        text = self._text_columns()
        if words and text:
            self._add_words(out, typed, raw, idx, text)
        return out

    def explain_image(self, data, *, column: str | None = None, grid: int = 7,
                      on_image=None) -> list:  # fmt: skip
        """Per image of `data` (a folder, a zip, an image file or a table, as `input_frame`):
        an ImageExplanation with the predicted class, its probability and the occlusion heat
        map of that class (a (grid, grid) array; `.overlay_png()` draws it over the photo).
        Scores grid² + 1 copies of each image (shipml.images.heatmap); `on_image(done,
        total)` after each image."""
        from shipml.images.explain import explain_images

        return explain_images(self, data, column=column, grid=grid, on_image=on_image)

    def _image_only(self) -> bool:
        kinds = {c.kind for c in self.schema.features}
        return kinds == {"image"} and self.task != "regression"

    def _text_columns(self) -> list[str]:
        return [c.name for c in self.schema.features if c.kind == "text"]

    def _add_words(self, out: list[dict], typed, scores, classes, text: list[str]) -> None:
        """Put the occlusion words into the reasons of text columns (all rows in one batch)."""
        from shipml.explain_text import word_contributions

        jobs = [
            (i, r["column"])
            for i, item in enumerate(out)
            for r in item["reasons"]
            if r["column"] in text
        ]
        if not jobs:
            return
        found = word_contributions(self, typed, jobs, scores, classes)
        for i, item in enumerate(out):
            for reason in item["reasons"]:
                if (i, reason["column"]) in found:
                    reason.update(found[(i, reason["column"])])

    def _by_column(self, contrib: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Sum encoded-feature contributions into the user's original columns."""
        columns = list(dict.fromkeys(self.encoder.sources))
        index = {c: k for k, c in enumerate(columns)}
        mapping = np.zeros((len(self.encoder.sources), len(columns)))
        for j, source in enumerate(self.encoder.sources):
            mapping[j, index[source]] = 1.0
        return contrib @ mapping, columns

    def global_importance(self, X: np.ndarray) -> dict[str, float]:
        """Mean |contribution| per original column over the rows of X, largest first."""
        contrib = self.contributions(X)
        if self.task == "multiclass":
            contrib = np.abs(contrib).sum(axis=1)
        per_column, columns = self._by_column(np.abs(contrib[:, :-1]))
        mean = per_column.mean(axis=0)
        order = np.argsort(-mean)
        return {columns[j]: round(float(mean[j]), 6) for j in order}

    def describe(self) -> dict:
        """Key facts for reports and `models show`."""
        lineage = self.info.get("lineage", {})
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "target": self.schema.target,
            "classes": ", ".join(map(str, self.classes)) if self.classes else None,
            "ensemble": ", ".join(f"{m.name} ×{m.weight:.2f}" for m in self.members),
            "text features": self.info.get("text_features"),
            "text runtime": (self.info.get("text_runtime") or {}).get("runtime"),
            "decision threshold": self.threshold,
            "threshold reason": (self.info.get("threshold") or {}).get("reason"),
            "out of scope": (self.scope or {}).get("reason"),
            "out-of-scope thresholds": _scope_table(self.scope),
            "target transform": None if self.transform == "none" else self.transform,
            "validation": self.info.get("validation"),
            "trained rows": lineage.get("rows"),
            "training seconds": lineage.get("duration_s"),
            "seed": lineage.get("seed"),
            "data sha256": lineage.get("data_sha256"),
            "libraries": ", ".join(f"{k} {v}" for k, v in lineage.get("libraries", {}).items()),
        }

    # -- storage -----------------------------------------------------------------------------
    def write(self, writer) -> None:
        """Write the model's files (JSON, LightGBM text, .npy; a sentence encoder as safetensors
        + tokenizer JSON) through an ArtifactWriter."""
        members = []
        for i, m in enumerate(self.members):
            meta, files = m.fitted.artifacts(f"member{i}")
            for fname, content in files.items():
                writer.write(fname, content)
            members.append({"name": m.name, "weight": m.weight, "prefix": f"member{i}", **meta})
        info = json_safe(
            {k: v for k, v in self.info.items() if k not in ("name", "version", "report_path")}
        )
        writer.write_json(
            "model.json",
            {
                "format": FORMAT,
                "members": members,
                "transform": self.transform,
                "threshold": self.threshold,
                "info": info,
            },
        )
        writer.write_json("schema.json", self.schema.to_dict())
        encoder = self.encoder.to_dict()
        if self.encoder.text_encoder is not None:  # the sentence encoder travels with the model
            meta, files = self.encoder.text_encoder.artifacts(TEXT_ENCODER)
            for fname, content in files.items():
                writer.write(fname, content)
            encoder["text_encoder"] = meta
        if self.encoder.image_encoder is not None:  # and so does the image network
            meta, files = self.encoder.image_encoder.artifacts(IMAGE_ENCODER)
            for fname, content in files.items():
                writer.write(fname, content)
            encoder["image_encoder"] = meta
        writer.write_json("encoder.json", encoder)

    @classmethod
    def read(
        cls, reader, *, name: str | None = None, version: int | None = None, cache: bool = True
    ) -> Model:
        """The stored model. `cache=False`: its text encoder neither reads nor writes the
        on-disk embedding cache (a server's requests rarely repeat a text).

        Every file is parsed here (LightGBM trees, the ONNX graph), so a damaged version fails
        at load, not at its first prediction: with ArtifactIntegrityError naming the file."""
        try:
            return cls._read(reader, name=name, version=version, cache=cache)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            # the JSON files parse but do not describe a model (edited, or another program's)
            raise ArtifactIntegrityError(
                f"{reader.label}: model.json, schema.json or encoder.json does not describe a "
                f"shipml model ({type(exc).__name__}: {exc})",
                path=str(reader.path),
            ) from exc

    @classmethod
    def _read(cls, reader, *, name: str | None, version: int | None, cache: bool) -> Model:
        from shipml.learners.registry import load_fitted

        spec = reader.read_json("model.json")
        if spec.get("format") != FORMAT:
            raise DataError(f"model format {spec.get('format')} is not supported by this shipml")
        schema = Schema.from_dict(reader.read_json("schema.json"))
        encoder_spec = reader.read_json("encoder.json")
        encoder = Encoder.from_dict(encoder_spec)
        if "text_encoder" in encoder_spec:  # torch loads on first prediction (it is heavy)
            from shipml.encoders import from_artifacts

            meta = encoder_spec["text_encoder"]
            encoder.text_encoder = from_artifacts(meta, reader, cache=cache)
        if "image_encoder" in encoder_spec:
            from shipml.encoders.pixels import image_features_from_artifacts

            meta = encoder_spec["image_encoder"]
            encoder.image_encoder = image_features_from_artifacts(meta, reader)
        members = []
        for m in spec["members"]:
            fitted = load_fitted(m, reader, schema.task)
            members.append(Member(fitted, float(m["weight"]), m.get("name", "")))
        info = dict(spec.get("info", {}), name=name, version=version)
        if "report.html" in reader.files:
            info["report_path"] = str(reader.path / "report.html")
        return cls(schema, encoder, members, spec["transform"], spec["threshold"], info)


def load_model(reader, *, name: str | None = None, version: int | None = None,
               cache: bool = True):  # fmt: skip
    """Any stored model through an ArtifactReader: a recommender (model.json's "kind" is
    "recommend": recommend/model.py's RecModel), an FAQ assistant ("answer":
    answer/model.py's AnswerModel) or a Model (tables and texts)."""
    spec = reader.read_json("model.json")
    if isinstance(spec, dict) and spec.get("kind") == "recommend":
        from shipml.recommend.model import RecModel

        return RecModel.read(reader, name=name, version=version, cache=cache)
    if isinstance(spec, dict) and spec.get("kind") == "answer":
        from shipml.answer.model import AnswerModel

        return AnswerModel.read(reader, name=name, version=version, cache=cache)
    return Model.read(reader, name=name, version=version, cache=cache)


def explanation_frame(records: list[dict], *, words: bool = False) -> pd.DataFrame:
    """Model.explain_records as a table: one line per (row, reason); `words` adds a column with
    the top words of text reasons on one line."""
    from shipml.explain_text import compact

    columns = ["row", "prediction", "rank", "column", "value", "contribution"]
    if words:
        columns.append("words")
    rows = []
    for i, item in enumerate(records):
        for rank, reason in enumerate(item["reasons"], 1):
            line = {"row": i, "prediction": item["prediction"], "rank": rank}
            line.update({k: reason[k] for k in ("column", "value", "contribution")})
            if words:
                line["words"] = compact(reason["words"]) if "words" in reason else None
            rows.append(line)
    return pd.DataFrame(rows, columns=columns)


def _scope_table(scope: dict | None) -> str | None:
    """Validation in-scope accuracy / oos recall per confidence threshold, one line."""
    curve = (scope or {}).get("curve") or []
    if not curve or "oos_recall" not in curve[0]:
        return None
    return (
        "; ".join(
            f"{p['threshold']:.2f}: {p['in_scope_accuracy']:.3f} / {p['oos_recall']:.3f}"
            for p in curve
        )
        + " (threshold: in-scope accuracy / oos recall)"
    )


def scoped_metrics(model: Model, y, proba, pred) -> dict:
    """Classification metrics, and with an out-of-scope decision its in-scope accuracy, oos
    recall and F1 (a rejecting model without an oos label: the class metrics score its
    unrejected labels)."""
    from shipml.evaluate.metrics import classification_metrics
    from shipml.scope import scope_metrics

    scope = model.scope
    plain = pred if scope is None or scope.get("label") is not None else None
    if plain is None:
        plain = model.labels_from_proba(proba, scoped=False)
    metrics = classification_metrics(y, proba, list(model.classes), y_pred=plain)
    if scope is not None:
        metrics.update(scope_metrics(y, pred, scope.get("label")))
    return metrics


def checked_confidence(value) -> float:
    """`min_confidence` checked: a number in [0, 1] (DataError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise DataError(f"min_confidence must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails too
        raise DataError(f"min_confidence must be between 0 and 1, got {value!r}")
    return float(value)


def json_safe(obj: object) -> object:
    """Plain JSON values: NumPy scalars unwrapped, NaN and infinities as None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _plain(value: object) -> object:
    """JSON-friendly cell value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
