"""From typed columns (Schema.coerce) to one float matrix that every tabular learner reads.

Numeric and boolean columns pass through (NaN = missing). Categorical columns become integer
codes, most frequent first, with rare and unseen values in one "other" code; learners that need
one-hot (linear) expand the codes themselves. Datetimes become calendar parts plus a day count.
Free text becomes TF-IDF word and bigram weights, or — when a sentence encoder is given
(shipml.encoders, the `embed` text mode) — the encoder's normalized sentence embedding, one
feature per dimension. Every output feature records its source column, so explanations map back
to what the user knows.

The fitted encoder is plain JSON (no pickle): category lists, TF-IDF vocabulary and idf. A
sentence encoder is stored by the Model beside it (safetensors + tokenizer JSON, model.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.data.schema import Schema
from shipml.errors import DataError

__all__ = ["Encoder"]

_MAX_CATEGORIES = 250  # codes beyond this go to "other"; LightGBM's default max_cat is 255
_MIN_CATEGORY_COUNT = 2
_TEXT_CELLS = 3_000_000  # TF-IDF terms x rows kept dense for the learners (24 MB)
_TEXT_WIDTH = (300, 5_000)  # terms per text column, fewest and most
_DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour")


@dataclass
class Encoder:
    """Fitted feature encoding: `transform(typed_frame) -> float64 matrix`."""

    columns: list[dict] = field(default_factory=list)  # one entry per source column
    names: list[str] = field(default_factory=list)  # one per output feature
    sources: list[str] = field(default_factory=list)  # source column per output feature
    categorical: list[int] = field(default_factory=list)  # output indices holding codes
    # SentenceEncoder for text columns encoded by "embed" (not JSON: the Model stores its files)
    text_encoder: object | None = field(default=None, repr=False, compare=False)
    # ImageEncoder for image columns (shipml.encoders.image); without one they give no features
    image_encoder: object | None = field(default=None, repr=False, compare=False)

    # -- fit ---------------------------------------------------------------------------------
    @classmethod
    def fit(cls, schema: Schema, typed: pd.DataFrame, *, text_encoder=None,
            image_encoder=None) -> Encoder:  # fmt: skip
        """Fit on a typed training frame. With `text_encoder` (a SentenceEncoder), text columns
        become sentence embeddings instead of TF-IDF weights; with `image_encoder`, image
        columns become image embeddings (without it, no features yet: learners/image.py)."""
        enc = cls(text_encoder=text_encoder, image_encoder=image_encoder)
        n_text = sum(col.kind == "text" for col in schema.features)
        width = text_width(len(typed), n_text)
        for col in schema.features:
            values = typed[col.name]
            spec: dict = {"name": col.name, "kind": col.kind}
            if col.kind == "categorical":
                spec.update(_fit_categories(values, personal=col.pii))
                enc._add(col.name, [col.name], categorical=True)
            elif col.kind == "datetime":
                parts = [p for p in _DATE_PARTS if _varies(_date_part(values, p))]
                spec["parts"] = parts
                enc._add(col.name, [f"{col.name}.{p}" for p in parts] + [f"{col.name}.days"])
            elif col.kind == "text" and text_encoder is not None:
                spec.update(method="embed", dim=text_encoder.dim)
                enc._add(col.name, [f"{col.name}~e{i}" for i in range(text_encoder.dim)])
            elif col.kind == "image":
                dim = image_encoder.dim if image_encoder is not None else 0
                spec.update(method="embed", dim=dim)
                enc._add(col.name, [f"{col.name}~e{i}" for i in range(dim)])
            elif col.kind == "text":
                spec.update(_fit_tfidf(values, width))
                enc._add(col.name, [f"{col.name}~{w}" for w in spec["vocabulary"]])
            else:
                enc._add(col.name, [col.name])
            enc.columns.append(spec)
        return enc

    def _add(self, source: str, names: list[str], *, categorical: bool = False) -> None:
        if categorical:
            self.categorical.append(len(self.names))
        self.names.extend(names)
        self.sources.extend([source] * len(names))

    # -- transform ---------------------------------------------------------------------------
    def transform(self, typed: pd.DataFrame, *, reports: dict | None = None) -> np.ndarray:
        """The feature matrix. `reports` (column -> EncodeReport) collects what sentence
        encoding did per text column (truncated, empty, cached texts)."""
        blocks = []
        for spec in self.columns:
            values = typed[spec["name"]]
            kind = spec["kind"]
            if kind == "categorical":
                blocks.append(self._codes(spec, values)[:, None])
            elif kind == "datetime":
                parts = [_date_part(values, p) for p in spec["parts"]]
                days = (values - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
                blocks.append(np.column_stack([*parts, days.to_numpy(dtype="float64")]))
            elif kind == "text" and spec.get("method") == "embed":
                blocks.append(self._embed(spec, values, reports))
            elif kind == "image":
                blocks.append(self._embed_images(spec, values, reports))
            elif kind == "text":
                blocks.append(_tfidf(spec).transform(values.fillna("")).toarray())
            else:
                blocks.append(values.to_numpy(dtype="float64")[:, None])
        if not blocks:
            return np.empty((len(typed), 0))
        return np.ascontiguousarray(np.column_stack(blocks), dtype=np.float64)

    def _embed(self, spec: dict, values: pd.Series, reports: dict | None) -> np.ndarray:
        if self.text_encoder is None:
            raise DataError(
                f"text column '{spec['name']}' is encoded by a sentence encoder that was not "
                "loaded with this model"
            )
        report = None
        if reports is not None:
            from shipml.encoders import EncodeReport

            report = reports.setdefault(spec["name"], EncodeReport())
        return self.text_encoder.encode(values.tolist(), report=report).astype(np.float64)

    def _embed_images(self, spec: dict, values: pd.Series, reports: dict | None) -> np.ndarray:
        if not spec["dim"]:
            return np.empty((len(values), 0))
        if self.image_encoder is None:
            raise DataError(
                f"image column '{spec['name']}' is encoded by an image encoder that was not "
                "loaded with this model"
            )
        report = None if reports is None else reports.get(spec["name"])
        cells = [None if v is None or v != v else v for v in values.tolist()]
        return self.image_encoder.encode(cells, report=report).astype(np.float64)

    @property
    def embeds_images(self) -> bool:
        return any(s["kind"] == "image" and s.get("dim") for s in self.columns)

    @property
    def embeds_text(self) -> bool:
        return any(s.get("method") == "embed" and s["kind"] == "text" for s in self.columns)

    def _codes(self, spec: dict, values: pd.Series) -> np.ndarray:
        lookup = spec.get("_lookup")
        if lookup is None:
            lookup = spec["_lookup"] = {c: float(i) for i, c in enumerate(spec["categories"])}
        other = float(len(spec["categories"])) if spec["has_other"] else np.nan
        return np.fromiter(
            (np.nan if v is None or v != v else lookup.get(v, other) for v in values),
            dtype=np.float64,
            count=len(values),
        )

    def category_labels(self, feature_index: int) -> list[str]:
        """Labels of the codes of a categorical output feature ("other" last when present)."""
        spec = next(s for s in self.columns if s["name"] == self.sources[feature_index])
        return list(spec["categories"]) + (["(other)"] if spec["has_other"] else [])

    # -- serialization -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        columns = [{k: v for k, v in s.items() if not k.startswith("_")} for s in self.columns]
        return {
            "columns": columns,
            "names": self.names,
            "sources": self.sources,
            "categorical": self.categorical,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Encoder:
        return cls(
            columns=[dict(s) for s in data["columns"]],
            names=list(data["names"]),
            sources=list(data["sources"]),
            categorical=list(data["categorical"]),
        )


def _fit_categories(values: pd.Series, *, personal: bool = False) -> dict:
    """The most frequent categories. A column of personal data (keyed hashes) keeps only the
    values shared by several rows: a value seen once is one person."""
    counts = values.value_counts(dropna=True)
    frequent = counts[counts >= _MIN_CATEGORY_COUNT].index[:_MAX_CATEGORIES]
    if len(frequent) == 0 and not personal:
        frequent = counts.index[:_MAX_CATEGORIES]
    has_other = len(frequent) < len(counts)
    return {"categories": [str(c) for c in frequent], "has_other": bool(has_other)}


_DATE_ATTRS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}


def _date_part(values: pd.Series, part: str) -> np.ndarray:
    attr = _DATE_ATTRS.get(part, part)
    return getattr(values.dt, attr).to_numpy(dtype="float64", na_value=np.nan)


def _varies(values: np.ndarray) -> bool:
    present = values[~np.isnan(values)]
    return present.size > 0 and np.ptp(present) > 0


def text_width(n_rows: int, n_text_columns: int = 1) -> int:
    """TF-IDF terms kept per text column: as many as fit `_TEXT_CELLS` dense cells, within
    `_TEXT_WIDTH`. A short table keeps a wide vocabulary (300 terms were too few for 1,500
    reviews: most of the sentiment words were cut), a long one stays within memory."""
    fewest, most = _TEXT_WIDTH
    per_column = _TEXT_CELLS // max(1, n_rows * max(1, n_text_columns))
    return int(min(most, max(fewest, per_column)))


def _fit_tfidf(values: pd.Series, width: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(**_TFIDF_OPTIONS, max_features=width, min_df=2)
    try:
        vec.fit(values.fillna(""))
    except ValueError:  # too few documents or words for min_df=2
        vec = TfidfVectorizer(**_TFIDF_OPTIONS, max_features=width).fit(values.fillna(""))
    vocabulary = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    return {"vocabulary": vocabulary, "idf": [float(x) for x in vec.idf_]}


_TFIDF_OPTIONS = {"ngram_range": (1, 2), "sublinear_tf": True, "strip_accents": "unicode"}


def _tfidf(spec: dict):
    vec = spec.get("_vectorizer")
    if vec is None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(**_TFIDF_OPTIONS, vocabulary=spec["vocabulary"])
        vec.idf_ = np.asarray(spec["idf"], dtype=np.float64)
        spec["_vectorizer"] = vec
    return vec
