"""`train`: a table in, a validated, explained, registered Model out, within a time budget.

Steps: read -> infer schema -> encode -> plan validation -> search (linear baseline + LightGBM
under Optuna) -> ensemble selection -> decision threshold -> metrics, importance, report ->
registry. The wall clock of the whole call stays within the budget: the search gets what is left
after reading the data, minus what the steps after it are planned to take (planning.py).

Text columns (learners/text.py): in the `embed` mode they become sentence embeddings; the search
runs on those, a TF-IDF + linear baseline runs on the same validation plan, and the better of the
two on validation becomes the model.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from shipml.data.features import Encoder
from shipml.data.io import read_table
from shipml.data.schema import Schema, infer_schema
from shipml.data.split import ValidationPlan, plan_validation
from shipml.errors import DataError, ShipmlError
from shipml.learners.base import Budget, TrainData, to_proba, untransform_target
from shipml.learners.text import MODES as TEXT_MODES
from shipml.learners.text import TUNED, few_shot, with_class_names
from shipml.model import Member, Model, json_safe
from shipml.planning import (
    TimePlan,
    plan_text_steps,
    post_search_seconds,
    refit_seconds,
    runtime_skip,
)

__all__ = ["train", "prepare"]

log = logging.getLogger(__name__)
_REFIT_SHARE = 0.15  # of the budget, for retraining holdout-validated models on all rows
_IMPORTANCE_ROWS = 300  # rows whose contributions give the global importance (at most)
_IMPORTANCE_FIRST = 30  # rows timed first, to size the rest to the time left
_FINISH_AFTER_IMPORTANCE = 0.7  # of the post-search estimate: reference, report, registry
_SEARCH_SHARE = 0.15  # auto mode: embedding stops when less than this share of its time is left
_BASELINE_SHARE = 0.25  # of the search time, for the TF-IDF baseline next to sentence embeddings
_FEW_SHOT_NOTE = (
    "few-shot: a linear head on the sentence embeddings, no search among heads and no TF-IDF "
    "comparison (with so few rows per class, validation cannot tell them apart)"
)


def prepare(
    data,
    target: str,
    *,
    task: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    drop: tuple[str, ...] = (),
    kinds: dict[str, str] | None = None,
    pii: tuple[str, ...] = (),
    keep_pii: tuple[str, ...] = (),
):
    """Read and encode a training table: (table, schema, encoder, TrainData, frame)."""
    table = read_table(data)
    frame = table.frame
    schema = infer_schema(
        frame,
        target,
        task=task,
        time_column=time_column,
        group_column=group_column,
        drop=drop,
        kinds=kinds,
        pii=pii,
        keep_pii=keep_pii,
    )
    frame = frame[frame[target].notna()]
    typed = schema.coerce(frame, strict=False)
    encoder = Encoder.fit(schema, typed)
    X = encoder.transform(typed)
    labels = schema.target_values(frame)
    if schema.task == "regression":
        y = labels.astype(np.float64)
        keep = ~np.isnan(y)
        if not keep.all():  # text in a numeric target: not a number -> not a training row
            schema.notes.append(f"{int((~keep).sum())} rows with a non-numeric target left out")
            frame, X, y = frame[keep], X[keep], y[keep]
    else:
        index = {c: i for i, c in enumerate(schema.classes)}
        y = np.array([index[v] for v in labels], dtype=np.int64)
    n_classes = len(schema.classes or [])
    return (
        table,
        schema,
        encoder,
        TrainData(X, y, schema.task, n_classes, encoder.categorical),
        frame,
    )


def train(
    data,
    target: str,
    *,
    name: str | None = None,
    time_budget: float = 60.0,
    task: str | None = None,
    metric: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    drop: tuple[str, ...] | list[str] = (),
    kinds: dict[str, str] | None = None,
    pii: tuple[str, ...] | list[str] = (),
    keep_pii: tuple[str, ...] | list[str] = (),
    seed: int = 0,
    n_trials: int | None = None,
    registry=None,
    registry_uri: str | None = None,
    progress: bool | Callable[[dict], None] | None = None,
    report: bool = True,
    mode: str = "auto",
    encoder: str | None = None,
    text_column: str | None = None,
) -> Model:
    """Train the best model for `target` in `time_budget` seconds; register it under `name`.

    `data` is a file path (CSV/TSV/Parquet/Excel/JSON lines) or a DataFrame. With `name=None`
    the model is returned but not registered. `n_trials` caps the search for exact
    reproducibility (with the same `seed`); otherwise the budget decides. `pii` marks columns
    holding personal data (besides those detected by their values or header). Personal data is
    left out of the features and of every artifact (the server logs it only as keyed hashes);
    `keep_pii` names the ones to use anyway, as features of keyed hashes.

    Text columns: `mode` is "auto" (sentence embeddings when the text extra is installed and
    they fit the budget, else TF-IDF), "embed" or "tfidf"; `encoder` is a folder or hub id of a
    sentence encoder (default: the packaged all-MiniLM-L6-v2); `text_column` marks a column as
    text when detection would not.
    """
    from shipml.ensemble import select_ensemble
    from shipml.scoring import better, check_metric, default_metric
    from shipml.search import run_search

    if time_budget <= 0:
        raise ShipmlError(f"time budget must be positive seconds, got {time_budget}")
    timing = TimePlan(time_budget)
    started = timing.started
    _import_heavy()  # counted in the budget, and before the search sets its deadline
    if mode not in TEXT_MODES:
        raise ShipmlError(f"--mode must be one of {', '.join(TEXT_MODES)}; got {mode!r}")
    if name is not None:
        from shipml.registry.store import check_name

        check_name(name)
    if text_column is not None:
        kinds = {**(kinds or {}), text_column: "text"}
    table, schema, features, tdata, frame = prepare(
        data,
        target,
        task=task,
        time_column=time_column,
        group_column=group_column,
        drop=tuple(drop),
        kinds=kinds,
        pii=tuple(pii),
        keep_pii=tuple(keep_pii),
    )
    metric = metric or default_metric(schema.task)
    check_metric(metric, schema.task)
    if len(tdata.y) < 10:
        raise DataError(f"only {len(tdata.y)} labelled rows: shipml needs at least 10 to validate")
    slowdown = timing.measure_slowdown()
    registering = report and name is not None
    n_rows, n_features = len(tdata.y), len(schema.features)  # columns, not encoded features
    timing.reserve(
        "finish", post_search_seconds(time_budget, n_rows, n_features, registering, slowdown)
    )
    choice = _text_choice(schema, frame, tdata, mode, encoder, timing)
    tuned = choice is not None and choice.mode in TUNED
    plan = _plan(schema, frame, tdata, seed, holdout=tuned)
    # A holdout-validated model trained on 80% of the rows; keep time to retrain the chosen
    # ones on all rows (k-fold models already saw every row across their folds). A tuned text
    # encoder learned from the training rows only, so its heads are not refitted. The search
    # re-estimates this reserve from the fit times of its best candidates.
    refit_cap = _REFIT_SHARE * time_budget if plan.kind == "holdout" and not tuned else 0.0
    if refit_cap:
        timing.reserve("refit", refit_cap)
    reporter = _progress(progress, time_budget, metric)
    text = _text_features(
        schema, frame, features, tdata, choice, plan, timing.deadline(), seed, reporter
    )
    if text is not None and text.get("stopped"):  # auto mode: the embedding ran out of time
        schema.notes.append(text["stopped"])
        _release_text_steps(timing)
        text = None
    rows = plan.scored_rows
    # A handful of rows per class: cross-validation cannot pick among hundreds of heads (it
    # picks the luckiest), nor tell sentence embeddings from TF-IDF: a linear head on the
    # embeddings, with the class names as extra examples, is what holds up (benchmarks/text.py).
    few = text is not None and few_shot(schema, tdata.y)
    base_ens = None
    try:
        if text is not None and not few:  # TF-IDF + linear baseline first, on a share of time
            now, deadline = timing.clock(), timing.deadline()
            share = _BASELINE_SHARE / 2 if tuned else _BASELINE_SHARE
            baseline = run_search(
                tdata,
                plan,
                metric=metric,
                budget=Budget(min(deadline, now + share * (deadline - now)), timing.clock),
                seed=seed,
                progress=reporter,
                families=("linear",),
            )
            base_ens = select_ensemble(baseline, tdata.y[rows], schema.task)
        if text is not None:
            features, tdata = text["encoder"], text["data"]
        search_data, search_plan = tdata, plan
        if few:
            search_data, search_plan, names = with_class_names(schema, features, tdata, plan)
            text["notes"].extend([_FEW_SHOT_NOTE] + ([names] if names else []))
        result = run_search(
            search_data,
            search_plan,
            metric=metric,
            budget=timing.search_budget(),
            seed=seed,
            n_trials=n_trials,
            progress=reporter,
            families=("linear",) if few else None,
            on_candidate=_refit_estimate(timing, refit_cap),
            defaults_first=not any(c.kind == "text" for c in schema.features),
        )
        timing.mark("search_deadline", timing.deadline() - started)
        timing.mark("search_end")
    finally:
        if hasattr(reporter, "close"):
            reporter.close()
    ens = select_ensemble(result, tdata.y[rows], schema.task)
    trials, candidates = result.trials, result.candidates
    if base_ens is not None:
        text["note"] = _text_note(text, ens, base_ens, metric)
        for c in baseline.candidates:
            c.name = f"tfidf+{c.name}"
        trials = _tagged(baseline.trials, "tfidf+") + trials
        candidates = candidates + baseline.candidates
        if better(metric, base_ens.score, ens.score):  # TF-IDF won: keep it
            features, tdata, ens = text["tfidf"], text["tfidf_data"], base_ens
    oof_raw = ens.raw_oof()
    if plan.kind == "holdout":
        timing.run("refit", lambda: _refit(ens, tdata, seed, timing.budget("refit")))
    members = [Member(c.fitted, w, c.name) for c, w in zip(ens.members, ens.weights)]
    decision = _threshold(schema, tdata.y, oof_raw, rows, metric, seed)
    threshold = None if decision is None else decision.threshold
    model = Model(schema, features, members, ens.transform, threshold)
    if decision is not None:
        model.info["threshold"] = decision.to_dict()
    metrics = _validation_metrics(model, tdata.y[rows], oof_raw)
    sample = _sample(len(tdata.X), _IMPORTANCE_ROWS, seed)
    model.info.update(
        {
            "metrics": metrics,
            "validation": plan.description,
            "importance": timing.run(
                "importance", lambda: _importance(model, tdata.X[sample], timing)
            ),
            "trials": trials,
            "candidates": [
                {
                    "name": c.name,
                    "score": c.score,
                    "params": json_safe(c.params),
                    "seconds": round(c.seconds, 3),
                }
                for c in candidates
            ],
            "notes": list(schema.notes),
        }
    )
    if text is not None:
        model.info["text_features"] = text.get("note") or f"sentence embeddings ({text['source']})"
        model.info["notes"] = model.info["notes"] + text["notes"]
        if text.get("tuning"):
            model.info["text_tuning"] = text["tuning"]
    if features.embeds_text:
        runtime = _pick_runtime(model, frame, tdata.y, rows, seed, timing)
        if runtime is not None:
            model.info["text_runtime"] = runtime
            model.info["notes"].append(runtime["note"])
    model.info["lineage"] = _lineage(table, tdata, schema, seed, time_budget, started, n_trials)
    model.info["lineage"]["time_plan"] = timing.summary()
    model.info["lineage"]["metric"] = metric
    if features.embeds_text:
        model.info["lineage"]["libraries"].update(_versions("torch", "transformers"))
        model.info["lineage"]["text_encoder"] = text["source"]
    if name is None:
        return model
    return _register(
        model, name, registry, registry_uri, frame, tdata, rows, oof_raw, report, timing
    )


def _text_choice(schema, frame, tdata, mode, encoder_spec, timing: TimePlan):
    """The text mode for this table and budget (None: no text column, TF-IDF as usual). The
    steps a sentence encoder adds after the search (the int8 check, storing its weights) are
    reserved first, so the mode is chosen on the time that is really left."""
    from shipml.learners.text import choose_text_mode

    y = tdata.y if schema.task != "regression" else None
    left = timing.deadline() - timing.clock()

    def after(sentence_encoder) -> float:
        return _reserve_text_steps(timing, sentence_encoder, frame, schema)

    choice = choose_text_mode(
        mode, encoder_spec, schema, frame, left, y, after=after, slowdown=timing.slowdown
    )
    choice.auto = mode == "auto"
    schema.notes.extend(choice.notes)
    if choice.mode == "tfidf":
        _release_text_steps(timing)
        return None
    return choice


def _release_text_steps(timing: TimePlan) -> None:
    for step in ("runtime", "write"):
        timing.release(step)
    timing.estimates.pop("runtime", None)


def _reserve_text_steps(timing: TimePlan, sentence_encoder, frame, schema) -> float:
    """Plan the int8 ONNX check and the copy of the encoder's weights (planning.py); returns
    the seconds reserved for them."""
    from shipml.learners.runtime import MAX_ROWS
    from shipml.learners.text import text_columns

    texts = frame[text_columns(schema)[0]].tolist()
    per_text = sentence_encoder.estimate_seconds(texts, cached=False) / max(len(texts), 1)
    rows = min(MAX_ROWS, len(texts))
    return plan_text_steps(timing, sentence_encoder.weights_bytes, rows, per_text)


def _refit_estimate(timing: TimePlan, cap: float):
    """The search's hook: re-estimate the refit reserve from its best candidates' fit times."""
    if not cap:
        return None

    def update(candidates) -> None:
        timing.reserve("refit", refit_seconds(candidates, cap))

    return update


def _text_features(schema, frame, tfidf, tdata, choice, plan, deadline, seed, progress):
    """Sentence-embedding features when the text mode says so, else None (TF-IDF only). The
    tuned modes first train the encoder on the holdout's training rows."""
    from shipml.encoders.sentence import EncodeStopped
    from shipml.learners.text import embed_features, tune_encoder

    if choice is None:
        return None
    notes, tuning, encoder = [], None, choice.encoder
    if choice.mode in TUNED:
        left = deadline - time.monotonic()
        until = time.monotonic() + 0.8 * max(0.0, left - 1.3 * choice.embed_seconds)
        result, encoder, notes = tune_encoder(
            choice, schema, frame, tdata.y, plan.folds[0], deadline=until, seed=seed,
            progress=progress,
        )  # fmt: skip
        tuning = result.summary()
    typed = schema.coerce(frame, strict=False)
    if choice.auto:  # leave the search on TF-IDF a share of the time if embedding falls behind
        encoder.deadline = deadline - _SEARCH_SHARE * max(0.0, deadline - time.monotonic())
    try:
        features, X, embed_notes = embed_features(schema, typed, encoder)
    except EncodeStopped as stopped:
        why = f"sentence embeddings {stopped} of the time budget"
        return {"stopped": f"text columns: TF-IDF, as {why}; a larger --time-budget keeps them"}
    finally:
        encoder.deadline = None
    data = TrainData(X, tdata.y, tdata.task, tdata.n_classes, features.categorical, tdata.weight)
    return {
        "encoder": features,
        "data": data,
        "tfidf": tfidf,
        "tfidf_data": tdata,
        "notes": notes + embed_notes,
        "source": encoder.source,
        "tuning": tuning,
    }


