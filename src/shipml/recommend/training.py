"""Training a recommender from a log: read -> split by time -> search the recommender families on
the validation users -> ensemble -> refit on train + validation and score the test users (the
reported metrics, next to popularity on the same split) -> refit on every event (the served
model) -> describe -> publish (files, report, registry row).

The budget is the wall clock of the whole call (one TimePlan, planning.py, on an injectable
clock): before the search, the steps after it are kept back from it — the two refits, at first
a share of the budget and then re-estimated from the search's own candidates (their measured
fit seconds), and the report and registry write from the log's size. An item table with texts
is embedded by the sentence encoder first, when the estimate fits. The refit on every event is
skipped, and said so, when the time left cannot hold it: the train + validation refit is served
(it knows every event as history, only its members did not train on the last ones).
"""

from __future__ import annotations

import logging
import platform
import secrets
import time as _time
from dataclasses import replace

import numpy as np

from shipml.learners.base import RankFolds
from shipml.planning import TimePlan
from shipml.progress import library_versions, search_reporter
from shipml.recommend.catalog import Catalog, embed_item_texts, item_texts
from shipml.recommend.interactions import Interactions
from shipml.recommend.model import RecMember, RecModel, user_key

__all__ = ["train_recommender", "pseudonymized"]

log = logging.getLogger(__name__)
_REFIT_SHARE = 0.15  # of the budget, for each refit, until the search's candidates say better
_REFIT_GROWTH = 1.3  # a refit on more events vs the candidate's measured fit
_REFIT_MEMBERS = 3  # the best candidates a refit estimate covers
_SERVE_MARGIN = 1.1  # the refit on every event vs the measured train + validation refit
_ENSEMBLE_ROUNDS = 25  # ensemble.py's greedy selection rounds
_ENSEMBLE_POOL = 12  # the candidates the search's pool keeps, at most (the families' `keep`)
_TEST_PASSES = 3.0  # the test evaluation: the model's and popularity's scores, the summary
_ENSEMBLE_SHARE = 0.1  # of the budget, for ensemble selection (else on a sample of users)
_ENSEMBLE_MIN_USERS = 200
_TEXT_SHARE = 0.3  # embedding the item texts runs when its estimate is at most this share
_TEXT_MIN_LEFT = 30.0  # seconds left for loading the sentence encoder (PyTorch) at all
_RECENT_WINDOW = 0.1  # share of the log's time span the "recent popular" fallback counts


def train_recommender(data, *, user=None, item=None, time=None, weight=None, event=None,
                      items=None, name=None, time_budget: float = 60.0, seed: int = 0,
                      families=None, n_trials=None, registry=None, registry_uri=None,
                      metric: str = "ndcg@10", split: str = "auto", progress=None,
                      report: bool = True, encoder=None, clock=None,
                      prepared=None) -> RecModel:  # fmt: skip
    """A recommender trained on the log `data` (a path or a DataFrame of user, item and
    optional time, weight, event columns; `items`: an optional item table) in `time_budget`
    seconds; registered under `name` (None: returned only). `encoder`: the sentence encoder
    of item texts (None: the packaged default when the text extra is installed; False: none).
    `clock`: the plan's clock (tests). `prepared`: (Interactions with pseudonymized users,
    log spec dict, salt, data source, sha256) — what `shipml retrain` passes."""
    from shipml.learners.registry import select

    timing = TimePlan(time_budget, clock=clock or _time.monotonic)
    chosen = select(families, "recommend")
    if name is not None:
        from shipml.registry.store import check_name

        check_name(name)
    if prepared is None:
        prepared = _read(data, user=user, item=item, time=time, weight=weight, event=event,
                         items=items)  # fmt: skip
    inter, spec, salt, source, sha = prepared
    return _train(inter, spec, salt, (source, sha), timing, seed=seed, families=chosen,
                  n_trials=n_trials, name=name, registry=registry, registry_uri=registry_uri,
                  metric=metric, split=split, progress=progress, report=report,
                  encoder=encoder)  # fmt: skip


