"""Which words of a text moved a prediction, by occlusion.

A text column's contribution (model.py) says how much the whole text pushed the score; it does
not say which words did. Here each distinct word of the text is removed (every occurrence of it,
ignoring case), the row is scored again, and the word's contribution is

    score(full text) - score(text without the word)

in the units of the row's other contributions: raw log-odds of the positive class (binary), the
raw score of the explained class (multiclass), the model's target space (regression). Positive:
the word pushed the score up. Words are not additive (removing two words is not the sum of
removing each), so the words of a text need not add up to the column's contribution.

Every variant of every row goes through one `Encoder.transform` call: with sentence embeddings
the transformer dominates the cost (a few ms per text) and batches well. Variants skip the
on-disk embedding cache: they are throwaway texts that would only fill it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "MAX_WORDS",
    "TOP_WORDS",
    "compact",
    "split_words",
    "without_word",
    "word_contributions",
]

MAX_WORDS = 64  # distinct words tested per text; the rest are counted in "words_omitted"
TOP_WORDS = 10  # words reported per text, largest |contribution| first
_WORD = re.compile(r"\w+(?:['’]\w+)*")  # letters/digits, with inner apostrophes (can't, it's)


@dataclass
class _Word:
    text: str  # as first written in the text
    spans: list[tuple[int, int]]  # every occurrence, case-insensitive


def split_words(text: str) -> list[_Word]:
    """Distinct words of `text` in order of first appearance, with all their occurrences."""
    words: dict[str, _Word] = {}
    for match in _WORD.finditer(text):
        key = match.group().casefold()
        if key not in words:
            words[key] = _Word(match.group(), [])
        words[key].spans.append(match.span())
    return list(words.values())


def without_word(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the given spans cut out and whitespace runs collapsed."""
    parts, start = [], 0
    for a, b in spans:
        parts.append(text[start:a])
        start = b
    parts.append(text[start:])
    return " ".join("".join(parts).split())


def word_contributions(
    model,
    typed: pd.DataFrame,
    jobs: list[tuple[int, str]],
    full_scores: np.ndarray,
    classes: np.ndarray | None = None,
    *,
    top: int = TOP_WORDS,
) -> dict[tuple[int, str], dict]:
    """Occlusion contributions of the words of text cells.

    typed: the rows as coerced by the schema (positional rows); jobs: (row position, text
    column) pairs to explain; full_scores: each row's score as explained (see module doc);
    classes: per row, the class index explained (multiclass), else None.
    Returns {(row, column): {"words": [{"word", "contribution"}, ...], "words_omitted": n}}.
    """
    out: dict[tuple[int, str], dict] = {}
    source_rows: list[int] = []  # per variant: the row it comes from
    variant_texts: dict[str, list] = {}  # per text column: its value in every variant
    owners: list[tuple[tuple[int, str], str]] = []  # per variant: (job, word)
    columns = list(dict.fromkeys(column for _, column in jobs))
    for i, column in jobs:
        text = _text(typed[column].iloc[i])
        words = split_words(text) if text else []
        out[(i, column)] = {"words": [], "words_omitted": max(0, len(words) - MAX_WORDS)}
        for word in words[:MAX_WORDS]:
            source_rows.append(i)
            owners.append(((i, column), word.text))
            for c in columns:  # the other text columns keep the row's own text
                value = without_word(text, word.spans) if c == column else typed[c].iloc[i]
                variant_texts.setdefault(c, []).append(value)
    if not owners:
        return out

    variants = typed.iloc[source_rows].reset_index(drop=True)
    for c, values in variant_texts.items():
        variants[c] = pd.Series(values, dtype=object)
    raw = model.raw(_without_cache(model.encoder).transform(variants))
    rows = np.asarray(source_rows)
    if raw.ndim == 2:  # multiclass: the explained class of the row each variant came from
        raw = raw[np.arange(len(rows)), np.asarray(classes)[rows]]
    deltas = np.asarray(full_scores, dtype=np.float64)[rows] - raw

    found: dict[tuple[int, str], list[tuple[str, float]]] = {}
    for (job, word), delta in zip(owners, deltas):
        if abs(delta) > 1e-9:  # e.g. a word TF-IDF never saw changes nothing
            found.setdefault(job, []).append((word, float(delta)))
    for job, items in found.items():
        items.sort(key=lambda wc: -abs(wc[1]))
        out[job]["words"] = [{"word": w, "contribution": round(c, 6)} for w, c in items[:top]]
    return out


def compact(words: list[dict], n: int = 5) -> str:
    """'refund +1.21, card -0.402': the top words of a reason on one line."""
    return ", ".join(f"{w['word']} {w['contribution']:+.3g}" for w in words[:n])


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _without_cache(encoder):
    """The encoder with its sentence encoder's disk cache turned off (same loaded weights)."""
    sentence = encoder.text_encoder
    if sentence is None or not getattr(sentence, "use_cache", False):
        return encoder
    sentence.module  # noqa: B018 - load the weights once, so that the copy shares them
    quiet = copy.copy(sentence)
    quiet.use_cache = False
    out = copy.copy(encoder)
    out.text_encoder = quiet
    return out