def _pick_runtime(model, frame, y, rows, seed, timing: TimePlan) -> dict | None:
    """PyTorch or int8 ONNX for the sentence encoder, judged on the validated rows, when the
    check fits what is left of the budget (else PyTorch, and the note says why)."""
    from shipml.learners.runtime import pick_runtime

    if model.encoder.text_encoder is None:
        return None
    skipped = runtime_skip(timing)
    if skipped is not None:
        return {"runtime": "pytorch", "note": skipped}
    truth = y[rows] if model.task == "regression" else np.asarray(model.classes, object)[y[rows]]
    budget = timing.budget("runtime")
    return timing.run(
        "runtime", lambda: pick_runtime(model, frame.iloc[rows], truth, seed=seed, budget=budget)
    )


def _text_note(text: dict, ens, base_ens, metric: str) -> str:
    from shipml.scoring import better

    embed_won = not better(metric, base_ens.score, ens.score)
    kept = "sentence embeddings" if embed_won else "TF-IDF"
    return (
        f"{kept} kept — validation {metric} {ens.score:.4f} with sentence "
        f"embeddings ({text['source']}) vs {base_ens.score:.4f} with the TF-IDF + linear "
        "baseline"
    )


def _tagged(trials: list[dict], prefix: str) -> list[dict]:
    return [{**t, "name": prefix + t["name"]} for t in trials]


