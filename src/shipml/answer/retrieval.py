"""Retrieval over an FAQ's texts: dense (sentence-encoder cosine) and lexical (BM25, `bm25s`),
fused by a weighted sum of normalized scores, per field weighted, entry score = max over its
texts.

Each entry contributes its question, its paraphrases and its answer as texts (`FieldTexts`,
grouped by entry). For a query:

- dense: the cosine to every text (vectors are unit length), clipped at 0 — exact NumPy brute
  force up to `EXACT_MAX` texts; above, a `usearch` inner-product index returns the
  `APPROX_K` nearest texts and the others get the smallest cosine it returned;
- lexical: BM25 (bm25s, English stop words) divided by the query's best BM25 score, so it is
  in [0, 1] like the cosine (a query sharing no word with any text scores 0 everywhere);
- text score = field weight x (alpha x dense + (1 - alpha) x lexical); entry score = the max
  over the entry's texts, blended with the cosine to the entry's centroid (the normalized mean
  of its question's and paraphrases' vectors: what all its ways of asking share) —
  (1 - centroid) x max + centroid x centroid cosine. alpha, the field weights and the
  centroid share are chosen on validation (training.py); measured on BANKING77 as an FAQ with
  10 paraphrases per entry, the centroid lifts dense Hit@1 from 0.81 to 0.84.

What the confidence reads (`Scores.candidates`): the entry scores, and per candidate entry its
best cosine and its best raw BM25 over the texts whose field weight is above 0 (absolute
evidence: an off-topic question has low values of both). Texts of weight 0 never change an
entry's score or its evidence, so a served model leaves them out of the dense index
(model.py); BM25 keeps them, so its normalization is the one validation measured.

Speed (one question, 10,000 entries, 30,001 texts): identical texts (an answer shared by many
entries) get one column of the dense product (`DenseIndex` deduplicates rows); an entry's max
over its texts reads a padded table of text positions (`FieldTexts.slots`: 48 vs 160 us with
`np.maximum.reduceat`); the evidence is read for the k candidates only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["FIELDS", "FieldTexts", "Lexical", "DenseIndex", "Scores", "Settings",
           "DEFAULT_SETTINGS", "field_texts", "centroids", "entry_max", "EXACT_MAX",
           "APPROX_K"]  # fmt: skip

FIELDS = ("question", "paraphrase", "answer")
EXACT_MAX = 100_000  # texts searched by brute force; above, the usearch index
APPROX_K = 256  # texts the approximate index returns per query


@dataclass(frozen=True)
class Settings:
    """How dense and lexical scores combine: alpha (the dense share) and a weight per field."""

    alpha: float = 0.8
    paraphrase: float = 1.0
    answer: float = 0.8
    centroid: float = 0.0
    head: float = 0.0  # share of the linear head's probability (head.py)

    def weights(self) -> np.ndarray:
        return np.array([1.0, self.paraphrase, self.answer], dtype=np.float32)

    def active(self, texts: FieldTexts) -> np.ndarray:
        """(n_texts,) bool: the texts whose field weight is above 0 (a question always is)."""
        return self.weights()[texts.field] > 0

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "paraphrase": self.paraphrase, "answer": self.answer,
                "centroid": self.centroid, "head": self.head}  # fmt: skip

    @classmethod
    def from_dict(cls, spec: dict) -> Settings:
        return cls(float(spec["alpha"]), float(spec["paraphrase"]), float(spec["answer"]),
                   float(spec.get("centroid", 0.0)), float(spec.get("head", 0.0)))  # fmt: skip


DEFAULT_SETTINGS = Settings()


@dataclass
class FieldTexts:
    """The texts of the entries, grouped by entry: text i belongs to entry[i], field[i]."""

    texts: list[str]
    entry: np.ndarray  # int32, non-decreasing
    field: np.ndarray  # int8, index into FIELDS
    n_entries: int

    @cached_property
    def starts(self) -> np.ndarray:
        """Index of each entry's first text (every entry has at least its question)."""
        return np.searchsorted(self.entry, np.arange(self.n_entries)).astype(np.int64)

    @cached_property
    def slots(self) -> np.ndarray | None:
        """(width, n_entries) positions of each entry's texts, padded with its first text
        (a max is unchanged by a repeat); None when padding would over double the texts."""
        counts = np.diff(np.r_[self.starts, len(self.entry)])
        width = int(counts.max()) if len(counts) else 0
        if width * self.n_entries > 2 * len(self.entry):
            return None
        offset = np.minimum(np.arange(width)[:, None], counts[None, :] - 1)
        return self.starts[None, :] + offset

    def subset(self, keep: np.ndarray) -> FieldTexts:
        """The texts where `keep` (every entry keeps at least one)."""
        rows = np.flatnonzero(keep)
        return FieldTexts([self.texts[i] for i in rows], self.entry[rows], self.field[rows],
                          self.n_entries)  # fmt: skip


def field_texts(entries: list[dict], *, answers: bool = True) -> FieldTexts:
    texts, entry, field = [], [], []
    for i, e in enumerate(entries):
        parts = [(e["question"], 0)] + [(p, 1) for p in e.get("paraphrases") or []]
        if answers:
            parts.append((e["answer"], 2))
        for text, f in parts:
            texts.append(text)
            entry.append(i)
            field.append(f)
    return FieldTexts(texts, np.array(entry, np.int32), np.array(field, np.int8), len(entries))


def entry_max(values: np.ndarray, texts: FieldTexts) -> np.ndarray:
    """(n, n_entries) max of (n, n_texts) `values` over each entry's texts."""
    slots = texts.slots
    if slots is None:
        return np.maximum.reduceat(values, texts.starts, axis=1)
    out = values[:, slots[0]]
    for row in slots[1:]:
        np.maximum(out, values[:, row], out=out)
    return out


