"""Watching a served answer model: how often it answers, whether the answers help, and which
questions it could not answer — the FAQ entries to write next.

The server logs one row per answer (serve/answer.py): ``inputs`` holds the route ("answer"), the
question with its personal data replaced by keyed hashes, and k; ``outputs`` the entry answered
(None on a hand-over), the confidence, the hand-over flag and the alternatives' entries. Feedback
sent to ``/v1/feedback`` with the answer's id is the feedback row's label ``{"helpful": bool,
"entry": the right entry id or None}`` (``add_answer_feedback``).

``answer_monitor`` counts, over a window:

- answer rate / hand-over rate: the shares of questions answered and handed over to a person;
- helpful share: of the answers with feedback, those marked helpful (a corrected entry counts as
  not helpful);
- unanswered questions: the hand-overs and the answers marked not helpful without a right entry,
  grouped by meaning and sorted by size: each group's most central question and a few of the
  others. The vectors are the packaged sentence encoder's (all-MiniLM-L6-v2); groups are
  average-linkage clusters (scikit-learn) cut at a mean cosine distance of 0.6. Measured on
  MiniLM: two wordings of one request are 0.45 to 0.8 similar, unrelated questions -0.05 to
  0.25.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import sqlalchemy as sa

from shipml.errors import FeedbackError
from shipml.monitor.log import note_version_span

__all__ = ["add_answer_feedback", "answer_monitor", "read_answers", "group_questions",
           "confirmed_pairs", "GROUP_DISTANCE", "MAX_GROUPS"]  # fmt: skip

GROUP_DISTANCE = 0.6  # average cosine distance under which questions ask the same thing
MAX_GROUPS = 10
MAX_GROUPED = 2000  # the newest unanswered questions grouped (the clustering is quadratic)
_EXAMPLES = 3


def add_answer_feedback(engine: sa.Engine, prediction_id: str, *, helpful: bool | None,
                        entry: str | None, key_name: str | None, entries=None) -> dict:  # fmt: skip
    """Store whether the answer `prediction_id` helped, or the entry that was right (one
    feedback per answer). `entries(model) -> set of entry ids | None` checks a corrected entry.
    FeedbackError: 404 no such prediction, 409 it has feedback, 422 a bad body or entry."""
    from shipml.registry import tables as t

    if helpful is None and entry is None:
        raise FeedbackError('send "helpful": true or false, or the right "entry" id', 422)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(t.predictions.c.model, t.predictions.c.version, t.predictions.c.outputs)
            .where(t.predictions.c.id == prediction_id)
        ).first()  # fmt: skip
        if row is None:
            raise FeedbackError(f"no logged prediction has id {prediction_id!r}", 404)
        outputs = row.outputs or {}
        if "handover" not in outputs:
            raise FeedbackError(f"prediction {prediction_id!r} is not an answer: send its true "
                                '"label" (or "item" and "event" for a recommendation)',
                                422)  # fmt: skip
        exists = conn.execute(
            sa.select(t.feedback.c.prediction_id).where(t.feedback.c.prediction_id == prediction_id)
        ).first()
        if exists is not None:
            raise FeedbackError(f"prediction {prediction_id!r} already has feedback", 409)
        known = entries(row.model) if entries is not None else None
        if entry is not None and known is not None and entry not in known:
            raise FeedbackError(f"entry {entry[:60]!r} is not an entry of {row.model!r}", 422)
        if entry is not None:
            helpful = entry == outputs.get("entry")
        label = {"helpful": bool(helpful), "entry": entry}
        conn.execute(t.feedback.insert().values(
            prediction_id=prediction_id, label=label, key_name=key_name,
            created_at=dt.datetime.now(dt.timezone.utc)))  # fmt: skip
    return {"prediction_id": prediction_id, "model": row.model, "version": row.version,
            **label}  # fmt: skip


def read_answers(engine: sa.Engine, model: str, *, since=None, until=None,
                 version: int | None = None) -> list[dict]:  # fmt: skip
    """The logged answers of `model` in [since, until), oldest first: id, version, time,
    question, entry, confidence, handover and feedback (dict or None)."""
    from shipml.registry import tables as t

    p, f = t.predictions, t.feedback
    query = (
        sa.select(p.c.id, p.c.version, p.c.created_at, p.c.inputs, p.c.outputs, f.c.label)
        .select_from(p.outerjoin(f, f.c.prediction_id == p.c.id))
        .where(p.c.model == model)
        .order_by(p.c.created_at, p.c.id)
    )
    for column, op, value in ((p.c.created_at, "ge", since), (p.c.created_at, "lt", until),
                              (p.c.version, "eq", version)):  # fmt: skip
        if value is not None:
            query = query.where(getattr(column, f"__{op}__")(value))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        inputs, outputs = row.inputs or {}, row.outputs or {}
        if "handover" not in outputs:
            continue  # not an answer
        label = row.label if isinstance(row.label, dict) and "helpful" in row.label else None
        out.append({"id": row.id, "version": int(row.version), "created_at": row.created_at,
                    "question": str(inputs.get("question", "")), "entry": outputs.get("entry"),
                    "confidence": outputs.get("confidence"),
                    "handover": bool(outputs["handover"]), "feedback": label})  # fmt: skip
    return out


def rates(answers: list[dict]) -> dict[str, Any]:
    """Counts and shares of `answers` (see the module docstring)."""
    n = len(answers)
    handed = sum(a["handover"] for a in answers)
    rated = [a["feedback"] for a in answers if a["feedback"] is not None and not a["handover"]]
    helpful = sum(bool(f["helpful"]) for f in rated)
    corrected = sum(f.get("entry") is not None and not f["helpful"] for f in rated)
    return {
        "n_questions": n,
        "n_answered": n - handed,
        "n_handover": handed,
        "n_feedback": len(rated),
        "n_helpful": helpful,
        "n_corrected": corrected,
        "answer_rate": (n - handed) / n if n else None,
        "handover_rate": handed / n if n else None,
        "helpful_share": helpful / len(rated) if rated else None,
    }


def unanswered(answers: list[dict]) -> list[str]:
    """Questions handed over, or answered unhelpfully with no right entry given."""
    out = []
    for a in answers:
        f = a["feedback"]
        missed = a["handover"] or (f is not None and not f["helpful"] and f.get("entry") is None)
        if missed and a["question"].strip():
            out.append(a["question"])
    return out[-MAX_GROUPED:]


def group_questions(
    questions: list[str], encoder=None, *, distance: float = GROUP_DISTANCE, top: int = MAX_GROUPS
) -> list[dict]:
    """Questions grouped by meaning, largest group first: {"count", "question" (the most
    central one), "examples"}."""
    if not questions:
        return []
    vectors = _vectors(questions, encoder)
    labels = _clusters(vectors, distance)
    groups = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        centre = vectors[members].mean(axis=0)
        order = members[np.argsort(-(vectors[members] @ centre), kind="stable")]
        texts = [questions[i] for i in order]
        distinct = list(dict.fromkeys(texts))
        groups.append({"count": int(len(members)), "question": distinct[0],
                       "examples": distinct[1 : 1 + _EXAMPLES]})  # fmt: skip
    groups.sort(key=lambda g: (-g["count"], g["question"]))
    return groups[:top]


def _vectors(questions: list[str], encoder) -> np.ndarray:
    if encoder is None:
        from shipml.encoders import load_encoder

        encoder = load_encoder()
    vectors = np.asarray(encoder.encode(questions), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _clusters(vectors: np.ndarray, distance: float) -> np.ndarray:
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                    distance_threshold=distance)  # fmt: skip
    return model.fit_predict(vectors)


def confirmed_pairs(answers: list[dict]) -> list[tuple[str, str]]:
    """(question, entry id) that feedback confirmed (a helpful answer's entry, or the right
    entry named), oldest first, each once; questions with redacted personal data are left out
    (they hold hashes, not words)."""
    out: dict[tuple[str, str], None] = {}
    for a in answers:
        f = a["feedback"]
        if f is None:
            continue
        entry = f.get("entry") or (a["entry"] if f["helpful"] else None)
        question = a["question"].strip()
        if entry is None or not question or " hmac:" in question:
            continue
        out[(question, str(entry))] = None
    return list(out)


def answer_monitor(engine, result: dict, *, start, end, version, offline: dict,
                   encoder=None) -> dict:  # fmt: skip
    """Fill `result` (check.monitor's, for an answer model) from the logged answers."""
    answers = read_answers(engine, result["model"], since=start, until=end, version=version)
    result["task"] = "answer"
    if not answers:
        return result
    checked = version if version is not None else max(a["version"] for a in answers)
    others: dict[str, int] = {}
    for a in answers:
        if a["version"] != checked:
            others[str(a["version"])] = others.get(str(a["version"]), 0) + 1
    rows = [a for a in answers if a["version"] == checked]
    stats = rates(rows)
    stats["unanswered"] = group_questions(unanswered(rows), encoder)
    stats["offline"] = {k: offline[k] for k in ("answer_rate", "precision", "hit@1", "hit@3")
                        if isinstance(offline.get(k), (int, float))}  # fmt: skip
    result.update(version=checked, n_predictions=len(rows), other_versions=others,
                  status="checked", answers=stats)  # fmt: skip
    note_version_span(result, rows, checked, others)
    result["notes"].append(
        "Data and prediction drift were not checked: an answer model has no feature columns or "
        "predicted labels to compare with its training data. The answer rate, the helpful share "
        "and the unanswered questions are its live measures."
    )
    result["message"] = _summary(result["model"], checked, stats)
    return result


def _summary(model: str, version: int, s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    return (
        f"{s['n_questions']:,} questions to {model}/{version}: answered {pct(s['answer_rate'])}, "
        f"handed over {pct(s['handover_rate'])}; helpful {pct(s['helpful_share'])} of "
        f"{s['n_feedback']:,} answers with feedback"
    )
