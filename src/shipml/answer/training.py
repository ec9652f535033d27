"""Training an FAQ assistant: read the FAQ (or a folder of pages) -> validation queries ->
encode every text once -> choose the fusion and field weights on validation -> fit the
confidence and the hand-over threshold -> the model over every text -> publish.

Validation without labelled questions: one paraphrase of each entry that has any is held out
(removed from the index) and asked as a question; each is asked a second time with its own
entry removed from the FAQ — a question the FAQ cannot answer, the negatives the confidence
and threshold need. With labelled real questions (`questions=`: question, expected_id or
"none"), those are split: half join the validation queries, half are the test the reported
metrics come from (all of them validate when there are fewer than `_MIN_TEST` * 2).
Without paraphrases or questions there is nothing to validate on: the default settings and
calibration are used, and the notes say so.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from shipml.answer.confidence import (
    DEFAULT_CALIBRATOR,
    Calibrator,
    candidate_features,
    choose_threshold,
    rank,
)
from shipml.answer.head import fit_head
from shipml.answer.metrics import answer_metrics
from shipml.answer.model import KIND, AnswerModel
from shipml.answer.retrieval import (
    DEFAULT_SETTINGS,
    DenseIndex,
    Lexical,
    Scores,
    Settings,
    centroids,
    field_texts,
)
from shipml.errors import UsageError

__all__ = ["train_answer", "read_source", "GRID"]

log = logging.getLogger(__name__)
_MIN_TEST = 10  # labelled questions on each side of the split, at least
# Validation queries kept, at most: every query is scored against every text in each grid step
# (a 10,000-entry FAQ held out 10,000 paraphrases: 7 GB and ten minutes for a 30 s budget).
MAX_VALIDATION = 1_500
_DEFAULT_THRESHOLD = 0.85  # with DEFAULT_CALIBRATOR: see confidence.py
# The questions asked with their own entry removed stand for the questions an FAQ cannot
# answer; they are harder than most such questions (the nearest entry is on the same topic),
# so together they count as this share of the calibration set, not as half of it.
NEGATIVE_SHARE = 0.25
MIN_TUNE_S = 20.0
MIN_ONNX_S = 30.0  # seconds left the int8 ONNX export and check need, at least
RUNTIMES = (
    "auto",
    "pytorch",
    "onnx-int8",
)  # seconds of the budget contrastive tuning needs, at least
_FINISH_S = 3.0  # fitting the confidence, the files and the report
# Defaults when nothing validates: a page's passage is its answer (its heading says little).
DOCUMENT_SETTINGS = Settings(alpha=0.8, paraphrase=1.0, answer=1.0)
# The settings searched on validation: dense share, paraphrase and answer field weights.
GRID = {
    "alpha": (0.8, 1.0, 0.9, 0.7, 0.6, 0.5, 0.4, 0.3, 0.0),
    "paraphrase": (1.0, 0.95),
    "answer": (0.8, 0.0, 0.6, 0.7, 0.9, 1.0),
    "centroid": (0.0, 0.3, 0.5, 0.7),
}
HEAD_SHARES = (0.3, 0.6)  # tried after the grid, on its best settings


def read_source(data) -> tuple[list[dict], list[str], tuple[str, str | None]]:
    """(entries, notes, (source, sha256)) of an FAQ table or a folder of pages."""
    from shipml.answer.documents import read_documents
    from shipml.answer.faq import read_faq

    if _is_folder(data):
        entries, notes = read_documents(Path(data))
        return entries, notes, (str(data), _folder_sha(Path(data)))
    entries, notes = read_faq(data)
    return entries, notes, _identity(data)


def _is_folder(data) -> bool:
    return isinstance(data, (str, Path)) and Path(data).is_dir()


def train_answer(data, *, name=None, time_budget: float = 120.0, min_precision: float = 0.9,
                 seed: int = 0, questions=None, encoder=None, registry=None,
                 registry_uri=None, report: bool = True, progress=None,
                 tune: bool | None = None, runtime: str = "auto") -> AnswerModel:  # fmt: skip
    """An AnswerModel for the FAQ `data` (a table path, a DataFrame or a folder of pages);
    registered under `name` (None: returned only). `min_precision`: the precision the hand-over
    threshold keeps on validation. `questions`: labelled real questions (optional). `tune`:
    contrastive tuning of the encoder on the FAQ's texts (None: when validation queries exist
    and the time budget leaves at least `MIN_TUNE_S` for it; kept only if validation gains).
    `runtime`: "auto" (int8 ONNX when it ranks the validation questions as well and the time
    budget leaves `MIN_ONNX_S` for the check), "pytorch" or "onnx-int8"."""
    if runtime not in RUNTIMES:
        raise UsageError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    started = time.monotonic()
    if not 0.0 < float(min_precision) <= 1.0:
        raise UsageError(f"min_precision must be in (0, 1]; got {min_precision!r}")
    if name is not None:
        from shipml.registry.store import check_name

        check_name(name)
    entries, notes, identity = read_source(data)
    labelled = _labelled(questions, entries)
    enc = _encoder(encoder)
    plan = _plan(entries, labelled, seed, notes)
    texts = field_texts(entries)
    vectors = enc.encode(texts.texts)
    if tune is not False:
        deadline = started + float(time_budget)
        tuned = _tuned(entries, texts, vectors, plan, enc, deadline, seed, progress, notes, tune)
        if tuned is not None:
            enc, vectors = tuned, tuned.encode(texts.texts)
    runtime_info = _runtime(entries, texts, plan, enc, started + float(time_budget), runtime)
    if runtime_info is not None:
        notes.append(runtime_info["note"])
        if runtime_info["encoder"] is not enc:
            enc = runtime_info["encoder"]
            vectors = enc.encode(texts.texts)
    defaults = DOCUMENT_SETTINGS if _is_folder(data) else DEFAULT_SETTINGS
    fit = _validate(entries, texts, vectors, plan, enc, float(min_precision), seed, notes,
                    defaults)  # fmt: skip
    info = {"notes": notes, "min_precision": float(min_precision), "validation": plan.describe,
            "curve": fit.curve, "metrics": fit.metrics, "baselines": fit.baselines}  # fmt: skip
    if runtime_info is not None:
        info["text_runtime"] = {k: v for k, v in runtime_info.items() if k != "encoder"}
    head = fit_head(vectors, texts, seed) if fit.settings.head else None
    model = AnswerModel(entries, enc, vectors, fit.settings, fit.calibrator, fit.threshold, info,
                        head)  # fmt: skip
    if plan.test:
        test = model.evaluate_lists(*zip(*plan.test))
        model.info["metrics"] = dict(test, validation=fit.metrics)
        model.info["metrics_on"] = f"{len(plan.test)} labelled questions kept out of training"
    _lineage(model, identity, started, seed, time_budget)
    if name is None:
        return model
    return _publish(model, name, registry, registry_uri, report, started)


def _labelled(questions, entries) -> list[tuple[str, str]] | None:
    if questions is None:
        return None
    from shipml.answer.questions import read_questions

    q, e = read_questions(questions, {x["id"] for x in entries})
    return list(zip(q, e))


def _encoder(spec):
    from shipml.encoders import load_encoder

    return load_encoder(spec)


@dataclass
class _Plan:
    held: list[tuple[int, str]]  # (entry index, held-out paraphrase)
    labelled: list[tuple[str, str]]  # validation questions (text, expected id or "none")
    test: list[tuple[str, str]]
    describe: str


def _plan(entries, labelled, seed: int, notes: list[str]) -> _Plan:
    rng = np.random.default_rng(seed)
    held = []
    for i, e in enumerate(entries):
        if e.get("paraphrases"):
            held.append((i, e["paraphrases"][int(rng.integers(len(e["paraphrases"])))]))
    parts, having = [], len(held)
    if having > MAX_VALIDATION:  # a sample of the entries: the cost grows with queries x texts
        held = [held[j] for j in np.sort(rng.choice(having, MAX_VALIDATION, replace=False))]
    if held:
        which = (
            "one per entry that has any"
            if len(held) == having
            else (f"one per entry, for {len(held):,} of the {having:,} entries that have any")
        )
        parts.append(
            f"{len(held):,} held-out paraphrases ({which}), each also "
            "asked with its entry removed as a question the FAQ cannot answer"
        )
    val, test = list(labelled or [])[: 2 * MAX_VALIDATION], []
    if len(val) >= 2 * _MIN_TEST:
        order = rng.permutation(len(val))
        half = len(val) // 2
        test = [val[i] for i in order[half:]]
        val = [val[i] for i in order[:half]]
        parts.append(
            f"{len(val)} of {len(labelled)} labelled questions (the other {len(test)} "
            "are the test of the reported metrics)"
        )
    elif val:
        parts.append(
            f"all {len(val)} labelled questions (too few to keep a test apart: the "
            "reported metrics are validation metrics)"
        )
    if not parts:
        notes.append(
            "no validation: the FAQ has no paraphrases and no labelled questions were "
            "given, so the default fusion and field weights, confidence and hand-over "
            f"threshold ({_DEFAULT_THRESHOLD}) are used and nothing was measured; add "
            "paraphrases or questions= (question, expected_id) to choose them"
        )
    return _Plan(held, val, test, "; ".join(parts) or "none")


def _held_out(entries, texts, plan: _Plan) -> np.ndarray:
    """The columns of `texts` the validation index keeps (all but the held-out paraphrases)."""
    held_rows = {(i, p) for i, p in plan.held}
    keep = np.array([not (f == 1 and (int(i), t) in held_rows)
                     for t, i, f in zip(texts.texts, texts.entry, texts.field)])  # fmt: skip
    return np.flatnonzero(keep)


def _scoped_queries(entries, plan: _Plan) -> tuple[list[str], np.ndarray]:
    """The validation questions that have an answer, and their entries' indices."""
    by_id = {e["id"]: i for i, e in enumerate(entries)}
    pairs = [(p, i) for i, p in plan.held]
    pairs += [(q, by_id[e]) for q, e in plan.labelled if e in by_id]
    return [q for q, _ in pairs], np.array([i for _, i in pairs], dtype=np.int64)