def _refit(ens, tdata: TrainData, seed: int, budget: Budget) -> None:
    """Retrain the ensemble's members on all rows, heaviest first, while time allows (the
    families that refit: those a holdout left without the validation rows)."""
    from shipml.learners.registry import family

    order = sorted(range(len(ens.members)), key=lambda i: -ens.weights[i])
    for i in order:
        cand = ens.members[i]
        fam = family(cand.family)
        if not fam.refits or budget.remaining < 1.3 * cand.seconds:
            continue
        ens.members[i] = fam.refit(cand, tdata, seed, budget)


def _ensemble_note(ens, metric: str) -> str:
    if len(ens.members) == 1:
        return (
            f"model: {ens.members[0].name} alone ({metric} {ens.score:.4f}); no ensemble did better"
        )
    return (
        f"ensemble of {len(ens.members)} models: validation {metric} {ens.score:.4f} vs "
        f"{ens.single_best_score:.4f} for the best single model ({ens.members[0].name}); the "
        "ensemble's score is measured on the rows its weights were chosen on, so it is slightly "
        "optimistic"
    )


def _import_heavy() -> None:
    import optuna  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    from shipml._lazy import lightgbm

    lightgbm()


def _plan(
    schema: Schema, frame: pd.DataFrame, tdata: TrainData, seed: int, *, holdout: bool = False
) -> ValidationPlan:
    times = groups = None
    if schema.time_column:
        col = schema.column(schema.time_column)
        typed = schema.coerce(frame, strict=False) if col.used else None
        values = typed[col.name] if typed is not None else frame[col.name]
        times = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        times = np.where(np.isnan(times), np.nanmin(times), times)
    if schema.group_column:
        groups = frame[schema.group_column].astype(str).to_numpy()
    return plan_validation(
        tdata.y, schema.task, seed=seed, groups=groups, times=times, holdout=holdout
    )


