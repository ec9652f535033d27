"""Time-budgeted search over LightGBM configurations (Optuna), next to a linear baseline.

Every configuration is scored on the validation plan (out-of-fold raw scores for k-fold, the
holdout rows otherwise). The first trial is LightGBM's own defaults on the raw target, so the
search never ends below them on validation. A regression target that is positive and skewed is
then tried log-transformed with the same defaults, and the log is kept for the rest of the
search only if it beats the raw target there. Then a linear baseline, two forests, two more
fixed configurations and Optuna's TPE sampler, pruning configurations whose first folds already
lag. The search runs until its deadline (trials in flight stop at the next boosting round) and
keeps the best candidates, with their out-of-fold scores, for ensembling (see ensemble.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from shipml._lazy import n_threads
from shipml.data.split import ValidationPlan
from shipml.learners.base import Budget, TrainData
from shipml.learners.tabular import (
    LightGBMFitted,
    LinearFitted,
    LinearLearner,
    booster_raw,
    class_weighting,
    lgb_dataset,
    lgb_params,
    out_of_time,
    train_booster,
)
from shipml.scoring import better, score, worst

__all__ = ["Candidate", "SearchResult", "run_search", "refit_all_rows", "KEEP_TOP", "FAMILIES"]

log = logging.getLogger(__name__)
FAMILIES = ("linear", "forest", "lightgbm")
KEEP_TOP = 8  # candidates kept (with out-of-fold scores and models) for ensembling
_LINEAR_STRENGTHS = (0.05, 0.5, 5.0)

# Fixed first configurations: LightGBM defaults, then two that are strong on small tables.
_SEED_CONFIGS = [
    {
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_child_samples": 20,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "lambda_l1": 1e-8,
        "lambda_l2": 1e-8,
        "cat_smooth": 10.0,
        "extra_trees": False,
        "class_weight": "none",
    },
    {
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "lambda_l1": 1e-8,
        "lambda_l2": 1.0,
        "cat_smooth": 10.0,
        "extra_trees": False,
        "class_weight": "balanced",
    },
    {
        "learning_rate": 0.03,
        "num_leaves": 7,
        "min_child_samples": 30,
        "feature_fraction": 0.6,
        "bagging_fraction": 0.9,
        "lambda_l1": 1e-8,
        "lambda_l2": 5.0,
        "cat_smooth": 20.0,
        "extra_trees": True,
        "class_weight": "balanced",
    },
]


# Random forests (LightGBM's rf mode, stored as LightGBM text like any booster): different
# errors from boosting, which is what an ensemble needs; strong on small, noisy tables.
_FOREST_CONFIGS = [
    {"boosting": "rf", "num_leaves": 64, "min_child_samples": 5, "feature_fraction": 0.5,
     "bagging_fraction": 0.632, "bagging_freq": 1, "num_boost_round": 150,
     "max_cat_to_onehot": 64, "class_weight": "none"},
    {"boosting": "rf", "extra_trees": True, "num_leaves": 64, "min_child_samples": 5,
     "feature_fraction": 0.5, "bagging_fraction": 0.632, "bagging_freq": 1,
     "num_boost_round": 150, "max_cat_to_onehot": 64, "class_weight": "none"},
]  # fmt: skip


@dataclass
class Candidate:
    """A validated configuration: its score, out-of-fold raw scores and the fitted model."""

    name: str
    params: dict
    score: float
    oof: np.ndarray  # raw scores on plan.scored_rows
    fitted: object  # LightGBMFitted | LinearFitted
    seconds: float
    transform: str = "none"
    complete: bool = True  # False when the deadline cut its training short


@dataclass
class SearchResult:
    metric: str
    candidates: list[Candidate]  # best first
    trials: list[dict] = field(default_factory=list)  # history for the report

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


class _Pool:
    """The best candidates so far, ordered by score: the top `keep` boosting configurations plus
    the best two of each other family (linear, forest), so ensembling has diverse members to
    choose from even when one family fills the top of the ranking."""

    def __init__(self, metric: str, keep: int) -> None:
        self.metric, self.keep, self.items = metric, keep, []

    def add(self, cand: Candidate) -> None:
        self.items.append(cand)
        sign = -1.0 if better(self.metric, 1.0, 0.0) else 1.0
        self.items.sort(key=lambda c: sign * c.score)
        kept, per_family = [], {}
        for c in self.items:
            family = c.name.split("#")[0].split("(")[0]
            limit = self.keep if family == "lightgbm" else 2
            if per_family.get(family, 0) < limit:
                kept.append(c)
                per_family[family] = per_family.get(family, 0) + 1
        self.items = kept


def run_search(
    data: TrainData,
    plan: ValidationPlan,
    *,
    metric: str,
    budget: Budget,
    seed: int = 0,
    n_trials: int | None = None,
    progress: Callable[[dict], None] | None = None,
    lightgbm_params: dict | None = None,
    families: tuple[str, ...] = FAMILIES,
    on_candidate: Callable[[list[Candidate]], None] | None = None,
    defaults_first: bool = True,
) -> SearchResult:
    """Search until `budget` expires or `n_trials` LightGBM trials ran; return the best.
    `families` limits the model families tried (e.g. ("linear",) for a quick baseline).
    `on_candidate(best candidates)` is called after each scored candidate (the time plan
    re-estimates the steps after the search from them). `defaults_first=False` runs the
    linear baseline before LightGBM's defaults (sentence embeddings, where linear heads win)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    clock = budget.clock
    start = clock()
    pool = _Pool(metric, KEEP_TOP)
    history: list[dict] = []
    folds = _FoldData(data, plan)

    def emit(name: str, value: float | None, state: str) -> None:
        if on_candidate is not None and state != "pruned":
            on_candidate(pool.items)
        elapsed = clock() - start
        history.append(
            {
                "number": len(history),
                "name": name,
                "value": value,
                "metric": metric,
                "elapsed_s": round(elapsed, 3),
                "state": state,
            }
        )
        if progress is not None:
            best = pool.items[0].score if pool.items else None
            progress(
                {
                    "trial": len(history),
                    "name": name,
                    "value": value,
                    "best": best,
                    "elapsed_s": elapsed,
                    "state": state,
                }
            )

    def lgb(params: dict, name: str, trial=None, until: Budget = budget) -> Candidate:
        t0 = clock()
        cand = _lgb_candidate(folds, plan, metric, params, seed, until, trial, lightgbm_params)
        cand.seconds, cand.name = clock() - t0, name
        pool.add(cand)
        emit(cand.name, cand.score, "complete" if cand.complete else "cut by deadline")
        return cand

    # 1. LightGBM defaults on the raw target: the score the search must not end below. A
    # skewed positive target also tries log1p with the same defaults; the winner is the
    # target every later configuration uses.
    def defaults() -> tuple[str, int]:
        """(the target transform kept, LightGBM trials run). First, the defaults on the raw
        target always finish, every fold (as the linear baseline does): they are the floor.
        After the linear baseline (sentence embeddings) they keep to the deadline."""
        floor = Budget(np.inf, clock) if defaults_first else budget
        raw = lgb({**_SEED_CONFIGS[0], "target_transform": "none"}, "lightgbm(defaults)",
                  until=floor)  # fmt: skip
        if "log" not in _target_transforms(data) or budget.expired or n_trials == 1:
            return "none", 1
        logged = lgb({**_SEED_CONFIGS[0], "target_transform": "log"},
                     "lightgbm(defaults, log target)")  # fmt: skip
        return ("log" if logged.complete and better(metric, logged.score, raw.score)
                else "none"), 2  # fmt: skip

    def linear(transform: str) -> None:
        """A few strengths, cheap, and a useful ensemble member. Another strength only if it
        can end in time (it takes about as long as the last one)."""
        last = 0.0
        for strength in _LINEAR_STRENGTHS if "linear" in families else ():
            if budget.remaining < max(1.0, last) and pool.items:
                break
            t0 = clock()
            cand = _linear_candidate(folds, plan, metric, strength, seed, transform)
            cand.seconds = last = clock() - t0
            pool.add(cand)
            emit(cand.name, cand.score, "complete")

    # 1. LightGBM defaults on the raw target: the score the search must not end below. A
    # skewed positive target also tries log1p with the same defaults; the winner is the
    # target every later configuration uses. 2. The linear baseline (first on embeddings).
    transform, ran = "none", 0
    if not defaults_first:
        linear(transform)
    if "lightgbm" in families:
        transform, ran = defaults()
    if defaults_first:
        linear(transform)

    # 3. forests: two fixed configurations.
    for k, cfg in enumerate(_FOREST_CONFIGS if "forest" in families else ()):
        if budget.remaining < 1.0:
            break
        params = {**cfg, "target_transform": transform}
        if data.task == "multiclass":  # one tree per class per round
            params["num_boost_round"] = max(30, 300 // data.n_classes)
        lgb(params, f"forest#{k}")

    # 4. LightGBM boosting: the other fixed configurations, then TPE.
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=0)
    direction = "maximize" if better(metric, 1.0, 0.0) else "minimize"
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    for cfg in _SEED_CONFIGS[1:]:
        study.enqueue_trial({**cfg, "target_transform": transform}, skip_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial, data.task, [transform])
        return lgb(params, f"lightgbm#{trial.number}", trial).score

    def stop_at_deadline(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.PRUNED:
            emit(f"lightgbm#{trial.number}", None, "pruned")
        if budget.expired:
            study.stop()

    # No Optuna timeout: the deadline may move while the search runs (the plan re-estimates
    # what comes after it); the callback stops the study once it has passed.
    left = n_trials - ran if n_trials else None
    if "lightgbm" in families and (left or (n_trials is None and not budget.expired)):
        study.optimize(objective, n_trials=left, callbacks=[stop_at_deadline], catch=())
    if not pool.items:
        raise RuntimeError("the search finished no candidate")  # budget < one linear fit
    log.info(
        "search: %d trials in %.1fs, best %s=%.5f (%s)",
        len(history),
        clock() - start,
        metric,
        pool.items[0].score,
        pool.items[0].name,
    )
    return SearchResult(metric, pool.items, history)


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


def _suggest(trial, task: str, transforms: list[str]) -> dict:
    p = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
        "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
        # one-vs-rest splits on categories with up to this many values (LightGBM default 4);
        # many-vs-many splits overfit small tables
        "max_cat_to_onehot": trial.suggest_categorical("max_cat_to_onehot", [4, 64]),
    }
    if task != "regression":
        p["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
    p["target_transform"] = trial.suggest_categorical("target_transform", transforms)
    if p["bagging_fraction"] < 1.0:
        p["bagging_freq"] = 1
    return p


class _FoldData:
    """LightGBM datasets per (fold, weighting, target transform), built once, reused by every
    trial (binning the data is a large share of a small trial's time)."""

    def __init__(self, data: TrainData, plan: ValidationPlan) -> None:
        self.data, self.plan, self._cache = data, plan, {}

    def get(self, fold: int, weighting: str, transform: str):
        key = (fold, weighting, transform)
        if key not in self._cache:
            tr, va = self.plan.folds[fold]
            data = self.data.transformed(transform)
            train, valid = data.take(tr), data.take(va)
            wt, wv, offset = self._weights(train, valid, weighting)
            dtrain = lgb_dataset(train, wt)
            dvalid = lgb_dataset(valid, wv, reference=dtrain)
            self._cache[key] = (dtrain, dvalid, offset)
        return self._cache[key]

    @staticmethod
    def _weights(train: TrainData, valid: TrainData, weighting: str):
        wt, offset = class_weighting(train, weighting)
        wv, _ = class_weighting(valid, weighting)
        return wt, wv, offset


def _lgb_candidate(folds: _FoldData, plan, metric, params, seed, budget, trial, extra):
    import optuna

    data = folds.data
    params = dict(params)
    weighting = params.pop("class_weight", "none")
    transform = params.pop("target_transform", "none")
    oof = _empty_oof(data, len(data.y))
    pairs, offsets, fold_scores, complete, cut = [], [], [], True, False
    for i, (_, va) in enumerate(plan.folds):
        if i > 0 and budget.expired:  # each further fold costs at least one round: stop
            complete, cut = False, True
            break
        dtrain, dvalid, offset = folds.get(i, weighting, transform)
        lgb = lgb_params(data.task, data.n_classes, seed, **{**params, **(extra or {})})
        # A forest does not overfit as trees are added: no early stopping, all its trees.
        patience = None if lgb.get("boosting") == "rf" else 50
        booster, best = train_booster(lgb, dtrain, dvalid, budget, patience=patience)
        complete = complete and not out_of_time(booster)
        raw = booster_raw(booster, data.X[va], num_iteration=best, threads=n_threads())
        oof[va] = raw + (offset if data.task == "multiclass" else offset[0])
        pairs.append((booster, best))
        offsets.append(offset)
        fold_scores.append(score(metric, data.task, data.y[va], oof[va], transform))
        if len(plan.folds) > 1 and trial is not None:
            trial.report(float(np.mean(fold_scores)), i)
            if trial.should_prune():
                raise optuna.TrialPruned()
    rows = plan.scored_rows
    value = score(metric, data.task, data.y[rows], oof[rows], transform)
    if cut or not np.isfinite(value):  # folds left unscored: not a usable candidate
        value = worst(metric)
    fitted = LightGBMFitted.from_boosters(pairs, np.mean(offsets, axis=0), data.task)
    full = {
        **params,
        **(extra or {}),
        "class_weight": weighting,
        "target_transform": transform,
        "best_iterations": [b for _, b in pairs],
    }
    return Candidate("lightgbm", full, value, oof[rows], fitted, 0.0, transform, complete)


def _linear_candidate(folds: _FoldData, plan, metric, strength, seed, transform) -> Candidate:
    """Linear model scored out-of-fold, then refit on all rows (cheap) for prediction."""
    data = folds.data.transformed(transform)
    learner = LinearLearner(strength=strength, seed=seed)
    oof = _empty_oof(data, len(data.y))
    forever = Budget(np.inf)
    for tr, va in plan.folds:
        fitted = learner.fit(data.take(tr), None, forever)
        oof[va] = fitted.raw(data.X[va])
    rows = plan.scored_rows
    value = score(metric, data.task, folds.data.y[rows], oof[rows], transform)
    final: LinearFitted = learner.fit(data, None, forever)
    params = {"strength": strength, "class_weight": "balanced", "target_transform": transform}
    return Candidate(f"linear(C={strength:g})", params, value, oof[rows], final, 0.0, transform)


def _empty_oof(data: TrainData, n: int) -> np.ndarray:
    shape = (n, data.n_classes) if data.task == "multiclass" else (n,)
    return np.zeros(shape)


def refit_all_rows(cand: Candidate, data: TrainData, seed: int, budget: Budget,
                   growth: float = 1.15) -> Candidate:  # fmt: skip
    """Retrain a holdout-validated LightGBM candidate on every row, for the number of rounds
    early stopping chose (grown a little: more data supports more rounds). Returns the
    candidate unchanged if the budget cuts the refit short."""
    params = dict(cand.params)
    weighting = params.pop("class_weight", "none")
    transform = params.pop("target_transform", "none")
    rounds = max(1, int(round(params.pop("best_iterations")[0] * growth)))
    params.pop("num_boost_round", None)
    data = data.transformed(transform)
    weight, offset = class_weighting(data, weighting)
    lgb = lgb_params(data.task, data.n_classes, seed, **params, num_boost_round=rounds)
    booster, best = train_booster(lgb, lgb_dataset(data, weight), None, budget)
    if out_of_time(booster):
        return cand
    fitted = LightGBMFitted.from_boosters([(booster, best)], offset, data.task)
    return replace(cand, fitted=fitted, name=f"{cand.name}+all-rows")
