"""Training a recommender: read the log -> split by time -> search the recommender families on
the validation users -> ensemble -> score the test users (refit on train + validation) -> refit
on every event -> publish.

SPINE. To be completed (issue 15): the time plan (TimePlan), lineage, notes, the report.
"""

from __future__ import annotations

import time as _time

from shipml.learners.base import Budget, RankFolds
from shipml.recommend.interactions import Interactions
from shipml.recommend.log import read_log
from shipml.recommend.model import RecMember, RecModel
from shipml.recommend.protocol import split_log

__all__ = ["train_recommender"]

_SEARCH_SHARE = 0.6


def train_recommender(data, *, user=None, item=None, time=None, weight=None, event=None,
                      items=None, name=None, time_budget: float = 60.0, seed: int = 0,
                      families=None, n_trials=None, registry=None, registry_uri=None,
                      metric: str = "ndcg@10") -> RecModel:  # fmt: skip
    from shipml.ensemble import select_ensemble
    from shipml.search import run_search

    start = _time.monotonic()
    inter, spec = read_log(data, user=user, item=item, time=time, weight=weight, event=event,
                           items=items)  # fmt: skip
    split = split_log(inter)
    folds = RankFolds(split.train, split.val, seed=seed, metric=metric)
    budget = Budget(start + _SEARCH_SHARE * time_budget)
    result = run_search(split.train, None, metric=metric, budget=budget, seed=seed,
                        n_trials=n_trials, families=families, folds=folds,
                        kind="recommend")  # fmt: skip
    ens = select_ensemble(result, split.val, "recommend")
    rest = Budget(start + time_budget)
    test = _refit(ens, split.train_val, seed, rest)
    from shipml.recommend.metrics import ranking_metrics

    scores = test.scores(split.test.history)
    metrics = ranking_metrics(scores, split.test)
    model = _refit(ens, inter, seed, rest)
    model.info.update(metrics=metrics, protocol=split.description, log=spec.to_dict(),
                      validation_score=ens.score, metric=metric,
                      trials=result.trials, notes=result.notes)  # fmt: skip
    if name is None:
        return model
    return _publish(model, name, registry, registry_uri)


def _refit(ens, events: Interactions, seed: int, budget: Budget) -> RecModel:
    from shipml.learners.popularity import item_popularity
    from shipml.learners.registry import family

    members = []
    for cand, w in zip(ens.members, ens.weights):
        fam = family(cand.family, "recommend")
        refit = fam.refit(_copy(cand), events, seed, budget)
        members.append(RecMember(refit.fitted, float(w), cand.name))
    return RecModel(members, events, item_popularity(events, 0.1))


def _copy(cand):
    from dataclasses import replace

    return replace(cand)


def _publish(model: RecModel, name: str, registry, registry_uri) -> RecModel:
    from shipml.registry.store import Registry

    reg = registry or Registry(registry_uri)
    writer = reg.writer()
    try:
        model.write(writer)
        writer.finish()
        info = reg.register(name, writer, task="recommend", metrics=model.metrics,
                            lineage={}, schema={})  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    model.info.update(name=info.name, version=info.version)
    return model
