"""Zero-shot text classification: no training rows, only label names (and, optionally, a short
description per label). Texts and labels are embedded by the same sentence encoder; each text
gets the label whose embedding is closest by cosine similarity.

>>> from shipml.learners.zeroshot import zero_shot
>>> zero_shot(["I lost my card", "where is my money back?"],
...           "refund, card lost").label.tolist()                             # doctest: +SKIP
['card lost', 'refund']

Labels like ``card_arrival`` are embedded as "card arrival" (the label itself is returned
unchanged); ``"refund: the customer wants their money back"`` embeds the label with its
description. Empty or missing texts get no label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shipml.errors import DataError

__all__ = ["ZeroShotClassifier", "parse_labels", "zero_shot", "pick_text_column"]


def parse_labels(labels) -> list[tuple[str, str]]:
    """[(label, text to embed)] from "a,b,c", a list of "label" / "label: description", a
    {label: description} mapping, or a path to a text file with one label per line."""
    if isinstance(labels, Path) or (
        isinstance(labels, str) and "," not in labels and Path(labels).is_file()
    ):
        lines = Path(labels).read_text(encoding="utf-8").splitlines()
        items = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    elif isinstance(labels, Mapping):
        items = [f"{k}: {v}" if v else str(k) for k, v in labels.items()]
    elif isinstance(labels, str):
        items = labels.split(",")
    elif isinstance(labels, Sequence):
        items = [str(x) for x in labels]
    else:
        raise DataError(f"labels must be a comma-separated string or a list, not {labels!r}")
    out: list[tuple[str, str]] = []
    for item in items:
        label, _, description = item.partition(":")
        label, description = label.strip(), description.strip()
        if not label:
            continue
        words = label.replace("_", " ").replace("-", " ")
        out.append((label, f"{words}: {description}" if description else words))
    names = [label for label, _ in out]
    if len(names) < 2:
        raise DataError(
            f"zero-shot needs at least two labels, got {names}: give them comma-separated, "
            'e.g. --labels "refund,card lost,exchange rate"'
        )
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"labels given twice: {', '.join(twice)}")
    return out


@dataclass
class ZeroShotClassifier:
    """Labels embedded once; `scores(texts)` are cosine similarities, one column per label."""

    labels: list[str]
    prompts: list[str]
    encoder: object  # SentenceEncoder

    @classmethod
    def build(cls, labels, encoder=None) -> ZeroShotClassifier:
        from shipml.encoders import load_encoder

        pairs = parse_labels(labels)
        return cls([p[0] for p in pairs], [p[1] for p in pairs], load_encoder(encoder))

    @property
    def label_vectors(self) -> np.ndarray:
        if not hasattr(self, "_label_vectors"):
            self._label_vectors = self.encoder.encode(self.prompts)
        return self._label_vectors

    def scores(self, texts: Sequence[object], *, report=None) -> np.ndarray:
        """(n, labels) cosine similarities; NaN rows for empty or missing texts."""
        vectors = self.encoder.encode(list(texts), report=report)
        out = vectors @ self.label_vectors.T
        out[~vectors.any(axis=1)] = np.nan
        return out

    def predict(self, texts: Sequence[object], *, report=None) -> pd.DataFrame:
        """label (None for empty texts), score (its cosine similarity), score_<label> each."""
        scores = self.scores(texts, report=report)
        empty = np.isnan(scores).all(axis=1)
        best = np.where(empty, 0, np.nanargmax(np.where(empty[:, None], 0, scores), axis=1))
        labels = np.asarray(self.labels, dtype=object)[best]
        labels[empty] = None
        out = pd.DataFrame({"label": labels, "score": np.round(scores.max(axis=1), 6)})
        for j, label in enumerate(self.labels):
            out[f"score_{label}"] = np.round(scores[:, j], 6)
        return out


def pick_text_column(frame: pd.DataFrame, text_column: str | None = None) -> str:
    """The named column, or the column of the longest texts (by mean word count)."""
    if text_column is not None:
        if text_column not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:20]))
            raise DataError(f"text column '{text_column}' not found; columns are: {shown}")
        return text_column
    best, best_words = None, 0.0
    for name in frame.columns:
        values = frame[name].dropna()
        if values.empty or pd.api.types.is_numeric_dtype(values):
            continue
        words = float(values.astype(str).str.split().str.len().mean())
        if words > best_words:
            best, best_words = name, words
    if best is None:
        raise DataError("no text column found: name one with --text-column")
    return str(best)


def zero_shot(data, labels, *, text_column: str | None = None, encoder=None) -> pd.DataFrame:
    """Classify texts against `labels` without training.

    `data` is a list of texts, a Series, a DataFrame or a table path (then `text_column`, or the
    column of the longest texts). Returns label, score and score_<label> per row (for a table:
    its columns first)."""
    from shipml.model import as_frame

    if isinstance(data, pd.Series) or (
        isinstance(data, Sequence) and not isinstance(data, str) and not _records(data)
    ):
        return ZeroShotClassifier.build(labels, encoder).predict(list(data))
    frame = as_frame(data)
    column = pick_text_column(frame, text_column)
    result = ZeroShotClassifier.build(labels, encoder).predict(frame[column].tolist())
    result.index = frame.index
    return pd.concat([frame, result], axis=1)


def _records(data) -> bool:
    return len(data) > 0 and all(isinstance(r, Mapping) for r in data)