def _read(data, **columns) -> tuple:
    """(Interactions with pseudonymized users, log spec dict, salt, source, sha256)."""
    from shipml.recommend.log import read_log

    inter, spec = read_log(data, **columns)
    salt = secrets.token_hex(8)
    source, sha = _identity(data)
    return pseudonymized(inter, salt), spec.to_dict(), salt, source, sha


def pseudonymized(inter: Interactions, salt: str) -> Interactions:
    """The same events with each user ID replaced by its salted hash (model.user_key)."""
    keys = np.array([user_key(salt, str(u)) for u in inter.users], dtype=object)
    return replace(inter, users=keys)


def _identity(data) -> tuple[str, str | None]:
    """(where the log came from, its sha256)."""
    import hashlib
    from pathlib import Path

    import pandas as pd

    if isinstance(data, pd.DataFrame):
        digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=True).values.tobytes())
        return "<DataFrame>", digest.hexdigest()
    if isinstance(data, (str, Path)) and Path(data).is_file():
        from shipml.registry.artifacts import sha256_file

        return str(data), sha256_file(Path(data))
    return str(data), None


def _train(inter, spec, salt, identity, timing: TimePlan, *, seed, families, n_trials, name,
           registry, registry_uri, metric, split, progress, report,
           encoder) -> RecModel:  # fmt: skip
    from shipml.recommend.protocol import split_log
    from shipml.scoring import check_metric

    check_metric(metric, "recommend")
    parts = split_log(inter, how=split)
    timing.reserve("finish", _finish_seconds(inter, report and name is not None))
    cap = _REFIT_SHARE * timing.budget_s
    timing.reserve("refit", cap)
    timing.reserve("serve", cap)
    notes: list[str] = []
    catalog = timing.run("text", lambda: _catalog(inter, encoder, timing, notes))
    speed = timing.run("calibrate", lambda: _scoring_seconds(parts, metric, timing))
    result, ens = _search(parts, metric, timing, seed, n_trials, families, progress, cap, speed)
    test_model, spent = _fit_test(ens, parts, seed, timing, salt, catalog)
    evaluation = timing.run("test", lambda: _score_test(test_model, parts, seed))
    model = _serve(ens, inter, parts, test_model, spent, seed, timing, salt, catalog, notes)
    _describe(model, parts, spec, result, ens, evaluation, metric, notes + result.notes)
    _lineage(model, inter, identity, timing, seed, n_trials, metric, families, split)
    if name is None:
        return model
    return _publish(model, name, parts, registry, registry_uri, report, timing)


def _scoring_seconds(parts, metric: str, timing: TimePlan) -> tuple[float, float]:
    """(seconds of one metric call on the validation users' scores, seconds of scoring them
    and that call), measured on popularity: what ensemble selection (one metric call per
    candidate and round) and the test evaluation (scoring the test users, model and
    popularity) cost here. Reserves both from them."""
    from shipml.learners.base import standardize_rows
    from shipml.learners.popularity import PopularityFitted, item_popularity
    from shipml.scoring import score

    t0 = timing.clock()
    scores = standardize_rows(PopularityFitted(item_popularity(parts.train)).scores(
        parts.val.history))  # fmt: skip
    t1 = timing.clock()
    score(metric, "recommend", parts.val, scores)
    metric_s, scoring_s = timing.clock() - t1, timing.clock() - t0
    timing.reserve(
        "ensemble", min(_ensemble_seconds(1, metric_s), _ENSEMBLE_SHARE * timing.budget_s)
    )
    ratio = len(parts.test) / max(1, len(parts.val))
    timing.reserve("test", _TEST_PASSES * ratio * scoring_s)
    return metric_s, scoring_s


def _ensemble_seconds(n_candidates: int, metric_s: float) -> float:
    """Ensemble selection: a metric call per candidate in the pool and round (ensemble.py)."""
    return _ENSEMBLE_ROUNDS * min(n_candidates, _ENSEMBLE_POOL) * metric_s


def _finish_seconds(inter: Interactions, report: bool) -> float:
    """The report and the registry write: a fixed part and a part growing with the log
    (measured: 100k events, 1.7k items, about 4 s on one core)."""
    return 0.5 + inter.n_events / 50_000 + inter.n_items / 5_000 + (2.5 if report else 0.0)


