"""Training an FAQ assistant: read the FAQ (or a folder of pages) -> validation questions
(validation.py: held-out paraphrases in folds, labelled questions split) -> encode every text
once -> optionally tune the encoder on the FAQ's texts -> the encoder's runtime -> choose the
fusion and field weights, fit the confidence and the hand-over threshold on validation -> the
model over every text -> publish.

Without paraphrases or questions there is nothing to validate on: the default settings and
calibration are used, and the notes say so."""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from pathlib import Path

import numpy as np

from shipml.answer.head import fit_head
from shipml.answer.model import KIND, AnswerModel
from shipml.answer.retrieval import DEFAULT_SETTINGS, Settings, field_texts
from shipml.answer.validation import (
    GRID,
    every_question,
    held_out,
    make_plan,
    scoped_queries,
    validate,
)
from shipml.errors import UsageError

__all__ = ["train_answer", "read_source", "GRID"]

log = logging.getLogger(__name__)
MIN_TUNE_S = 20.0  # seconds of the budget contrastive tuning needs, at least
MIN_ONNX_S = 30.0  # seconds left the int8 ONNX export and check need, at least
RUNTIMES = ("auto", "pytorch", "onnx-int8")
_FINISH_S = 3.0  # fitting the confidence, the files and the report
# Defaults when nothing validates: a page's passage is its answer (its heading says little).
DOCUMENT_SETTINGS = Settings(alpha=0.8, paraphrase=1.0, answer=1.0)


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
    plan = make_plan(entries, labelled, seed, notes)
    texts = field_texts(entries)
    vectors = enc.encode(texts.texts)
    calibrate_on = None  # folds the confidence is fitted on (None: all)
    if tune is not False:
        deadline = started + float(time_budget)
        tuned = _tuned(entries, texts, vectors, plan, enc, deadline, seed, progress, notes, tune)
        if tuned is not None:
            enc, vectors = tuned, tuned.encode(texts.texts)
            # tuning chose its weights on the first fold, learned from none of these
            calibrate_on = plan.calibration_folds or [0]
    runtime_info = _runtime(entries, texts, plan, enc, started + float(time_budget), runtime)
    if runtime_info is not None:
        notes.append(runtime_info["note"])
        if runtime_info["encoder"] is not enc:
            enc = runtime_info["encoder"]
            vectors = enc.encode(texts.texts)
    defaults = DOCUMENT_SETTINGS if _is_folder(data) else DEFAULT_SETTINGS
    fit = validate(entries, texts, vectors, plan, enc, float(min_precision), seed, notes,
                   defaults, calibrate_on)  # fmt: skip
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


def _tuned(entries, texts, vectors, plan, enc, deadline, seed, progress, notes, tune):
    """The contrastively tuned encoder (tuning.py) when it ranks the validation questions
    better than the frozen one; else None (and why, in the notes)."""
    from shipml.answer.tuning import entry_mrr, tune_encoder

    queries, target = scoped_queries(entries, plan)
    if not len(queries):
        return None
    calibration = [pair for f in plan.calibration_folds for pair in plan.folds[f]]
    columns = held_out(texts, plan.held + calibration)
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

    queries, target, own = every_question(entries, texts, plan)
    left = deadline - time.monotonic()
    if runtime == "pytorch" or (runtime == "auto" and (not queries or left < MIN_ONNX_S)):
        return None
    if not queries:  # forced, with nothing to judge on: the FAQ's questions against themselves
        queries, target = [e["question"] for e in entries], np.arange(len(entries))
        own = np.full(len(entries), -1)
    chosen, info = pick_runtime(enc, texts.texts, texts.entry, queries, target,
                                texts.n_entries, own)  # fmt: skip
    if runtime == "onnx-int8" and chosen is enc and info["runtime"] == "pytorch":
        info["note"] += " (asked for int8, but it ranks worse: PyTorch kept)"
    return dict(info, encoder=chosen)


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
