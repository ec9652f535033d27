"""AnswerModel: a trained FAQ assistant — the best entry for a question with a calibrated
confidence, or a hand-over to a person below the threshold chosen on validation.

Scoring (retrieval.py): the question's sentence vector against every text of every entry
(question, paraphrases, answer) and its BM25 scores, fused with the settings chosen on
validation; the entry score is the max over its texts. The confidence (confidence.py) reads
the score list. Storage (no pickle): entries and settings as JSON, the text vectors as .npy,
the sentence encoder through its own artifacts; BM25 is rebuilt from the texts at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np

from shipml.answer.confidence import Calibrator, candidate_features, rank
from shipml.answer.head import Head, fit_head
from shipml.answer.retrieval import (
    DenseIndex,
    FieldTexts,
    Lexical,
    Scores,
    Settings,
    centroids,
    field_texts,
)
from shipml.errors import ArtifactIntegrityError, DataError, UsageError
from shipml.identity import Registered

__all__ = ["AnswerModel", "KIND", "FORMAT", "MAX_K", "MAX_QUESTION_CHARS", "NONE"]

KIND = "answer"
FORMAT = 1
MAX_K = 50
MAX_QUESTION_CHARS = 2000
NONE = "none"  # expected_id of a question the FAQ has no answer for
_ENCODER = "encoder"


@dataclass
class AnswerModel(Registered):
    entries: list[dict]
    encoder: object  # shipml.encoders.SentenceEncoder
    vectors: np.ndarray  # (n_texts, dim) unit rows, in field_texts(entries) order
    settings: Settings
    calibrator: Calibrator
    threshold: float
    info: dict = field(default_factory=dict)
    head: Head | None = None  # head.py: fitted at training (None: retrieval alone)
    kind: str = KIND
    task: str = KIND
    classes: None = None

    def __post_init__(self) -> None:
        self.texts: FieldTexts = field_texts(self.entries)
        if len(self.vectors) != len(self.texts.texts):
            raise ValueError(f"{len(self.vectors)} vectors for {len(self.texts.texts)} texts")
        # the texts that count (field weight > 0) are searched; BM25 scores every text, so
        # its normalization (by the best of all) is the one validation chose the settings on
        active = self.settings.active(self.texts)
        self._searched = None if active.all() else np.flatnonzero(active)
        self.searched = self.texts if self._searched is None else self.texts.subset(active)
        self.dense = DenseIndex(self.vectors if self._searched is None
                                else self.vectors[self._searched])  # fmt: skip
        self.lexical = Lexical(self.texts.texts)
        self.centroids = np.ascontiguousarray(centroids(self.vectors, self.texts).T)
        self._by_id = {e["id"]: i for i, e in enumerate(self.entries)}

    # -- identity --------------------------------------------------------------------------------
    @property
    def notes(self) -> list[str]:
        return self.info.setdefault("notes", [])

    @property
    def min_precision(self) -> float:
        return float(self.info.get("min_precision", 0.9))

    def __repr__(self) -> str:
        who = f"{self.name}/{self.version}" if self.name else "unsaved"
        return (f"<shipml.AnswerModel {who}: {len(self.entries):,} entries, "
                f"{len(self.texts.texts):,} texts, threshold {self.threshold:.3f}>")  # fmt: skip

    def describe(self) -> dict:
        lineage = self.info.get("lineage", {})
        return {
            "name": self.name,
            "version": self.version,
            "task": KIND,
            "entries": len(self.entries),
            "texts": len(self.texts.texts),
            "settings": self.settings.to_dict(),
            "threshold": round(self.threshold, 4),
            "min precision": self.min_precision,
            "validation": self.info.get("validation"),
            "search": self.dense.kind,
            "encoder": getattr(self.encoder, "source", None),
            "runtime": getattr(self.encoder, "runtime_kind", None),
            "training seconds": lineage.get("duration_s"),
            "seed": lineage.get("seed"),
            "data sha256": lineage.get("data_sha256"),
        }

    @property
    def report_sections(self) -> list[dict]:
        """What a report shows of this model: the answer-rate / precision curve on validation
        and the notes (report.py renders them)."""
        from shipml.answer.report import sections

        return sections(self)

    # -- scoring ---------------------------------------------------------------------------------
    def scores(self, questions: list[str]) -> Scores:
        """The questions' scores against the searched texts (`self.searched`)."""
        vectors = self.encoder.encode(questions)
        centroid = head = None
        if self.settings.centroid:
            centroid = vectors @ self.centroids  # (dim, n_entries): read in order
            np.maximum(centroid, 0.0, out=centroid)
        if self.settings.head and self.head is not None:
            head = self.head.proba(vectors)
        lexical = self.lexical.raw(questions)
        best = lexical.max(axis=1, keepdims=True)
        if self._searched is not None:
            lexical = lexical[:, self._searched]
        return Scores(self.dense.cosine(vectors), lexical, self.searched, centroid, head, best)

    def _ranked(self, questions: list[str], k: int):
        """(entry indices (n, k), confidences (n, k), fused scores (n, n_entries))."""
        s = self.scores(questions)
        fused = s.entries(self.settings)
        idx = rank(fused, k)
        feats = candidate_features(fused, *s.candidates(idx, self.settings), idx)
        return idx, self.calibrator(feats), fused

    def answer(self, question: str, k: int = 3) -> dict:
        """The best answer to `question` and k-1 alternatives; on a hand-over no answer and the
        k closest entries as alternatives (the best among them: a person may still use it)."""
        return self.answer_many([question], k=k)[0]

    def answer_many(self, questions: list[str], k: int = 3) -> list[dict]:
        k = _checked_k(k)
        if isinstance(questions, str) or not isinstance(questions, (list, tuple)):
            raise UsageError(f"questions must be a list of strings; got {type(questions).__name__}")
        texts = [_checked_question(q, i if len(questions) > 1 else None)
                 for i, q in enumerate(questions)]  # fmt: skip
        if not texts:
            return []
        idx, conf, _ = self._ranked(texts, k)
        return [self._result(idx[i], conf[i]) for i in range(len(texts))]

    def _result(self, idx: np.ndarray, conf: np.ndarray) -> dict:
        best = self.entries[int(idx[0])]
        confidence = round(float(conf[0]), 4)
        handover = bool(conf[0] < self.threshold)
        first = 0 if handover else 1  # a hand-over keeps the closest entry among the choices
        alternatives = [{"entry": self.entries[int(j)]["id"],
                         "question": self.entries[int(j)]["question"],
                         "answer": self.entries[int(j)]["answer"],
                         "confidence": round(float(c), 4)}
                        for j, c in zip(idx[first:], conf[first:])]  # fmt: skip
        return {
            "answer": None if handover else best["answer"],
            "entry": None if handover else best["id"],
            "question": None if handover else best["question"],
            "confidence": confidence,
            "handover": handover,
            "source": {} if handover else _source(best),
            "alternatives": alternatives,
        }

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, table) -> dict:
        """Hit@1, Hit@3, MRR (questions with an expected entry), the answer rate and precision
        of the answered at the model's threshold, and the share of "none" questions handed
        over. `table`: a file or DataFrame with the columns question, expected_id."""
        from shipml.answer.questions import read_questions

        questions, expected = read_questions(table, set(self._by_id))
        return self.evaluate_lists(questions, expected)

    def evaluate_lists(self, questions: list[str], expected: list[str]) -> dict:
        from shipml.answer.metrics import answer_metrics

        texts = [_checked_question(q, i) for i, q in enumerate(questions)]
        _, conf, fused = self._ranked(texts, 1)
        target = np.array([self._by_id.get(e, -1) for e in expected], dtype=np.int64)
        return answer_metrics(fused, conf[:, 0], target, self.threshold)

    # -- new versions ----------------------------------------------------------------------------
    def with_paraphrases(self, additions: dict) -> AnswerModel:
        """A new model with `additions` ({entry id: [question, ...]}) as paraphrases of those
        entries; same settings, calibration and threshold; only the new texts are encoded."""
        if not isinstance(additions, dict):
            raise UsageError("with_paraphrases takes {entry id: [question, ...]}")
        entries = [dict(e, paraphrases=list(e.get("paraphrases") or [])) for e in self.entries]
        for ident, questions in additions.items():
            ident = str(ident)
            if ident not in self._by_id:
                raise DataError(
                    f"entry {ident!r} is not in the FAQ ({len(self.entries):,} "
                    "entries): paraphrases can only be added to existing entries"
                )
            if isinstance(questions, str):
                questions = [questions]
            target = entries[self._by_id[ident]]
            for i, q in enumerate(questions):
                q = _checked_question(q, i)
                if q not in target["paraphrases"] and q != target["question"]:
                    target["paraphrases"].append(q)
        old = dict(zip(self.texts.texts, self.vectors))
        texts = field_texts(entries).texts
        new = [t for t in dict.fromkeys(texts) if t not in old]
        if new:
            old.update(zip(new, self.encoder.encode(new)))
        vectors = np.stack([old[t] for t in texts]).astype(np.float32)
        info = {k: v for k, v in self.info.items() if k not in ("name", "version", "report_path")}
        added = sum(len(e["paraphrases"]) for e in entries) - sum(
            len(e.get("paraphrases") or []) for e in self.entries
        )
        info["notes"] = [*self.info.get("notes", []), f"{added} paraphrase(s) added"]
        head = None
        if self.head is not None:  # the head learns the new paraphrases too
            head = fit_head(
                vectors, field_texts(entries), int(info.get("lineage", {}).get("seed", 0))
            )
        return AnswerModel(entries, self.encoder, vectors, self.settings, self.calibrator,
                           self.threshold, info, head)  # fmt: skip

    # -- storage ---------------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write the model to a new folder `directory` (files + manifest, atomically); read
        it back with `shipml.answer.load(directory)`."""
        from shipml.registry.artifacts import ArtifactWriter

        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            raise UsageError(f"{target} exists and is not empty: give a new folder")
        if target.exists():
            target.rmdir()
        target.parent.mkdir(parents=True, exist_ok=True)
        writer = ArtifactWriter(target.parent)
        try:
            self.write(writer)
            writer.finish()
            return writer.publish(target)
        except BaseException:
            writer.abort()
            raise

    def write(self, writer) -> None:
        from shipml.model import json_safe

        meta, files = self.encoder.artifacts(_ENCODER)
        for fname, content in files.items():
            writer.write(fname, content)
        writer.write("vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        if self.head is not None:
            writer.write("head_coef.npy", self.head.coef.astype(np.float32))
            writer.write("head_intercept.npy", self.head.intercept.astype(np.float32))
        writer.write_json("entries.json", self.entries)
        skip = ("name", "version", "report_path", "aliases")
        info = json_safe({k: v for k, v in self.info.items() if k not in skip})
        writer.write_json("model.json", {
            "format": FORMAT, "kind": KIND, "settings": self.settings.to_dict(),
            "calibration": self.calibrator.to_dict(), "threshold": self.threshold,
            "encoder": meta, "info": info,
        })  # fmt: skip

    @classmethod
    def read(cls, reader, *, name: str | None = None, version: int | None = None,
             cache: bool = True) -> AnswerModel:  # fmt: skip
        try:
            return cls._read(reader, name, version, cache)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            if isinstance(exc, (DataError, UsageError)):
                raise
            raise ArtifactIntegrityError(
                f"{reader.label}: model.json, entries.json or vectors.npy do not describe a "
                f"shipml answer model ({type(exc).__name__}: {exc})", path=str(reader.path),
            ) from exc  # fmt: skip

    @classmethod
    def _read(cls, reader, name, version, cache) -> AnswerModel:
        from shipml.encoders import from_artifacts

        spec = reader.read_json("model.json")
        if spec.get("format") != FORMAT or spec.get("kind") != KIND:
            raise DataError(f"answer model format {spec.get('format')} is not supported here")
        entries = reader.read_json("entries.json")
        vectors = reader.read_npy("vectors.npy").astype(np.float32)
        encoder = from_artifacts(spec["encoder"], reader, cache=cache)
        settings = Settings.from_dict(spec["settings"])
        head = None
        if "head_coef.npy" in reader.files:
            head = Head(reader.read_npy("head_coef.npy").astype(np.float32),
                        reader.read_npy("head_intercept.npy").astype(np.float32))  # fmt: skip
            if head.coef.shape != (len(entries), vectors.shape[1]):
                raise ValueError(
                    f"the head's weights are {head.coef.shape}, not "
                    f"({len(entries)}, {vectors.shape[1]})"
                )
        info = dict(spec.get("info", {}), name=name, version=version)
        if "report.html" in reader.files:
            info["report_path"] = str(reader.path / "report.html")
        return cls(
            entries,
            encoder,
            vectors,
            settings,
            Calibrator.from_dict(spec["calibration"]),
            float(spec["threshold"]),
            info,
            head,
        )


def load(directory) -> AnswerModel:
    """An answer model saved with `AnswerModel.save(directory)`."""
    from shipml.registry.formats import ArtifactReader

    path = Path(directory)
    return AnswerModel.read(ArtifactReader(path, label=path.name))


def _source(entry: dict) -> dict:
    src = {k: v for k, v in (entry.get("source") or {}).items() if v is not None and k != "row"}
    for key in ("url", "category"):
        if entry.get(key):
            src[key] = entry[key]
    return src


def _checked_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= MAX_K:
        raise UsageError(f"k must be an integer from 1 to {MAX_K}; got {k!r}")
    return int(k)


def _checked_question(question, position: int | None) -> str:
    where = "question" if position is None else f"question {position + 1}"
    if not isinstance(question, str):
        raise UsageError(f"{where} must be a string; got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise UsageError(f"{where} is empty: ask something")
    if len(text) > MAX_QUESTION_CHARS:
        raise UsageError(f"{where} has {len(text):,} characters; at most "
                         f"{MAX_QUESTION_CHARS:,} are accepted")  # fmt: skip
    return text