def _tuned(entries, texts, vectors, plan, enc, deadline, seed, progress, notes, tune):
    """The contrastively tuned encoder (tuning.py) when it ranks the validation questions
    better than the frozen one; else None (and why, in the notes)."""
    from shipml.answer.tuning import entry_mrr, tune_encoder

    queries, target = _scoped_queries(entries, plan)
    if not len(queries):
        return None
    columns = _held_out(entries, texts, plan)
    # after tuning: every text and question encoded again, the rest of training, the files
    reserve = 2.5 * enc.estimate_seconds(texts.texts + queries, cached=False) + _FINISH_S
    left = deadline - time.monotonic() - reserve
    if left < MIN_TUNE_S and not tune:
        notes.append(
            f"encoder not tuned on the FAQ: {max(0.0, left):.0f}s of the time budget "
            f"left for it, {MIN_TUNE_S:g}s needed (a larger time budget tunes it)"
        )
        return None
    frozen = entry_mrr(enc.encode(queries), vectors[columns], texts.entry[columns], target,
                       texts.n_entries)  # fmt: skip
    result = tune_encoder(enc, [texts.texts[i] for i in columns], texts.entry[columns], queries,
                          target, deadline=deadline - reserve, seed=seed,
                          progress=progress)  # fmt: skip
    if result is None:
        return None
    gained = result.best_score is not None and result.best_score > frozen + 1e-3
    what = (
        f"contrastive tuning on the FAQ's texts ({result.steps} steps, "
        f"{result.seconds:.0f}s): validation MRR {result.best_score:.3f} vs {frozen:.3f} "
        f"frozen — {'tuned encoder kept' if gained else 'frozen encoder kept'}"
    )
    notes.append(what)
    log.info(what)
    return result.encoder if gained else None