def _catalog(inter: Interactions, encoder, timing: TimePlan, notes: list[str]) -> Catalog:
    """The item table and, when it has texts, their sentence-encoder vectors (the cold-start
    answer of `similar` for items without events), when the estimate fits the budget."""
    table = inter.item_table
    texts = item_texts(table)
    if texts is None or encoder is False:
        return Catalog(inter.items, table)
    from shipml.errors import MissingDependency

    if not hasattr(encoder, "encode") and timing.left() < _TEXT_MIN_LEFT:
        notes.append(f"item texts not embedded: loading the sentence encoder needs a time "
                     f"budget of at least {_TEXT_MIN_LEFT:g}s")  # fmt: skip
        return Catalog(inter.items, table)
    try:
        from shipml.encoders import load_encoder

        enc = load_encoder(encoder) if encoder is None or isinstance(encoder, str) else encoder
    except MissingDependency as exc:
        notes.append(f"item texts not embedded (similar items for new items need them): {exc}")
        return Catalog(inter.items, table)
    need = enc.estimate_seconds(list(texts))
    timing.estimates["text"] = need
    if need > _TEXT_SHARE * max(0.0, timing.deadline("text") - timing.clock()):
        notes.append(f"item texts not embedded: about {need:.0f}s for {len(texts):,} texts "
                     f"does not fit the {timing.budget_s:g}s time budget")  # fmt: skip
        return Catalog(inter.items, table)
    vectors = embed_item_texts(texts, enc)
    source = getattr(enc, "source", None) or "sentence encoder"
    notes.append(f"item texts: {len(texts):,} embedded by {source} (similar items for items "
                 "without events)")  # fmt: skip
    return Catalog(inter.items, table, [str(i) for i in texts.index], vectors, str(source))


def _search(parts, metric, timing: TimePlan, seed, n_trials, families, progress, cap, speed):
    """The search on the validation users (RankFolds), then ensemble selection. `speed`:
    (seconds of a metric call, of scoring the validation users) — `_scoring_seconds`."""
    from shipml.search import run_search

    folds = RankFolds(parts.train, parts.val, seed=seed, metric=metric)
    reporter = search_reporter(progress, timing.budget_s, metric)

    def update(candidates) -> None:  # the reserves after the search, from measured seconds
        need = _ensemble_seconds(len(candidates), speed[0])
        timing.reserve("ensemble", min(need, _ENSEMBLE_SHARE * timing.budget_s))
        seconds = _refit_estimate(candidates, cap)
        timing.reserve("refit", seconds)
        timing.reserve("serve", seconds * _growth(parts.train_val.n_events, parts.train.n_events))

    try:
        result = run_search(parts.train, None, metric=metric, budget=timing.search_budget(),
                            seed=seed, n_trials=n_trials, progress=reporter, families=families,
                            on_candidate=update, folds=folds, kind="recommend")  # fmt: skip
    finally:
        if hasattr(reporter, "close"):
            reporter.close()
    timing.mark("search_end")
    ens = timing.run("ensemble", lambda: _select(result, parts.val, timing, speed[0], seed))
    return result, ens


def _select(result, val, timing: TimePlan, metric_s: float, seed: int):
    """Ensemble selection (ensemble.py) on the validation users, or on a sample of them sized
    to its share of the budget when all of them would take longer."""
    from shipml.ensemble import select_ensemble
    from shipml.recommend.interactions import RankTargets

    need = _ensemble_seconds(len(result.candidates), metric_s)
    allowed = _ENSEMBLE_SHARE * timing.budget_s
    n = len(val)
    if need <= allowed or n <= _ENSEMBLE_MIN_USERS:
        return select_ensemble(result, val, "recommend")
    m = max(_ENSEMBLE_MIN_USERS, int(n * allowed / need))
    rows = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    sample = replace(result, candidates=[replace(c, oof=c.oof[rows]) for c in result.candidates])
    result.notes.append(f"ensemble weights chosen on {m:,} of the {n:,} validation users "
                        f"(all of them: about {need:.0f}s of the {timing.budget_s:g}s "
                        "budget)")  # fmt: skip
    return select_ensemble(sample, RankTargets(val.history.take(rows), val.target[rows]),
                           "recommend")  # fmt: skip


