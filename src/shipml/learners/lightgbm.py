"""LightGBM: gradient-boosted trees (the workhorse, with a search space) and random forests
(LightGBM's rf mode: different errors from boosting, which is what an ensemble needs; strong
on small, noisy tables). Both families fit on the shared folds with binned datasets built once
per (fold, weighting, target transform), stop at the deadline between boosting rounds, and
store their boosters as LightGBM text (trimmed to the best iteration).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from shipml._lazy import lightgbm, n_threads
from shipml.learners.base import (
    Budget,
    Candidate,
    Config,
    Folds,
    TrainData,
    balanced_weights,
    empty_oof,
    prior_offset,
    report_fold,
)

__all__ = [
    "BOOSTING",
    "FOREST",
    "LightGBMFamily",
    "LightGBMFitted",
    "lgb_params",
    "lgb_dataset",
    "train_booster",
    "out_of_time",
    "class_weighting",
    "booster_raw",
]

MAX_ROUNDS = 5000
_SMALL_BATCH = 2000  # below this many rows, one prediction thread is faster than two


def lgb_params(task: str, n_classes: int, seed: int, **overrides: object) -> dict:
    """LightGBM parameters for the task; `overrides` pass straight through to LightGBM."""
    objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[task]
    params: dict = {
        "objective": objective,
        "verbosity": -1,
        "seed": seed,
        "num_threads": n_threads(),
        "force_col_wise": True,
        "feature_pre_filter": False,
    }
    if task == "multiclass":
        params["num_class"] = n_classes
    params.update(overrides)
    return params


def lgb_dataset(data: TrainData, weight: np.ndarray | None, reference=None):
    lgb = lightgbm()
    return lgb.Dataset(
        data.X,
        label=data.y,
        weight=weight,
        categorical_feature=data.categorical or "auto",
        params={"verbosity": -1, "feature_pre_filter": False},
        reference=reference,
        free_raw_data=False,
    )


def train_booster(params: dict, dtrain, dvalid, budget: Budget, *, patience: int | None = 50):
    """Train with early stopping on `dvalid` (if given and `patience` is not None) and stop at
    the budget's deadline.

    Returns (booster, best_iteration). LightGBM keeps the best iteration when stopped early.
    """
    lgb = lightgbm()
    callbacks = [_deadline(budget)]
    valid_sets = []
    if dvalid is not None and patience is not None:
        callbacks.append(lgb.early_stopping(patience, first_metric_only=True, verbose=False))
        valid_sets = [dvalid]
    params = dict(params)
    rounds = int(params.pop("num_boost_round", MAX_ROUNDS if dvalid is not None else 100))
    booster = lgb.train(
        params, dtrain, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks
    )
    best = booster.best_iteration or booster.current_iteration()
    return booster, max(1, int(best))


def booster_raw(booster, X: np.ndarray, *, num_iteration: int | None = None,
                threads: int = 1, contrib: bool = False) -> np.ndarray:  # fmt: skip
    """Raw scores (or contributions) of one booster. LightGBM's random-forest mode averages its
    trees for probabilities but returns their *sum* as the raw score: divide it back, so every
    booster speaks log-odds and averages with the others."""
    out = booster.predict(X, num_iteration=num_iteration, raw_score=not contrib,
                          pred_contrib=contrib, num_threads=threads,
                          validate_features=False)  # fmt: skip
    if _is_forest(booster):
        out = out / (num_iteration or booster.current_iteration())
    return out


def _is_forest(booster) -> bool:
    flag = getattr(booster, "_shipml_forest", None)
    if flag is None:
        flag = booster.params.get("boosting") == "rf" if booster.params else None
        if flag is None:  # loaded from text: the model header says so
            flag = "\naverage_output\n" in booster.model_to_string(num_iteration=1)
        booster._shipml_forest = flag
    return flag


def _deadline(budget: Budget):
    """Stop boosting once `budget` expires (read every round: a planned deadline may move)."""
    lgb = lightgbm()

    def callback(env) -> None:
        if budget.expired and env.iteration > 0:
            env.model._shipml_out_of_time = True
            best = env.evaluation_result_list or []
            raise lgb.callback.EarlyStopException(env.iteration, best)

    callback.order = 40  # after early stopping's bookkeeping
    return callback


def out_of_time(booster) -> bool:
    """Did `train_booster` stop this booster at the deadline rather than by early stopping?"""
    return bool(getattr(booster, "_shipml_out_of_time", False))


def class_weighting(data: TrainData, mode: str | None) -> tuple[np.ndarray | None, np.ndarray]:
    """Row weights for `mode` ("balanced" or None) and the raw-score offset that undoes them."""
    if data.task == "regression" or mode != "balanced":
        zero = np.zeros(1 if data.task != "multiclass" else data.n_classes)
        return data.weight, zero
    weight = balanced_weights(data.y, data.n_classes)
    if data.weight is not None:
        weight = weight * data.weight
    return weight, prior_offset(data.y, data.n_classes)


@dataclass
class LightGBMFitted:
    """One or more boosters (e.g. one per CV fold) averaged in raw-score space."""

    models: list[str]  # LightGBM text models, trimmed to their best iteration
    offset: np.ndarray  # raw-score shift that undoes class weighting (zeros if none)
    task: str
    kind: str = "lightgbm"
    _boosters: list = field(default_factory=list, repr=False)

    @classmethod
    def from_boosters(cls, pairs, offset: np.ndarray, task: str) -> LightGBMFitted:
        models = [b.model_to_string(num_iteration=best) for b, best in pairs]
        return cls(models, np.asarray(offset, dtype=np.float64), task)

    @property
    def boosters(self) -> list:
        if not self._boosters:
            lgb = lightgbm()
            self._boosters = [lgb.Booster(model_str=m) for m in self.models]
        return self._boosters

    def raw(self, X: np.ndarray) -> np.ndarray:
        threads = 1 if len(X) < _SMALL_BATCH else n_threads()
        total = None
        for booster in self.boosters:
            out = booster_raw(booster, X, threads=threads)
            total = out if total is None else total + out
        raw = total / len(self.boosters)
        return raw + (self.offset if self.task == "multiclass" else self.offset[0])

    def contributions(self, X: np.ndarray) -> np.ndarray:
        threads = 1 if len(X) < _SMALL_BATCH else n_threads()
        total = None
        for booster in self.boosters:
            out = booster_raw(booster, X, threads=threads, contrib=True)
            total = out if total is None else total + out
        contrib = total / len(self.boosters)
        if self.task == "multiclass":
            contrib = contrib.reshape(len(X), -1, X.shape[1] + 1)
            contrib[:, :, -1] += self.offset
        else:
            contrib[:, -1] += self.offset[0]
        return contrib

    def importance(self) -> np.ndarray:
        """Total gain per encoded feature, averaged over boosters."""
        gains = [b.feature_importance(importance_type="gain") for b in self.boosters]
        return np.mean(gains, axis=0)

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        files = {f"{prefix}_{i}.txt": m for i, m in enumerate(self.models)}
        meta = {"kind": self.kind, "files": sorted(files), "offset": self.offset.tolist()}
        return meta, files

    @classmethod
    def load(cls, meta: dict, read_lightgbm, task: str) -> LightGBMFitted:
        """`read_lightgbm(name)` -> (model text, Booster): ArtifactReader.read_lightgbm, which
        checks the text before LightGBM parses it."""
        pairs = [read_lightgbm(name) for name in meta["files"]]
        offset = np.asarray(meta["offset"], dtype=np.float64)
        return cls([text for text, _ in pairs], offset, task, _boosters=[b for _, b in pairs])


# Boosting's fixed first configurations: LightGBM defaults, then two strong on small tables.
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


# Random forests: LightGBM's rf mode, stored as LightGBM text like any booster.
_FOREST_CONFIGS = [
    {"boosting": "rf", "num_leaves": 64, "min_child_samples": 5, "feature_fraction": 0.5,
     "bagging_fraction": 0.632, "bagging_freq": 1, "num_boost_round": 150,
     "max_cat_to_onehot": 64, "class_weight": "none"},
    {"boosting": "rf", "extra_trees": True, "num_leaves": 64, "min_child_samples": 5,
     "feature_fraction": 0.5, "bagging_fraction": 0.632, "bagging_freq": 1,
     "num_boost_round": 150, "max_cat_to_onehot": 64, "class_weight": "none"},
]  # fmt: skip


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


# -- the families ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LightGBMFamily:
    """Boosting (`searched`: TPE over `_suggest`'s space after the fixed configurations) or
    forests (`boosting="rf"`: fixed configurations only). `options` pass straight through to
    LightGBM for every configuration (`lightgbm__num_leaves=63` -> {"num_leaves": 63})."""

    name: str
    fixed: tuple[dict, ...]
    searched: bool
    floor: bool = False
    keep: int = 2
    baseline: bool = False
    refits: bool = True
    stops_at_deadline: bool = True  # between boosting rounds
    kind: str = "lightgbm"
    options: dict = field(default_factory=dict, compare=False)

    def available(self) -> str | None:
        return None  # a core dependency

    def configs(self, data: TrainData) -> list[Config]:
        if self.searched:  # the first is the defaults: the search's floor
            names = [f"{self.name}(defaults)"] + [f"{self.name}#?"] * (len(self.fixed) - 1)
            return [Config(n, dict(p)) for n, p in zip(names, self.fixed)]
        out = []
        for k, cfg in enumerate(self.fixed):
            params = dict(cfg)
            if data.task == "multiclass" and "num_boost_round" in params:  # a tree per class
                params["num_boost_round"] = max(30, 300 // data.n_classes)
            out.append(Config(f"{self.name}#{k}", params))
        return out

    def suggest(self, trial, task: str, transforms: list[str]) -> dict | None:
        return _suggest(trial, task, transforms) if self.searched else None

    def fit(self, folds: Folds, config: Config, budget: Budget, trial=None) -> Candidate:
        return _fit_on_folds(folds, config.params, budget, trial, self.options, self.name)

    def refit(self, cand: Candidate, data: TrainData, seed: int, budget: Budget) -> Candidate:
        return refit_all_rows(cand, data, seed, budget)

    def load(self, meta: dict, reader, task: str) -> LightGBMFitted:
        return LightGBMFitted.load(meta, reader.read_lightgbm, task)


def _fold_datasets(folds: Folds, fold: int, weighting: str, transform: str):
    """LightGBM datasets of one fold, built once per search and reused by every trial."""

    def build():
        tr, va = folds.plan.folds[fold]
        data = folds.data.transformed(transform)
        train, valid = data.take(tr), data.take(va)
        wt, offset = class_weighting(train, weighting)
        wv, _ = class_weighting(valid, weighting)
        dtrain = lgb_dataset(train, wt)
        return dtrain, lgb_dataset(valid, wv, reference=dtrain), offset

    return folds.cached(("lightgbm", fold, weighting, transform), build)


def _fit_on_folds(folds: Folds, params, budget, trial, options, family: str) -> Candidate:
    from shipml.scoring import score

    data, plan, metric = folds.data, folds.plan, folds.metric
    params = dict(params)
    weighting = params.pop("class_weight", "none")
    transform = params.pop("target_transform", "none")
    oof = empty_oof(data, len(data.y))
    pairs, offsets, fold_scores, complete, cut = [], [], [], True, False
    for i, (_, va) in enumerate(plan.folds):
        if i > 0 and budget.expired:  # each further fold costs at least one round: stop
            complete, cut = False, True
            break
        dtrain, dvalid, offset = _fold_datasets(folds, i, weighting, transform)
        lgb = lgb_params(data.task, data.n_classes, folds.seed, **{**params, **options})
        # A forest does not overfit as trees are added: no early stopping, all its trees.
        patience = None if lgb.get("boosting") == "rf" else 50
        booster, best = train_booster(lgb, dtrain, dvalid, budget, patience=patience)
        complete = complete and not out_of_time(booster)
        raw = booster_raw(booster, data.X[va], num_iteration=best, threads=n_threads())
        oof[va] = raw + (offset if data.task == "multiclass" else offset[0])
        pairs.append((booster, best))
        offsets.append(offset)
        fold_scores.append(score(metric, data.task, data.y[va], oof[va], transform))
        report_fold(trial, fold_scores, i, len(plan.folds))
    fitted = LightGBMFitted.from_boosters(pairs, np.mean(offsets, axis=0), data.task)
    full = {**params, **options, "class_weight": weighting, "target_transform": transform,
            "best_iterations": [b for _, b in pairs]}  # fmt: skip
    # folds left unscored (cut): not a usable candidate
    return folds.candidate(family, full, oof, fitted, transform=transform, complete=complete,
                           scored=not cut)  # fmt: skip


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


BOOSTING = LightGBMFamily("lightgbm", tuple(_SEED_CONFIGS), searched=True, floor=True, keep=8)
FOREST = LightGBMFamily("forest", tuple(_FOREST_CONFIGS), searched=False)
