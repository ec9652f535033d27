"""Text columns: which representation a model learns from, and its comparison with TF-IDF.

Modes (`train(mode=...)`, `shipml train --mode`):

- ``embed``: each text column becomes the frozen sentence embedding of a pretrained transformer
  (shipml.encoders; all-MiniLM-L6-v2 by default). The usual heads (logistic regression,
  LightGBM) are tuned on those features plus any tabular columns, and a TF-IDF + linear
  baseline is scored on the same validation plan; the better of the two is kept.
- ``tfidf``: TF-IDF word and bigram weights only (fast, no PyTorch).
- ``auto`` (default): ``embed`` when the text extra is installed and embedding the texts fits
  in the time budget (measured on a sample), otherwise ``tfidf``, saying why in the notes.

Fine-tuning and few-shot modes plug in here later: they produce a SentenceEncoder (new weights,
same artifacts) and reuse the same features and comparison.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.data.features import Encoder
from shipml.data.schema import Schema
from shipml.errors import DataError, MissingDependency

__all__ = ["MODES", "TextChoice", "choose_text_mode", "embed_features", "text_columns"]

log = logging.getLogger(__name__)
MODES = ("auto", "embed", "tfidf")
_EMBED_SHARE = 0.8  # auto: embed when encoding the texts takes at most this share of the budget


@dataclass
class TextChoice:
    mode: str  # "embed" or "tfidf"
    encoder: object | None = None  # SentenceEncoder when mode == "embed"
    notes: list[str] = field(default_factory=list)


def text_columns(schema: Schema) -> list[str]:
    return [c.name for c in schema.features if c.kind == "text"]


def choose_text_mode(
    mode: str, encoder_spec, schema: Schema, frame: pd.DataFrame, seconds_left: float
) -> TextChoice:
    """Resolve `mode` for this table and budget; load the sentence encoder if it is used."""
    if mode not in MODES:
        raise DataError(f"text mode must be one of {', '.join(MODES)}; got {mode!r}")
    columns = text_columns(schema)
    if not columns:
        if mode == "embed" or encoder_spec is not None:
            kinds = ", ".join(f"'{c.name}' ({c.kind})" for c in schema.features[:10])
            raise DataError(
                "--mode embed / --encoder need a text column, and none was found among the "
                f"features: {kinds}; name one with --text-column"
            )
        return TextChoice("tfidf")
    if mode == "tfidf":
        return TextChoice("tfidf")
    from shipml.encoders import load_encoder

    try:
        encoder = load_encoder(encoder_spec)
    except MissingDependency as exc:
        if mode == "embed" or encoder_spec is not None:
            raise
        return TextChoice("tfidf", notes=[f"text columns: TF-IDF ({exc})"])
    if mode == "embed":
        return TextChoice("embed", encoder)
    texts = pd.concat([frame[c] for c in columns], ignore_index=True).tolist()
    projected = encoder.estimate_seconds(texts)
    if projected > _EMBED_SHARE * seconds_left:
        note = (
            f"text columns: TF-IDF, as sentence embeddings of {len(texts):,} texts would take "
            f"about {projected:.0f}s of the {seconds_left:.0f}s left; give a larger "
            "--time-budget or --mode embed"
        )
        log.info(note)
        return TextChoice("tfidf", notes=[note])
    return TextChoice("embed", encoder)


def embed_features(
    schema: Schema, typed: pd.DataFrame, sentence_encoder
) -> tuple[Encoder, np.ndarray, list[str]]:
    """(encoder, feature matrix, notes) with text columns as sentence embeddings."""
    encoder = Encoder.fit(schema, typed, text_encoder=sentence_encoder)
    reports: dict = {}
    X = encoder.transform(typed, reports=reports)
    notes = []
    for column, report in reports.items():
        notes.extend(report.notes(column, sentence_encoder.max_length))
        log.info(
            "column %s: %d texts embedded (%d cached, %d computed) in %.1fs",
            column,
            report.texts,
            report.cached,
            report.computed,
            report.seconds,
        )
    return encoder, X, notes