def _candidate_max(values: np.ndarray, texts: FieldTexts, idx: np.ndarray) -> np.ndarray:
    """(n, k) max of `values` over the texts of the entries `idx` (n, k)."""
    slots = texts.slots
    if slots is None:
        return np.take_along_axis(entry_max(values, texts), idx, axis=1)
    rows = np.arange(len(values))[None, :, None]
    return values[rows, slots[:, idx]].max(axis=0)


def centroids(vectors: np.ndarray, texts: FieldTexts) -> np.ndarray:
    """(n_entries, dim) unit mean vector of each entry's question and paraphrases."""
    asked = texts.field != 2
    sums = np.zeros((texts.n_entries, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, texts.entry[asked], vectors[asked])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _bm25s():
    try:
        import bm25s
    except ImportError as exc:
        from shipml.errors import MissingDependency

        raise MissingDependency(
            'answering questions needs bm25s and usearch: pip install "shipml[answer]"'
        ) from exc
    return bm25s


class Lexical:
    """BM25 over the texts (rebuilt from them at load: nothing stored)."""

    def __init__(self, texts: list[str]) -> None:
        bm25s = _bm25s()
        tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        self.n = len(texts)

    def raw(self, queries: list[str]) -> np.ndarray:
        """(n_queries, n_texts) float32 BM25 scores."""
        bm25s = _bm25s()
        tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
        out = np.zeros((len(queries), self.n), dtype=np.float32)
        for i, words in enumerate(tokens):
            if words:
                out[i] = self.retriever.get_scores(list(words))
        return out


class DenseIndex:
    """Cosine of queries to the text vectors: exact, or through usearch above EXACT_MAX."""

    def __init__(self, vectors: np.ndarray, *, exact_max: int = EXACT_MAX) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index, self._columns, self._inverse = None, None, None
        if len(self.vectors) > exact_max:
            from usearch.index import Index

            self.index = Index(ndim=self.vectors.shape[1], metric="ip", dtype="f32")
            self.index.add(np.arange(len(self.vectors)), self.vectors)
            return
        # One column per distinct vector (identical texts, e.g. an answer shared by many
        # entries: one), (dim, n_distinct) contiguous: a question's cosines read the matrix
        # in order (measured 5.4 vs 9.8 ms for 20,000 texts of 384 dimensions, memory-bound).
        distinct, inverse = np.unique(self.vectors, axis=0, return_inverse=True)
        if len(distinct) < len(self.vectors):
            self._inverse = inverse.reshape(-1)
        else:
            distinct = self.vectors
        self._columns = np.ascontiguousarray(distinct.T)

    @property
    def kind(self) -> str:
        return "exact" if self.index is None else "usearch"

    def cosine(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_texts) float32 cosines clipped at 0."""
        if self.index is None:
            out = queries @ self._columns
            np.maximum(out, 0.0, out=out)
            return out if self._inverse is None else out[:, self._inverse]
        found = self.index.search(np.ascontiguousarray(queries, np.float32), APPROX_K)
        keys = np.atleast_2d(found.keys).astype(np.int64)
        sims = 1.0 - np.atleast_2d(found.distances).astype(np.float32)  # ip distance: 1 - dot
        out = np.empty((len(queries), len(self.vectors)), dtype=np.float32)
        for i in range(len(queries)):
            valid = keys[i] >= 0
            out[i] = sims[i][valid].min() if valid.any() else 0.0
            out[i, keys[i][valid]] = sims[i][valid]
        return np.clip(out, 0.0, None)


@dataclass
class Scores:
    """A batch of queries' per-text dense and lexical scores, and what follows for entries.
    `lexical_best`: each query's best raw BM25 when `lexical` holds only some of the texts
    BM25 scored (default: the best of `lexical`)."""

    dense: np.ndarray  # (n, n_texts) cosine, >= 0
    lexical: np.ndarray  # (n, n_texts) raw BM25
    texts: FieldTexts
    centroid: np.ndarray | None = None  # (n, n_entries) cosine to each entry's centroid, >= 0
    head: np.ndarray | None = None  # (n, n_entries) the linear head's probabilities
    lexical_best: np.ndarray | None = None  # (n, 1)

    def __post_init__(self) -> None:
        best = self.lexical_best
        if best is None:
            best = self.lexical.max(axis=1, keepdims=True) if self.lexical.shape[1] else 0.0
        self.lexical_norm = np.divide(self.lexical, best, out=np.zeros_like(self.lexical),
                                      where=best > 0)  # fmt: skip

    def entries(self, settings: Settings) -> np.ndarray:
        """(n, n_entries) fused entry scores."""
        a = np.float32(settings.alpha)
        w = settings.weights()[self.texts.field]
        fused = self.dense * (a * w)
        fused += self.lexical_norm * ((np.float32(1) - a) * w)
        best = entry_max(fused, self.texts)
        if settings.centroid and self.centroid is not None:
            c = np.float32(settings.centroid)
            best = (np.float32(1) - c) * best + c * self.centroid
        if settings.head and self.head is not None:
            best = best + np.float32(settings.head) * self.head
        return best

    def candidates(self, idx: np.ndarray, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
        """((n, k) best cosine, (n, k) best raw BM25) of the entries `idx` over their texts
        of a field weight above 0."""
        dense, lexical = self.dense, self.lexical
        active = settings.active(self.texts)
        if not active.all():
            dense, lexical = dense * active, lexical * active
        return (_candidate_max(dense, self.texts, idx),
                _candidate_max(lexical, self.texts, idx))  # fmt: skip