def _runtime(entries, texts, plan, enc, deadline: float, runtime: str) -> dict | None:
    """runtime.py's choice between PyTorch and int8 ONNX (with "encoder": the one to use), or
    None when it is not made (PyTorch asked for, nothing to judge on, too little time)."""
    from shipml.answer.runtime import pick_runtime

    queries, target = _scoped_queries(entries, plan)
    left = deadline - time.monotonic()
    if runtime == "pytorch" or (runtime == "auto" and (not queries or left < MIN_ONNX_S)):
        return None
    columns = _held_out(entries, texts, plan)
    if not queries:  # forced, with nothing to judge on: the FAQ's questions against themselves
        queries, target = [e["question"] for e in entries], np.arange(len(entries))
    chosen, info = pick_runtime(enc, [texts.texts[i] for i in columns], texts.entry[columns],
                                queries, target, texts.n_entries)  # fmt: skip
    if runtime == "onnx-int8" and chosen is enc and info["runtime"] == "pytorch":
        info["note"] += " (asked for int8, but it ranks worse: PyTorch kept)"
    return dict(info, encoder=chosen)


@dataclass
class _Fit:
    settings: Settings
    calibrator: Calibrator
    threshold: float
    curve: list
    metrics: dict
    baselines: dict


def _validate(entries, texts, vectors, plan: _Plan, enc, min_precision, seed, notes,
              defaults: Settings) -> _Fit:  # fmt: skip
    if not plan.held and not plan.labelled:
        return _Fit(defaults, DEFAULT_CALIBRATOR, _DEFAULT_THRESHOLD, [], {}, {})
    by_id = {e["id"]: i for i, e in enumerate(entries)}
    columns = _held_out(entries, texts, plan)
    queries = [p for _, p in plan.held] + [q for q, _ in plan.labelled]
    target = np.array([i for i, _ in plan.held] + [by_id.get(e, -1) for _, e in plan.labelled])
    qvec = enc.encode(queries)
    index_texts = [texts.texts[i] for i in columns]
    sub = _sub_texts(texts, columns)
    centroid = np.clip(qvec @ centroids(vectors[columns], sub).T, 0.0, None)
    head = fit_head(vectors[columns], sub, seed)
    full = Scores(DenseIndex(vectors[columns]).cosine(qvec), Lexical(index_texts).raw(queries),
                  sub, centroid, None if head is None else head.proba(qvec))  # fmt: skip
    settings, baselines = _choose(full, target)
    feats, correct, weights, fused = _calibration_set(full, target, settings)
    calibrator = Calibrator.fit(feats, correct, seed, weights) or DEFAULT_CALIBRATOR
    if calibrator is DEFAULT_CALIBRATOR:
        notes.append(
            "the validation questions were all answered alike (all right or all "
            "wrong): the default confidence is used"
        )
    conf = calibrator(feats)
    threshold, curve, reached = choose_threshold(conf, correct, min_precision, weights)
    if not reached:
        notes.append(
            f"no confidence threshold reaches the precision {min_precision:g} on "
            f"validation; the threshold of the highest precision is used ({threshold:.3f})"
        )
    metrics = answer_metrics(fused, conf[: len(target)], target, threshold)
    removed = conf[len(target) :] < threshold
    metrics.update(
        n_validation_queries=len(queries),
        n_calibration=len(correct),
        handover_own_removed=round(float(removed.mean()), 4) if len(removed) else None,
    )
    return _Fit(settings, calibrator, threshold, curve, metrics, baselines)