def _refit_estimate(candidates, cap: float) -> float:
    from shipml.learners.registry import RECOMMENDERS

    fits = [c.seconds for c in candidates
            if c.family in RECOMMENDERS and RECOMMENDERS[c.family].refits]  # fmt: skip
    return min(cap, _REFIT_GROWTH * sum(sorted(fits, reverse=True)[:_REFIT_MEMBERS]))


def _growth(n_more: int, n_less: int) -> float:
    return max(1.0, n_more / max(1, n_less))


def _fit_test(ens, parts, seed, timing: TimePlan, salt, catalog) -> tuple[RecModel, float]:
    """The ensemble refit on train + validation (what the test users are scored with), and
    the seconds its refit took."""
    t0 = timing.clock()
    members = timing.run("refit", lambda: _refit(ens, parts.train_val, seed, timing, "refit"))
    spent = timing.clock() - t0
    return _model(members, parts.train_val, salt, catalog), spent


def _refit(ens, events: Interactions, seed: int, timing: TimePlan, step: str) -> list:
    from shipml.learners.registry import family

    budget = timing.budget(step)
    members = []
    for cand, w in zip(ens.members, ens.weights):
        fam = family(cand.family, "recommend")
        refit = fam.refit(replace(cand), events, seed, budget) if fam.refits else cand
        members.append(RecMember(refit.fitted, float(w), cand.name))
    return members


def _model(members, events: Interactions, salt, catalog: Catalog) -> RecModel:
    from shipml.learners.popularity import item_popularity

    popular = item_popularity(events, _RECENT_WINDOW)
    return RecModel(members, events, popular, {}, catalog, salt)


def _score_test(model: RecModel, parts, seed: int) -> dict:
    """The evaluation summary of the test users (full ranking, next to popularity fitted on
    the same train + validation events)."""
    return evaluation_summary(model.scores, parts.test, parts.train_val, seed=seed)


def evaluation_summary(scorer, targets, train: Interactions, *, ks=(5, 10, 20),
                       seed: int = 0) -> dict:  # fmt: skip
    """recommend/evaluation.py's summary of `scorer` on `targets` (`train`: the events it
    learned from; the popularity baseline counts them); without that module, the full-ranking
    metrics of the model and of popularity in the same shape."""
    try:
        from shipml.recommend.evaluation import evaluate_ranking
    except ImportError:
        from shipml.learners.popularity import PopularityFitted, item_popularity
        from shipml.recommend.metrics import ranking_metrics

        pop = PopularityFitted(item_popularity(train))
        h = targets.history
        return {"users": len(targets),
                "model": {"full": ranking_metrics(scorer(h), targets, ks=ks)},
                "popularity": {"full": ranking_metrics(pop.scores(h), targets, ks=ks)}}  # fmt: skip
    return evaluate_ranking(scorer, targets, train, ks=ks, seed=seed)


def _serve(ens, inter, parts, test_model: RecModel, spent: float, seed, timing: TimePlan,
           salt, catalog, notes: list[str]) -> RecModel:  # fmt: skip
    """The served model: refit on every event, or — when the time left cannot hold that
    refit (estimated from the one just done) — the train + validation refit, given every
    event as history."""
    need = _SERVE_MARGIN * spent * _growth(inter.n_events, parts.train_val.n_events)
    timing.reserve("serve", need)
    if timing.fits("serve", need):
        members = timing.run("serve", lambda: _refit(ens, inter, seed, timing, "serve"))
        return _model(members, inter, salt, catalog)
    left = max(0.0, timing.deadline("serve") - timing.clock())
    why = (f"not refit on every event: about {need:.1f}s, {left:.1f}s left of the "
           f"{timing.budget_s:g}s time budget; serving the model trained on all but each "
           "user's last event (a larger --time-budget refits it)")  # fmt: skip
    timing.skip("serve", why)
    notes.append(timing.skipped["serve"])
    return _model(test_model.members, inter, salt, catalog)