def _threshold(schema: Schema, y: np.ndarray, oof_raw: np.ndarray, rows: np.ndarray,
               metric: str, seed: int):  # fmt: skip
    """Binary decision threshold, chosen for `metric` on the out-of-fold predictions: the
    metric's best threshold for a label metric, 0.5 for a ranking one (evaluate/threshold.py)."""
    if schema.task != "binary":
        return None
    from shipml.evaluate.threshold import choose_threshold

    p = to_proba(oof_raw, "binary")[:, 1]
    return choose_threshold(y[rows], p, metric, seed=seed)


def _validation_metrics(model: Model, y_enc: np.ndarray, oof_raw: np.ndarray) -> dict:
    from shipml.evaluate.metrics import classification_metrics, regression_metrics

    if model.task == "regression":
        return regression_metrics(y_enc, untransform_target(oof_raw, model.transform))
    labels = np.asarray(model.classes, dtype=object)
    proba = to_proba(oof_raw, model.task)
    return classification_metrics(
        labels[y_enc], proba, list(model.classes), y_pred=model.labels_from_proba(proba)
    )


def _importance(model: Model, X: np.ndarray, timing: TimePlan) -> dict[str, float]:
    """Global importance on as many rows of X as the plan leaves time for. TreeSHAP over a
    large forest, once per fold, can cost seconds per hundred rows (German credit: 6.8 s for
    300), so the first rows are timed and the rest sized to what is left before the steps
    still to come (the report, the reference, the registry)."""
    first = min(len(X), _IMPORTANCE_FIRST)
    t0 = timing.clock()
    importance = model.global_importance(X[:first])
    per_row = max(timing.clock() - t0, 1e-6) / first
    rest = _FINISH_AFTER_IMPORTANCE * timing.estimates.get("finish", 0.0)
    allowed = timing.end - timing.clock() - rest
    n = min(len(X), first + int(max(0.0, allowed) / per_row))
    if n > first:
        importance = model.global_importance(X[:n])
    timing.estimates["importance_rows"] = n
    return importance