def _sub_texts(texts, columns: np.ndarray):
    from shipml.answer.retrieval import FieldTexts

    return FieldTexts([texts.texts[i] for i in columns], texts.entry[columns],
                      texts.field[columns], texts.n_entries)  # fmt: skip


def _choose(scores: Scores, target: np.ndarray) -> tuple[Settings, dict]:
    """The grid's settings of the best validation MRR, then the linear head's share on them,
    and the dense-only and BM25-only Hit@1 of the same queries. The defaults (and no head)
    stay unless a change gains more than half a question's worth of MRR (on a few dozen
    queries, smaller gains are noise)."""
    from shipml.answer.metrics import ranks

    scoped = target >= 0
    if not scoped.any():
        return DEFAULT_SETTINGS, {}
    sub = Scores(scores.dense[scoped], scores.lexical[scoped], scores.texts,
                 None if scores.centroid is None else scores.centroid[scoped],
                 None if scores.head is None else scores.head[scoped])  # fmt: skip
    t = target[scoped]
    best = DEFAULT_SETTINGS
    best_mrr = float(np.mean(1.0 / ranks(sub.entries(best), t))) + 0.5 / len(t)
    for s in _grid():
        mrr = float(np.mean(1.0 / ranks(sub.entries(s), t)))
        if mrr > best_mrr + 1e-9:
            best, best_mrr = s, mrr
    if sub.head is not None:  # one share at a time on the chosen settings: fewer choices to fit
        best_mrr = float(np.mean(1.0 / ranks(sub.entries(best), t))) + 0.5 / len(t)
        for share in HEAD_SHARES:
            s = replace(best, head=share)
            mrr = float(np.mean(1.0 / ranks(sub.entries(s), t)))
            if mrr > best_mrr + 1e-9:
                best, best_mrr = s, mrr
    base = {}
    for label, alpha in (("dense", 1.0), ("bm25", 0.0)):
        r = ranks(sub.entries(replace(best, alpha=alpha, head=0.0)), t)
        base[label] = {"hit@1": round(float(np.mean(r == 1)), 4),
                       "mrr": round(float(np.mean(1.0 / r)), 4)}  # fmt: skip
    return best, base