def _describe(model: RecModel, parts, spec: dict, result, ens, evaluation: dict, metric: str,
              notes: list[str]) -> None:  # fmt: skip
    from shipml.model import json_safe

    metrics = dict(evaluation["model"]["full"], primary=metric)
    model.info.update(
        metrics=metrics,
        baselines={"popular": evaluation["popularity"]["full"]},
        evaluation=evaluation,
        metric=metric,
        protocol=parts.description,
        split=parts.kind,
        log=spec,
        validation_score=ens.score,
        ensemble=[
            {"name": c.name, "family": c.family, "weight": float(w)}
            for c, w in zip(ens.members, ens.weights)
        ],  # fmt: skip
        trials=result.trials,
        candidates=[
            {
                "name": c.name,
                "family": c.family,
                "score": c.score,
                "params": json_safe(c.params),
                "seconds": round(c.seconds, 3),
            }
            for c in result.candidates
        ],  # fmt: skip
        notes=list(dict.fromkeys([*spec.get("notes", []), *notes])),
    )


def _lineage(model: RecModel, inter, identity, timing: TimePlan, seed, n_trials, metric,
             families, split) -> None:  # fmt: skip
    source, sha = identity
    libs = library_versions("shipml", "numpy", "scipy", "pandas", "optuna")
    used = {m.get("family") for m in model.info.get("ensemble", [])}
    if used & {"als", "bpr"}:
        libs.update(library_versions("implicit"))
    if "sasrec" in used or model.catalog.text_vectors is not None:
        libs.update(library_versions("torch", "transformers"))
    model.info["lineage"] = {
        "data_source": source,
        "data_sha256": sha,
        "rows": int(inter.n_events),
        "users": int(inter.n_users),
        "items": int(inter.n_items),
        "seed": seed,
        "time_budget_s": timing.budget_s,
        "n_trials": n_trials,
        "families": list(families),
        "split": split,
        "duration_s": round(timing.elapsed(), 2),
        "python": platform.python_version(),
        "libraries": libs,
        "time_plan": timing.summary(),
        "metric": metric,
    }


def _schema(spec: dict) -> dict:
    """What the registry row records of the log's columns (`shipml models show`)."""
    roles = ("user", "item", "time", "weight", "event")
    columns = [{"name": spec[r], "kind": r, "note": f"the log's {r} column"}
               for r in roles if spec.get(r)]  # fmt: skip
    return {"task": "recommend", "target": None, "columns": columns, "log": spec}


def _publish(model: RecModel, name: str, parts, registry, registry_uri, report: bool,
             timing: TimePlan) -> RecModel:  # fmt: skip
    """Store the model's files and report, then the registry row (nothing is visible before
    every file is written)."""
    from shipml.registry.store import Registry

    reg = registry or Registry(registry_uri)
    writer = reg.writer()
    try:
        model.info["lineage"]["duration_s"] = round(timing.elapsed(), 2)
        model.write(writer)
        wrote = report and timing.run("report", lambda: _report(model, name, writer, parts))
        timing.run("finish", writer.finish)
        model.info["lineage"]["time_plan"] = timing.summary()
        info = reg.register(name, writer, task="recommend", metrics=model.metrics,
                            lineage=model.info["lineage"],
                            schema=_schema(model.info["log"]))  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    model.info.update(name=info.name, version=info.version)
    if wrote:
        model.info["report_path"] = str(info.artifact_dir / "report.html")
    log.info("registered %s (%.1fs)", info.ref, timing.elapsed())
    return model


def _report(model: RecModel, name: str, writer, parts) -> bool:
    """The training report (recommend/report.py), when that module is installed."""
    try:
        from shipml.recommend.report import write_report
    except ImportError:
        return False
    info = {k: v for k, v in model.describe().items() if v is not None}
    info.update(name=name, trials=model.info.get("trials"),
                candidates=model.info.get("candidates"))  # fmt: skip
    counts = getattr(parts, "counts", None)
    protocol = {"description": parts.description, "counts": counts} if counts else parts.description
    write_report(writer.dir / "report.html", title=f"{name} — training report",
                 summary=model.info["evaluation"], protocol=protocol, model_info=info,
                 notes=model.info.get("notes"), item_names=model.catalog.names())  # fmt: skip
    writer.files.append("report.html")
    return True
