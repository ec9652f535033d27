"""`train`: a table in, a validated, explained, registered Model out, within a time budget.

The data flow (docs/architecture.md): read -> schema -> validation plan -> features (one step
per input kind: the tabular encoder; sentence embeddings for text columns) -> search over the
learner families -> ensemble selection -> refit on all rows (holdout plans) -> decision
threshold -> evaluation, importance and lineage -> publish (publish.py). The wall clock of the
whole call stays within the budget: one TimePlan (planning.py) reserves what the steps after
the search are planned to take, and the search gets what is left.

Text columns (learners/text.py): in the `embed` mode they become sentence embeddings; the search
runs on those, a TF-IDF + linear baseline runs on the same validation plan, and the better of the
two on validation becomes the model.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from shipml.data.features import Encoder
from shipml.data.io import read_table
from shipml.data.schema import TASKS, Schema, infer_schema
from shipml.data.split import ValidationPlan, plan_validation
from shipml.errors import DataError, UsageError
from shipml.learners.base import Budget, TrainData
from shipml.learners.image import MODES as IMAGE_MODES
from shipml.learners.registry import configured
from shipml.learners.registry import select as select_families
from shipml.learners.text import MODES as TEXT_MODES
from shipml.model import Member, Model, json_safe
from shipml.params import Interval, Names, Options, check_params
from shipml.planning import (
    TimePlan,
    baseline_budget,
    importance_rows,
    plan_finish,
    plan_refit,
    refit_seconds,
)
from shipml.progress import library_versions, search_reporter
from shipml.tasks import task_kind

__all__ = ["train", "prepare"]

log = logging.getLogger(__name__)
_IMPORTANCE_ROWS = 300  # rows whose contributions give the global importance (at most)
_IMPORTANCE_FIRST = 30  # rows timed first, to size the rest to the time left
# Image embeddings (thousands of standardized features): logistic regression wants a far stronger
# penalty than the tabular defaults (C 0.05-5). CIFAR-10, Lite2 embeddings (2,256 features),
# validation accuracy at C = 0.001 / 0.003 / 0.01: 0.826 / 0.826 / 0.824 on 4,000 training photos,
# 0.847 / 0.847 / 0.843 on 16,000. One strength: a fit on 40,000 photos takes minutes.
EMBEDDING_STRENGTHS = (0.002,)
_FEW_SHOT_NOTE = (
    "few-shot: a linear head on the sentence embeddings, no search among heads and no TF-IDF "
    "comparison (with so few rows per class, validation cannot tell them apart)"
)
_MAYBE_STR = [None, str]
# train()'s parameters and what each accepts, checked once before anything runs (params.py)
_CONSTRAINTS = {
    "target": [None, str],
    "name": _MAYBE_STR,
    "time_budget": [Interval(Real, 0, None, closed="neither")],
    "task": [None, Options((*TASKS, "recommend", "answer"))],
    "metric": _MAYBE_STR,
    "time_column": _MAYBE_STR,
    "group_column": _MAYBE_STR,
    "drop": [Names()],
    "kinds": [None, dict],
    "pii": [Names()],
    "keep_pii": [Names()],
    "seed": [Integral],
    "n_trials": [None, Interval(Integral, 1, None)],
    "registry_uri": _MAYBE_STR,
    "progress": [None, bool, "callable"],
    "report": [bool],
    "mode": [Options(tuple(dict.fromkeys(TEXT_MODES + IMAGE_MODES)))],
    "text_column": _MAYBE_STR,
    "image_column": _MAYBE_STR,
    "families": [None, str, list, tuple],
    "options": [None, dict],
    "user": _MAYBE_STR,
    "item": _MAYBE_STR,
    "weight": _MAYBE_STR,
    "event": _MAYBE_STR,
    "items": [None, str, Path, pd.DataFrame],
    "min_precision": [Interval(Real, 0, 1, closed="right")],
    "questions": [None, str, Path, pd.DataFrame],
    "out_of_scope": [None, str, Integral],
    "reject": [bool],
    "max_in_scope_loss": [Interval(Real, 0, 1, closed="left")],
}
_LOG_PARAMS = ("user", "item", "weight", "event", "items")  # task="recommend" only
# what a recommender does not take (a log has no feature columns)
_TABLE_PARAMS = {"group_column": None, "drop": (), "kinds": None, "pii": (), "keep_pii": (),
                 "text_column": None, "image_column": None, "options": None, "mode": "auto",
                 "out_of_scope": None, "reject": False}  # fmt: skip


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
    frame = _resolved_images(schema, frame, data)
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


def _resolved_images(schema: Schema, frame: pd.DataFrame, data) -> pd.DataFrame:
    """A table file's image paths, relative to the table's folder, made absolute."""
    from shipml.learners.image import image_columns

    columns = image_columns(schema)
    if not columns or isinstance(data, pd.DataFrame):
        return frame
    from shipml.images.sources import resolve_image_paths

    for column in columns:
        frame = resolve_image_paths(frame, column, Path(data).expanduser().parent)
    return frame


def train(
    data,
    target: str | None = None,
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
    image_column: str | None = None,
    families: str | list[str] | tuple[str, ...] | None = None,
    options: dict | None = None,
    user: str | None = None,
    item: str | None = None,
    weight: str | None = None,
    event: str | None = None,
    items=None,
    min_precision: float = 0.9,
    questions=None,
    out_of_scope=None,
    reject: bool = False,
    max_in_scope_loss: float = 0.01,
) -> Model:
    """Train the best model for `target` in `time_budget` seconds; register it under `name`.

    `data` is a file path (CSV/TSV/Parquet/Excel/JSON lines) or a DataFrame. With `name=None`
    the model is returned but not registered. `n_trials` caps the search for exact
    reproducibility (with the same `seed`); otherwise the budget decides. `pii` marks columns
    holding personal data (besides those detected by their values or header). Personal data is
    left out of the features and of every artifact (the server logs it only as keyed hashes);
    `keep_pii` names the ones to use anyway, as features of keyed hashes. `families` selects
    the learner families searched (learners/registry.py: names, "linear,lightgbm", or "-mlp"
    for all but one; default: the SHIPML_FAMILIES environment variable, else all). `options`
    pass through to a family's library: `{"lightgbm__num_leaves": 63}`.

    Text columns: `mode` is "auto" (sentence embeddings when the text extra is installed and
    they fit the budget, else TF-IDF), "embed" or "tfidf"; `encoder` is a folder or hub id of a
    sentence encoder (default: the packaged all-MiniLM-L6-v2); `text_column` marks a column as
    text when detection would not.

    `task="recommend"`: `data` is a log of user-item events and no `target` is needed; `user`,
    `item`, `time_column`, `weight` (quantity, rating, watch time) and `event` (view < cart <
    purchase) name its columns (guessed when not named); `items` is an optional item table
    (names, categories, texts); `encoder` embeds the item texts. Returns a RecModel
    (recommend/training.py's train_recommender).

    `task="answer"`: `data` is an FAQ (columns question, answer; optional id, paraphrases,
    category, url) or a folder of .md/.txt/.html pages; `min_precision` is the precision the
    hand-over threshold keeps on validation; `questions` an optional table of labelled real
    questions (question, expected_id or "none"). Returns a shipml.answer.AnswerModel.
    Out of scope ("none of these", scope.py): `out_of_scope` names the target's label of rows
    that belong to no class; the model also answers it below a confidence threshold chosen on
    validation to maximize out-of-scope recall while losing at most `max_in_scope_loss`
    in-scope accuracy. `reject=True` (no such label): answers below the confidence that rejects
    `max_in_scope_loss` of the correct validation answers are None.
    """
    check_params(_CONSTRAINTS, locals())
    if task == "recommend":
        return _train_recommender(locals())
    if task == "answer":
        return _train_answer(locals())
    if questions is not None:
        raise UsageError("questions: only for task='answer' (labelled questions of an FAQ)")
    data, target, folder_notes = _image_folder(data, target)
    _check_table_params(target, locals())
    asked, families = families, select_families(families)  # checked now, SHIPML_FAMILIES read once
    configured(families, options)  # and the pass-through options
    timing = TimePlan(time_budget)
    _import_heavy()  # counted in the budget, and before the search sets its deadline
    _check_name(name)
    table, schema, tabular, tdata, frame = prepare(  # read -> schema -> table features
        data, target, task=task, time_column=time_column, group_column=group_column,
        drop=_names(drop), kinds=_forced_kinds(kinds, text_column, image_column),
        pii=_names(pii), keep_pii=_names(keep_pii),
    )  # fmt: skip
    metric = _checked_metric(metric, schema, tdata)
    scope = _scope_request(schema, out_of_scope, reject, max_in_scope_loss)
    plan_finish(timing, len(tdata.y), len(schema.features), report and name is not None)
    images = _images(schema, frame, tdata, timing, seed, mode)  # features of the image inputs
    if images is not None:
        tabular, tdata, frame = images.encoder, images.data, images.frame
        families = _image_families(tdata, asked, families)
    choice = None if images else _text_choice(schema, frame, tdata, mode, encoder, timing)
    tuned = choice is not None and choice.tuned
    plan = _plan(schema, frame, tdata, seed, holdout=tuned)  # the validation plan
    refit_cap = plan_refit(timing, plan.kind == "holdout", tuned)
    reporter = search_reporter(progress, time_budget, metric)
    step = (schema, frame, tabular, tdata, plan)
    found = _features_and_search(step, choice, metric, timing, seed, n_trials, reporter,
                                 (families, options), refit_cap)  # fmt: skip
    oof_raw = found.ensemble.raw_oof()
    if plan.kind == "holdout":
        _refit(found.ensemble, found.data, seed, timing)
    model = _model(schema, found, plan, oof_raw, metric, seed)  # with its decision threshold
    _decide_scope(model, scope, found, plan, oof_raw)
    _describe(model, found, plan, oof_raw, timing, seed)  # evaluation, importance, history
    if images is not None:
        model.info["notes"] += folder_notes + images.notes
    _runtime(model, frame, found, plan, timing, seed)
    _lineage(model, table, found, schema, timing, (seed, n_trials, metric), (families, options))
    if name is None:
        return model
    from shipml.publish import publish

    return publish(model, name, registry=registry, registry_uri=registry_uri, frame=frame,
                   tdata=found.data, rows=plan.scored_rows, oof_raw=oof_raw, report=report,
                   timing=timing)  # fmt: skip


def _check_name(name: str | None) -> None:
    """A registry name is checked before any work (None: the model is not registered)."""
    if name is not None:
        from shipml.registry.store import check_name

        check_name(name)


def _features_and_search(step, choice, metric, timing, seed, n_trials, reporter, chosen,
                         refit_cap) -> Found:  # fmt: skip
    """The text features step (sentence embeddings when `choice` says so), then the search and
    the ensemble selection; the progress `reporter` is closed in any case.
    `step`: (schema, frame, tabular encoder, TrainData, validation plan)."""
    schema, frame, tabular, tdata, plan = step
    try:
        text = None if choice is None else _embed(schema, frame, tabular, tdata, choice, plan,
                                                  timing, seed, reporter)  # fmt: skip
        return _search(schema, tabular, tdata, text, plan, metric, timing, seed, n_trials,
                       reporter, chosen, refit_cap)  # fmt: skip
    finally:
        if hasattr(reporter, "close"):
            reporter.close()


def _decide_scope(model: Model, scope, found: Found, plan: ValidationPlan, oof_raw) -> None:
    """The out-of-scope threshold (scope.py), when `scope` asks for one."""
    if scope is not None:
        model.info["scope"] = task_kind(model.task).decide_scope(
            model, found.data.y[plan.scored_rows], oof_raw, *scope
        )


def _train_recommender(args: dict):
    """train(task="recommend"): the log's parameters to recommend/training.py."""
    given = [k for k, default in _TABLE_PARAMS.items() if args[k] not in (default, [], ())]
    if given or args["target"] is not None:
        what = ", ".join(given + (["target"] if args["target"] is not None else []))
        raise UsageError(
            f"{what}: not used by task='recommend' (a log of user-item events: name its "
            "columns with user=, item=, time_column=, weight=, event=)"
        )
    from shipml.recommend.training import train_recommender

    return train_recommender(
        args["data"], user=args["user"], item=args["item"], time=args["time_column"],
        weight=args["weight"], event=args["event"], items=args["items"], name=args["name"],
        time_budget=args["time_budget"], seed=args["seed"], families=args["families"],
        n_trials=args["n_trials"], registry=args["registry"],
        registry_uri=args["registry_uri"], metric=args["metric"] or "ndcg@10",
        progress=args["progress"], report=args["report"], encoder=args["encoder"],
    )  # fmt: skip


def _train_answer(args: dict):
    """train(task="answer"): the FAQ's parameters to answer/training.py."""
    table = [k for k, default in _TABLE_PARAMS.items() if args[k] not in (default, [], ())]
    table += [k for k in (*_LOG_PARAMS, "target") if args[k] is not None]
    if table:
        raise UsageError(f"{', '.join(table)}: not used by task='answer' (an FAQ with the "
                         "columns question and answer, or a folder of pages)")  # fmt: skip
    from shipml.answer.training import train_answer

    return train_answer(
        args["data"], name=args["name"], time_budget=args["time_budget"],
        min_precision=args["min_precision"], seed=args["seed"], questions=args["questions"],
        encoder=args["encoder"], registry=args["registry"], registry_uri=args["registry_uri"],
        report=args["report"], progress=args["progress"],
    )  # fmt: skip


def _check_table_params(target, args: dict) -> None:
    """A table needs its target; the log's parameters are for task="recommend"."""
    if target is None:
        raise UsageError("target is required: the column to predict (or task='recommend' for a "
                         "log of user-item events)")  # fmt: skip
    given = [k for k in _LOG_PARAMS if args[k] is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: only for task='recommend' (a log of user-item "
                         "events)")  # fmt: skip


def _scope_request(schema: Schema, out_of_scope, reject: bool, loss: float):
    """(the out-of-scope class value or None, max in-scope loss), or None: no scope asked."""
    from shipml.scope import check_scope_args

    check_scope_args(schema, out_of_scope, reject, loss)
    if out_of_scope is None and not reject:
        return None
    if out_of_scope is None:
        return None, float(loss)
    label = next(c for c in schema.classes if str(c) == str(out_of_scope))
    return label, float(loss)


def _names(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _checked_metric(metric: str | None, schema: Schema, tdata: TrainData) -> str:
    """The metric the search optimizes: `metric` if it suits the task, else the task's default."""
    from shipml.scoring import check_metric

    metric = metric or task_kind(schema.task).default_metric(schema.task)
    check_metric(metric, schema.task)
    if len(tdata.y) < 10:
        raise DataError(f"only {len(tdata.y)} labelled rows: shipml needs at least 10 to validate")
    return metric


def _image_folder(data, target):
    """A folder (or zip) of images with one sub-folder per label: (its table, "label", what
    reading it found: skipped files, small classes)."""
    if isinstance(data, pd.DataFrame) or not _is_image_source(Path(data).expanduser()):
        return data, target, []
    from shipml.images.sources import read_image_folder

    images = read_image_folder(Path(data).expanduser())
    return images.frame[["image", "label"]], target or "label", list(images.notes)


def _is_image_source(path: Path) -> bool:
    from shipml.images.sources import is_image_folder

    return is_image_folder(path)


def _image_families(tdata, asked, selected: tuple) -> tuple:
    """On pixels or maps, the families that read them (learners/image.py's families_on), unless
    the caller or SHIPML_FAMILIES named the families to run (leaving some out is not naming)."""
    import os

    from shipml.learners.image import families_on

    parts = [p.strip() for p in os.environ.get("SHIPML_FAMILIES", "").split(",")]
    named = asked is not None or any(p and not p.startswith("-") for p in parts)
    if tdata.images is None or named:
        return selected
    return families_on(tdata.images, selected)


def _forced_kinds(kinds, text_column, image_column) -> dict | None:
    """`kinds` with the text and image columns named by their own options."""
    named = {c: k for c, k in ((text_column, "text"), (image_column, "image")) if c is not None}
    return {**(kinds or {}), **named} if named else kinds


def _images(schema, frame, tdata, timing: TimePlan, seed: int, mode: str):
    """The image input kind's features step (None: the table has no image column)."""
    from shipml.learners.image import check_mode, embed_images, image_columns

    if not image_columns(schema):
        return None
    check_mode(mode)
    return embed_images(schema, frame, tdata, timing, seed, mode=mode)


def _text_choice(schema, frame, tdata, mode, encoder_spec, timing: TimePlan):
    """The text input kind's mode (None: tabular features only, TF-IDF for text columns)."""
    from shipml.learners.text import choose_in_plan

    return choose_in_plan(schema, frame, tdata.y, mode, encoder_spec, timing)


def _embed(schema, frame, tabular, tdata, choice, plan, timing, seed, progress):
    """The text input kind's features step: sentence embeddings (None: TF-IDF after all)."""
    from shipml.learners.text import embed_text

    return embed_text(schema, frame, tabular, tdata, choice, plan, timing, seed, progress)


@dataclass
class Found:
    """What the search step found: the chosen ensemble and the features it was trained on."""

    ensemble: object  # ensemble.Ensemble
    features: Encoder
    data: TrainData
    trials: list[dict]
    candidates: list
    notes: list[str] = field(default_factory=list)
    text: object = None  # learners.text.TextFeatures, or None
    text_verdict: str | None = None  # embeddings vs TF-IDF, when both were searched


def _search(schema, tabular, tdata, text, plan, metric, timing, seed, n_trials, reporter,
            chosen, refit_cap) -> Found:  # fmt: skip
    """Search the families on the features, select the ensemble. With sentence embeddings, a
    TF-IDF + linear baseline runs first on a share of the time, and the better one is kept.
    A handful of rows per class: cross-validation cannot pick among hundreds of heads (it
    picks the luckiest), nor tell sentence embeddings from TF-IDF: a linear head on the
    embeddings, with the class names as extra examples, is what holds up (benchmarks/text.py).
    `chosen`: (family names, pass-through options)."""
    from shipml.ensemble import select_ensemble
    from shipml.learners.text import few_shot, with_class_names
    from shipml.search import run_search

    few = text is not None and few_shot(schema, tdata.y)
    baseline = None
    if text is not None and not few:
        baseline = _tfidf_baseline(tdata, plan, metric, timing, seed, reporter, text.tuned)
    features, data = (text.encoder, text.data) if text is not None else (tabular, tdata)
    search_data, search_plan = data, plan
    if few:
        search_data, search_plan, names = with_class_names(schema, features, data, plan)
        text.notes.extend([_FEW_SHOT_NOTE] + ([names] if names else []))
    on_text = any(c.kind == "text" for c in schema.features)  # linear heads first on text
    embedded = _image_embeddings(schema, data)  # and on image embeddings, in their own strength
    result = run_search(search_data, search_plan, metric=metric, budget=timing.search_budget(),
                        seed=seed, n_trials=n_trials, progress=reporter,
                        families=("linear",) if few else chosen[0],
                        options=None if few else chosen[1],
                        on_candidate=_refit_estimate(timing, refit_cap),
                        defaults_first=not (on_text or embedded),
                        strengths=EMBEDDING_STRENGTHS if embedded else None)  # fmt: skip
    timing.mark("search_deadline", timing.deadline() - timing.started)
    timing.mark("search_end")
    ens = select_ensemble(result, data.y[plan.scored_rows], schema.task)
    found = Found(ens, features, data, result.trials, result.candidates, result.notes, text)
    return found if baseline is None else _duel(found, baseline, metric)


def _image_embeddings(schema, data) -> bool:
    """Whether the features hold a pretrained network's image embeddings (not pixels or maps,
    which their own families read)."""
    from shipml.learners.image import image_columns

    return bool(image_columns(schema)) and data.images is None


def _tfidf_baseline(tdata, plan, metric, timing, seed, reporter, tuned: bool):
    """(search result, ensemble) of the linear family on the TF-IDF features, on a share of the
    time left (half of it when the encoder was tuned first)."""
    from shipml.ensemble import select_ensemble
    from shipml.search import run_search

    budget = baseline_budget(timing, tuned)
    result = run_search(tdata, plan, metric=metric, budget=budget, seed=seed, progress=reporter,
                        families=("linear",))  # fmt: skip
    return result, select_ensemble(result, tdata.y[plan.scored_rows], tdata.task)


def _duel(found: Found, baseline, metric: str) -> Found:
    """Sentence embeddings vs the TF-IDF baseline: the better on validation is kept; both
    appear in the trials and candidates (TF-IDF's prefixed "tfidf+")."""
    from shipml.learners.text import verdict
    from shipml.scoring import better

    result, base_ens = baseline
    text = found.text
    found.text_verdict = verdict(text, found.ensemble.score, base_ens.score, metric)
    for c in result.candidates:
        c.name = f"tfidf+{c.name}"
    found.trials = [{**t, "name": "tfidf+" + t["name"]} for t in result.trials] + found.trials
    found.candidates = found.candidates + result.candidates
    if better(metric, base_ens.score, found.ensemble.score):  # TF-IDF won: keep it
        found.features, found.data, found.ensemble = text.tfidf, text.tfidf_data, base_ens
    return found


def _refit_estimate(timing: TimePlan, cap: float):
    """The search's hook: re-estimate the refit reserve from its best candidates' fit times."""
    if not cap:
        return None

    def update(candidates) -> None:
        timing.reserve("refit", refit_seconds(candidates, cap))

    return update


def _refit(ens, tdata: TrainData, seed: int, timing: TimePlan) -> None:
    """Retrain the ensemble's members on all rows, heaviest first, while the refit's share of
    the plan allows (the families that refit: a holdout left them without its rows)."""
    timing.run("refit", lambda: _refit_members(ens, tdata, seed, timing.budget("refit")))


def _refit_members(ens, tdata: TrainData, seed: int, budget: Budget) -> None:
    from shipml.learners.registry import family

    order = sorted(range(len(ens.members)), key=lambda i: -ens.weights[i])
    for i in order:
        cand = ens.members[i]
        fam = family(cand.family)
        if not fam.refits or budget.remaining < 1.3 * cand.seconds:
            continue
        ens.members[i] = fam.refit(cand, tdata, seed, budget)


def _model(schema: Schema, found: Found, plan: ValidationPlan, oof_raw, metric, seed) -> Model:
    """The Model of the chosen ensemble, with its decision threshold."""
    ens = found.ensemble
    members = [Member(c.fitted, w, c.name) for c, w in zip(ens.members, ens.weights)]
    decision = _threshold(schema, found.data.y, oof_raw, plan.scored_rows, metric, seed)
    threshold = None if decision is None else decision.threshold
    model = Model(schema, found.features, members, ens.transform, threshold)
    if decision is not None:
        model.info["threshold"] = decision.to_dict()
    return model


def _describe(model: Model, found: Found, plan, oof_raw, timing: TimePlan, seed: int) -> None:
    """Validation metrics, importance, the search's history and notes into `model.info`."""
    rows = plan.scored_rows
    metrics = task_kind(model.task).validation_metrics(model, found.data.y[rows], oof_raw)
    sample = _sample(len(found.data.X), _IMPORTANCE_ROWS, seed)
    X = found.data.X[sample]
    model.info.update(
        {
            "metrics": metrics,
            "validation": plan.description,
            "importance": timing.run("importance", lambda: _importance(model, X, timing)),
            "trials": found.trials,
            "candidates": [
                {
                    "name": c.name,
                    "score": c.score,
                    "params": json_safe(c.params),
                    "seconds": round(c.seconds, 3),
                }
                for c in found.candidates
            ],  # fmt: skip
            "notes": list(model.schema.notes) + found.notes,
        }
    )
    text = found.text
    if text is not None:
        model.info["text_features"] = found.text_verdict or f"sentence embeddings ({text.source})"
        model.info["notes"] = model.info["notes"] + text.notes
        if text.tuning:
            model.info["text_tuning"] = text.tuning


def _runtime(model: Model, frame, found: Found, plan, timing: TimePlan, seed: int) -> None:
    """A sentence encoder's runtime: PyTorch or int8 ONNX (learners/runtime.py)."""
    if not model.encoder.embeds_text:
        return
    from shipml.learners.text import pick_runtime_in_plan

    runtime = pick_runtime_in_plan(model, frame, found.data.y, plan.scored_rows, seed, timing)
    if runtime is not None:
        model.info["text_runtime"] = runtime
        model.info["notes"].append(runtime["note"])


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
    """The decision the task kind tunes on the out-of-fold predictions (tasks.py)."""
    return task_kind(schema.task).decide(schema.task, y[rows], oof_raw, metric, seed)


def _importance(model: Model, X: np.ndarray, timing: TimePlan) -> dict[str, float]:
    """Global importance on as many rows of X as the plan leaves time for. TreeSHAP over a
    large forest, once per fold, can cost seconds per hundred rows (German credit: 6.8 s for
    300), so the first rows are timed and the rest sized to what is left before the steps
    still to come (the report, the reference, the registry)."""
    first = min(len(X), _IMPORTANCE_FIRST)
    t0 = timing.clock()
    importance = model.global_importance(X[:first])
    per_row = max(timing.clock() - t0, 1e-6) / first
    n = importance_rows(timing, len(X), first, per_row)
    if n > first:
        importance = model.global_importance(X[:n])
    timing.estimates["importance_rows"] = n
    return importance


def _sample(n: int, k: int, seed: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _lineage(model, table, found: Found, schema, timing: TimePlan, settings, chosen):
    """Where the model came from: the data, the settings (`settings`: seed, n_trials, metric;
    `chosen`: the learner families selected, SHIPML_FAMILIES resolved, and the pass-through
    options), the libraries, the time plan."""
    seed, n_trials, metric = settings
    families, options = chosen
    libs = library_versions("shipml", "lightgbm", "scikit-learn", "optuna", "numpy", "pandas")
    lineage = {
        "data_source": table.source,
        "data_sha256": table.sha256,
        "rows": int(len(found.data.y)),
        "columns": len(schema.columns) + 1,
        "features": int(found.data.X.shape[1]),
        "seed": seed,
        "time_budget_s": timing.budget_s,
        "n_trials": n_trials,
        "duration_s": round(timing.elapsed(), 2),
        "python": platform.python_version(),
        "libraries": libs,
        "time_plan": timing.summary(),
        "metric": metric,
        "families": list(families),
        "options": json_safe(dict(options or {})),
    }
    if model.encoder.embeds_text:
        lineage["libraries"].update(library_versions("torch", "transformers"))
        lineage["text_encoder"] = found.text.source
    if model.encoder.image_encoder is not None:
        lineage["libraries"].update(library_versions("torch", "onnxruntime", "pillow"))
        lineage["image_encoder"] = model.encoder.image_encoder.source
    model.info["lineage"] = lineage
