"""Time-budgeted search over the learner families of learners/registry.py (Optuna).

Every configuration is scored on the shared validation folds (out-of-fold raw scores for
k-fold, the holdout rows otherwise). The order is the families' declarations, not their names:

1. the floor: the first configuration of the family marked `floor` (LightGBM's defaults) on the
   raw target, so the search never ends below it on validation. A regression target that is
   positive and skewed is then tried log-transformed with the same configuration, and the log
   is kept for the rest of the search only if it beats the raw target there;
2. the `baseline` families' fixed configurations (linear; before the floor with
   `defaults_first=False`: on sentence embeddings linear heads win);
3. the other families' fixed configurations (forests), while there is time for one;
4. the `searched` families: their other fixed configurations, then Optuna's TPE sampler over
   their search spaces, pruning configurations whose first folds already lag.

The search runs until its deadline (trials in flight stop at the next boosting round) and keeps
the best candidates of each family, with their out-of-fold scores, for ensembling
(ensemble.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shipml.data.split import ValidationPlan
from shipml.learners.base import Budget, Candidate, Config, Family, Folds, TrainData
from shipml.learners.registry import configured, select
from shipml.scoring import better

__all__ = ["Candidate", "SearchResult", "run_search"]

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    metric: str
    candidates: list[Candidate]  # best first
    trials: list[dict] = field(default_factory=list)  # history for the report
    notes: list[str] = field(default_factory=list)  # families skipped, and why

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


class _Pool:
    """The best candidates so far, ordered by score, at most `keep[family]` of each family (the
    searched family's top configurations plus the best two of each other), so ensembling has
    diverse members to choose from even when one family fills the top of the ranking."""

    def __init__(self, metric: str, keep: dict[str, int]) -> None:
        self.metric, self.keep, self.items = metric, keep, []

    def add(self, cand: Candidate) -> None:
        self.items.append(cand)
        sign = -1.0 if better(self.metric, 1.0, 0.0) else 1.0
        self.items.sort(key=lambda c: sign * c.score)
        kept, per_family = [], {}
        for c in self.items:
            if per_family.get(c.family, 0) < self.keep.get(c.family, 2):
                kept.append(c)
                per_family[c.family] = per_family.get(c.family, 0) + 1
        self.items = kept


class _Recorder:
    """The trial history, the progress callback and the time plan's hook."""

    def __init__(self, metric, pool, clock, progress, on_candidate) -> None:
        self.metric, self.pool, self.clock = metric, pool, clock
        self.progress, self.on_candidate = progress, on_candidate
        self.start, self.history = clock(), []

    def __call__(self, name: str, value: float | None, state: str) -> None:
        if self.on_candidate is not None and state != "pruned":
            self.on_candidate(self.pool.items)
        elapsed = self.clock() - self.start
        self.history.append({"number": len(self.history), "name": name, "value": value,
                             "metric": self.metric, "elapsed_s": round(elapsed, 3),
                             "state": state})  # fmt: skip
        if self.progress is not None:
            best = self.pool.items[0].score if self.pool.items else None
            self.progress({"trial": len(self.history), "name": name, "value": value,
                           "best": best, "elapsed_s": elapsed, "state": state})  # fmt: skip


def run_search(
    data: TrainData,
    plan: ValidationPlan,
    *,
    metric: str,
    budget: Budget,
    seed: int = 0,
    n_trials: int | None = None,
    progress: Callable[[dict], None] | None = None,
    families=None,
    on_candidate: Callable[[list[Candidate]], None] | None = None,
    defaults_first: bool = True,
    options: dict | None = None,
    folds=None,
    kind: str = "supervised",
    strengths: tuple[float, ...] | None = None,
) -> SearchResult:
    """Search until `budget` expires or `n_trials` trials of the floor and searched families
    ran; return the best. `families` selects the families tried (registry.select: names, "a,b"
    or "-a"; default SHIPML_FAMILIES or all). `on_candidate(best candidates)` is called after
    each scored candidate (the time plan re-estimates the steps after the search from them).
    `defaults_first=False` runs the baseline families before the floor. `options` pass
    through to a family's library (`{"lightgbm__num_leaves": 63}`, registry.configured).
    Another task kind passes its own `folds` (learners/base.py's RankFolds for `recommend`)
    and `kind`: its families (registry.KINDS) fit and are scored on those. `strengths`: the
    fixed strengths (C values) of every family that declares them (today the linear one), in
    place of its own, for features its defaults do not suit."""
    from dataclasses import replace

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = configured(select(families, kind), options, kind)
    if strengths:
        chosen = [replace(f, strengths=tuple(strengths)) if hasattr(f, "strengths") else f
                  for f in chosen]  # fmt: skip
    usable, notes = _usable(chosen)
    pool = _Pool(metric, {f.name: f.keep for f in usable})
    emit = _Recorder(metric, pool, budget.clock, progress, on_candidate)
    folds = folds if folds is not None else Folds(data, plan, seed=seed, metric=metric)

    def fit(fam: Family, config: Config, trial=None, until: Budget = budget) -> Candidate:
        t0 = budget.clock()
        cand = fam.fit(folds, config, until, trial)
        cand.seconds, cand.name, cand.family = budget.clock() - t0, config.name, fam.name
        pool.add(cand)
        emit(cand.name, cand.score, "complete" if cand.complete else "cut by deadline")
        return cand

    floor = next((f for f in usable if f.floor), None)
    baselines = [f for f in usable if f.baseline and f is not floor]
    others = [f for f in usable if not (f.baseline or f.searched or f is floor)]
    if floor is not None and not floor.searched:
        others.insert(0, floor)  # its other fixed configurations (the first ran as the floor)
    transform, ran = "none", 0
    if not defaults_first:
        _fixed(baselines, data, transform, fit, budget, pool)
    if floor is not None:
        transform, ran = _floor(floor, data, fit, budget, metric, n_trials, defaults_first)
    if defaults_first:
        _fixed(baselines, data, transform, fit, budget, pool)
    _fixed(others, data, transform, fit, budget, pool)
    searched = [f for f in usable if f.searched]
    left = n_trials - ran if n_trials else None
    if searched and (left or (n_trials is None and not budget.expired)):
        _study(searched, floor, data, transform, fit, emit, budget, seed, metric, left)
    if not pool.items:
        raise RuntimeError("the search finished no candidate")  # budget < one linear fit
    best = pool.items[0]
    seconds = budget.clock() - emit.start
    log.info("search: %d trials in %.1fs, best %s=%.5f (%s)", len(emit.history), seconds,
             metric, best.score, best.name)  # fmt: skip
    return SearchResult(metric, pool.items, emit.history, notes)


def _usable(families: list[Family]) -> tuple[list[Family], list[str]]:
    """The selected families that can run here, and a note for each that cannot."""
    usable, notes = [], []
    for fam in families:
        why = fam.available()
        if why is None:
            usable.append(fam)
        else:
            notes.append(f"learner family {fam.name} skipped: {why}")
    return usable, notes


def _floor(fam, data, fit, budget, metric, n_trials, defaults_first) -> tuple[str, int]:
    """(the target transform kept, trials run). The floor's first configuration on the raw
    target always finishes, every fold (as the linear baseline does); after the baselines
    (defaults_first=False) it keeps to the deadline. A skewed positive target also tries log1p
    with the same configuration; the winner is the target every later configuration uses."""
    first = fam.configs(data)[0]
    until = Budget(np.inf, budget.clock) if defaults_first else budget
    raw = fit(fam, Config(first.name, {**first.params, "target_transform": "none"}), until=until)
    if "log" not in _target_transforms(data) or budget.expired or n_trials == 1:
        return "none", 1
    name = f"{first.name[:-1]}, log target)" if first.name.endswith(")") else f"{first.name} (log)"
    logged = fit(fam, Config(name, {**first.params, "target_transform": "log"}))
    keep = logged.complete and better(metric, logged.score, raw.score)
    return ("log" if keep else "none"), 2


def _fixed(families, data, transform, fit, budget, pool) -> None:
    """Each family's fixed configurations in order, while there is room (`_room`)."""
    for fam in families:
        last = 0.0
        for config in fam.configs(data)[1 if fam.floor else 0 :]:
            if not _room(fam, budget, last, pool):
                break
            cand = fit(fam, Config(config.name, {**config.params, "target_transform": transform}))
            last = cand.seconds


def _room(fam: Family, budget: Budget, last: float, pool: _Pool) -> bool:
    """A fit that stops at the deadline starts with a second left; one that does not (linear)
    only if it can end in time (it takes about as long as the family's last one), or when
    nothing is scored yet."""
    if fam.stops_at_deadline:
        return budget.remaining >= 1.0
    return budget.remaining >= max(1.0, last) or not pool.items


def _study(families, floor, data, transform, fit, emit, budget, seed, metric, left) -> None:
    """Optuna's TPE over the searched families' spaces (a "family" choice first when there are
    several), after their fixed configurations (the floor's first one already ran)."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=0)
    direction = "maximize" if better(metric, 1.0, 0.0) else "minimize"
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    by_name = {f.name: f for f in families}
    several = len(families) > 1
    for fam in families:
        for cfg in fam.configs(data)[1 if fam is floor else 0 :]:
            tag = {"family": fam.name} if several else {}
            study.enqueue_trial({**tag, **cfg.params, "target_transform": transform},
                                skip_if_exists=True)  # fmt: skip

    def chosen(trial) -> Family:
        if not several:
            return families[0]
        return by_name[trial.suggest_categorical("family", list(by_name))]

    def objective(trial: optuna.Trial) -> float:
        fam = chosen(trial)
        params = fam.suggest(trial, data.task, [transform])
        return fit(fam, Config(f"{fam.name}#{trial.number}", params), trial).score

    def stop_at_deadline(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.PRUNED:
            name = trial.params.get("family", families[0].name)
            emit(f"{name}#{trial.number}", None, "pruned")
        if budget.expired:
            study.stop()

    # No Optuna timeout: the deadline may move while the search runs (the plan re-estimates
    # what comes after it); the callback stops the study once it has passed.
    study.optimize(objective, n_trials=left, callbacks=[stop_at_deadline], catch=())


def _target_transforms(data: TrainData) -> list[str]:
    """Regression on a positive, right-skewed target (prices, amounts) also tries log1p."""
    if data.task != "regression":
        return ["none"]
    y = data.y
    if np.min(y) > 0:
        skew = float(np.mean(((y - y.mean()) / (y.std() + 1e-12)) ** 3))
        if skew > 0.75:
            return ["none", "log"]
    return ["none"]