def _grid():
    for alpha in GRID["alpha"]:
        for para in GRID["paraphrase"]:
            for ans in GRID["answer"]:
                for cen in GRID["centroid"]:
                    yield Settings(alpha, para, ans, cen)


def _calibration_set(scores: Scores, target: np.ndarray, settings: Settings):
    """(features, right?, weights) of the top answer of every validation query, then of every
    in-scope one again with its own entry removed (a negative, all of them weighted to
    NEGATIVE_SHARE of the set); and the fused scores of the queries as asked."""
    fused = scores.entries(settings)
    top = rank(fused, 1)
    feats = candidate_features(fused, *scores.candidates(top, settings), top)[:, 0, :]
    correct = np.argmax(fused, axis=1) == target
    scoped = np.flatnonzero(target >= 0)
    if not len(scoped):
        return feats, correct, np.ones(len(target)), fused
    own = scores.texts.entry[None, :] == target[scoped, None]
    cen = None if scores.centroid is None else scores.centroid[scoped]
    head = None if scores.head is None else scores.head[scoped]
    masked = Scores(np.where(own, 0.0, scores.dense[scoped]),
                    np.where(own, 0.0, scores.lexical[scoped]), scores.texts, cen,
                    head)  # fmt: skip
    mfused = masked.entries(settings)
    mfused[np.arange(len(scoped)), target[scoped]] = -np.inf
    mtop = rank(mfused, 1)
    mfeats = candidate_features(mfused, *masked.candidates(mtop, settings), mtop)[:, 0, :]
    all_feats = np.concatenate([feats, mfeats])
    all_correct = np.concatenate([correct, np.zeros(len(scoped), dtype=bool)])
    w_neg = NEGATIVE_SHARE / (1 - NEGATIVE_SHARE) * len(target) / len(scoped)
    weights = np.concatenate([np.ones(len(target)), np.full(len(scoped), w_neg)])
    return all_feats, all_correct, weights, fused


def _identity(data) -> tuple[str, str | None]:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=True).values.tobytes())
        return "<DataFrame>", digest.hexdigest()
    if isinstance(data, (str, Path)) and Path(data).is_file():
        from shipml.registry.artifacts import sha256_file

        return str(data), sha256_file(Path(data))
    return str(data), None


def _folder_sha(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _lineage(model: AnswerModel, identity, started: float, seed: int, budget: float) -> None:
    from shipml.progress import library_versions

    source, sha = identity
    model.info["lineage"] = {
        "data_source": source,
        "data_sha256": sha,
        "rows": len(model.entries),
        "texts": len(model.texts.texts),
        "seed": seed,
        "time_budget_s": budget,
        "duration_s": round(time.monotonic() - started, 2),
        "python": platform.python_version(),
        "libraries": library_versions(
            "shipml", "numpy", "scikit-learn", "bm25s", "usearch", "torch", "transformers"
        ),  # fmt: skip
    }


def _publish(model: AnswerModel, name: str, registry, registry_uri, report: bool,
             started: float) -> AnswerModel:  # fmt: skip
    from shipml.registry.store import Registry

    reg = registry or Registry(registry_uri)
    writer = reg.writer()
    try:
        model.write(writer)
        if report:
            from shipml.answer.report import write_report

            write_report(model, writer.dir / "report.html", title=f"{name} — training report")
            writer.files.append("report.html")
        writer.finish()
        model.info["lineage"]["duration_s"] = round(time.monotonic() - started, 2)
        schema = {
            "task": KIND,
            "target": None,
            "columns": [{"name": "question", "kind": "text", "note": "the customer's question"}],
        }
        info = reg.register(name, writer, task=KIND, metrics=model.metrics,
                            lineage=model.info["lineage"], schema=schema)  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    model.info.update(name=info.name, version=info.version)
    if report:
        model.info["report_path"] = str(info.artifact_dir / "report.html")
    log.info("registered %s", info.ref)
    return model