def _sample(n: int, k: int, seed: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _lineage(table, tdata, schema, seed, budget, started, n_trials) -> dict:
    libs = _versions("shipml", "lightgbm", "scikit-learn", "optuna", "numpy", "pandas")
    return {
        "data_source": table.source,
        "data_sha256": table.sha256,
        "rows": int(len(tdata.y)),
        "columns": len(schema.columns) + 1,
        "features": int(tdata.X.shape[1]),
        "seed": seed,
        "time_budget_s": budget,
        "n_trials": n_trials,
        "duration_s": round(time.monotonic() - started, 2),
        "python": platform.python_version(),
        "libraries": libs,
    }


def _versions(*names: str) -> dict[str, str]:
    import importlib.metadata as md

    libs = {}
    for lib in names:
        try:
            libs[lib] = md.version(lib)
        except md.PackageNotFoundError:
            continue
    return libs


def _register(model, name, registry, registry_uri, frame, tdata, rows, oof_raw, report, timing):
    from shipml.registry.store import Registry

    started = timing.started
    reg = registry or Registry(registry_uri)
    writer = reg.writer()
    try:
        model.info["lineage"]["duration_s"] = round(time.monotonic() - started, 2)
        timing.run("write", lambda: model.write(writer))
        timing.run("reference", lambda: _write_drift_reference(writer, model, frame, oof_raw))
        if report:
            path = writer.dir / "report.html"
            timing.run(
                "report",
                lambda: _training_report(model, name, path, frame, tdata, rows, oof_raw),
            )
            writer.files.append("report.html")
        timing.run("finish", writer.finish)
        info = reg.register(
            name,
            writer,
            task=model.task,
            metrics=model.metrics,
            lineage=model.info["lineage"],
            schema=model.schema.to_dict(),
        )
    except BaseException:
        writer.abort()
        raise
    model.info.update(name=info.name, version=info.version)
    if report:
        model.info["report_path"] = str(info.artifact_dir / "report.html")
    log.info("registered %s (%.1fs; after the search: %s)", info.ref,
             time.monotonic() - started, timing.spent)  # fmt: skip
    return model


def _oof_predictions(model, oof_raw) -> tuple[np.ndarray, np.ndarray | None]:
    """What the model answered for its validation rows: (labels or values, proba or None)."""
    if model.task == "regression":
        return untransform_target(oof_raw, model.transform), None
    proba = to_proba(oof_raw, model.task)
    return model.labels_from_proba(proba), proba


def _write_drift_reference(writer, model, frame, oof_raw) -> None:
    """The training reference `shipml monitor` compares live inputs and predictions with:
    a sample of the training rows (PII columns left out) and the out-of-fold predictions."""
    from shipml.monitor.reference import ARTIFACT, build_reference, prediction_reference

    seed = model.info["lineage"]["seed"]
    reference = build_reference(model.schema.coerce(frame, strict=False), model.schema, seed=seed)
    predictions, _ = _oof_predictions(model, oof_raw)
    reference["prediction"] = prediction_reference(list(predictions), model.task, seed=seed)
    reference["task"] = model.task
    writer.write_json(ARTIFACT, reference)


def _training_report(model, name, path: Path, frame, tdata, rows, oof_raw) -> None:
    from shipml.evaluate.report import write_report
    from shipml.evaluate.summary import data_summary

    y_pred, proba = _oof_predictions(model, oof_raw)
    if model.task == "regression":
        y_true = tdata.y[rows]
    else:
        y_true = np.asarray(model.classes, dtype=object)[tdata.y[rows]]
    info = model.describe()
    info.update(name=name)
    # the validated rows' texts, for the report's examples of errors
    text = [c.name for c in model.schema.features if c.kind == "text" and not c.pii]
    examples = frame.iloc[rows][text] if text and model.task != "regression" else None
    write_report(
        path,
        title=f"{name} — training report",
        task=model.task,
        metrics=model.metrics,
        y_true=y_true,
        y_pred=y_pred,
        proba=proba,
        classes=model.classes,
        importance=model.info.get("importance"),
        trials=model.info.get("trials"),
        data_summary=data_summary(frame, model.schema),
        validation=model.info.get("validation", ""),
        model_info=info,
        notes=model.info.get("notes"),
        examples=examples,
        threshold=model.threshold,
    )


def _progress(progress, budget: float, metric: str):
    if callable(progress):
        return progress
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    if not progress:
        return None
    from shipml.progress import SearchProgress

    return SearchProgress(budget, metric)
