"""Tabular learners: LightGBM (the workhorse) and a regularized linear model (the fast,
explainable baseline). Both read the Encoder's float matrix; both save as data only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from shipml._lazy import lightgbm, n_threads
from shipml.learners.base import Budget, TrainData, balanced_weights, prior_offset

__all__ = [
    "LightGBMLearner",
    "LightGBMFitted",
    "LinearLearner",
    "LinearFitted",
    "lgb_params",
    "train_booster",
    "out_of_time",
    "class_weighting",
    "booster_raw",
]

MAX_ROUNDS = 5000
_SMALL_BATCH = 2000  # below this many rows, one prediction thread is faster than two


# -- LightGBM ----------------------------------------------------------------------------------
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


@dataclass
class LightGBMLearner:
    """Gradient-boosted trees. `params` pass through to LightGBM (`num_leaves`, ...)."""

    params: dict = field(default_factory=dict)
    class_weight: str | None = "balanced"
    seed: int = 0
    patience: int = 50

    def fit(self, train: TrainData, valid: TrainData | None, budget: Budget) -> LightGBMFitted:
        weight, offset = class_weighting(train, self.class_weight)
        dtrain = lgb_dataset(train, weight)
        dvalid = None
        if valid is not None:
            vweight, _ = class_weighting(valid, self.class_weight)
            dvalid = lgb_dataset(valid, vweight, reference=dtrain)
        params = lgb_params(train.task, train.n_classes, self.seed, **self.params)
        booster, best = train_booster(params, dtrain, dvalid, budget, patience=self.patience)
        return LightGBMFitted.from_boosters([(booster, best)], offset, train.task)


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


# -- linear ------------------------------------------------------------------------------------
@dataclass
class LinearDesign:
    """Encoded matrix -> linear design: impute, clip to the training range and standardize
    numbers (with missing flags), one-hot the category codes. `groups[j]` is the encoded
    feature design column j came from.

    Clipping to the 0.5-99.5% quantiles of training keeps one extreme row (a mansion among
    houses) from dominating the fit, and keeps predictions for values beyond anything seen in
    training from extrapolating without bound."""

    numeric: list[int]
    median: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    flagged: list[int]  # numeric features that had missing values: add an indicator
    categorical: list[int]
    n_codes: list[int]
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, categorical: list[int]) -> LinearDesign:
        cats = list(categorical)
        numeric = [j for j in range(X.shape[1]) if j not in set(cats)]
        Xn = X[:, numeric]
        empty = np.zeros(0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            median = np.nan_to_num(np.nanmedian(Xn, axis=0)) if Xn.size else empty
            low = np.nan_to_num(np.nanquantile(Xn, 0.005, axis=0)) if Xn.size else empty
            high = np.nan_to_num(np.nanquantile(Xn, 0.995, axis=0)) if Xn.size else empty
            filled = np.clip(np.where(np.isnan(Xn), median, Xn), low, high)
            mean = filled.mean(axis=0) if Xn.size else empty
            scale = filled.std(axis=0) if Xn.size else empty
        scale = np.where(scale > 1e-12, scale, 1.0)
        flagged = [j for k, j in enumerate(numeric) if np.isnan(Xn[:, k]).any()]
        n_codes = [int(np.nanmax(X[:, j])) + 1 if np.any(~np.isnan(X[:, j])) else 0 for j in cats]
        return cls(numeric, median, mean, scale, flagged, cats, n_codes, low, high)

    @property
    def groups(self) -> np.ndarray:
        parts = [np.asarray(self.numeric, dtype=int), np.asarray(self.flagged, dtype=int)]
        parts += [np.full(n, j, dtype=int) for j, n in zip(self.categorical, self.n_codes)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=int)

    @property
    def n_features(self) -> int:
        return len(self.numeric) + len(self.categorical)

    def group_matrix(self) -> np.ndarray:
        """(design columns, encoded features) 0/1 matrix: which feature each column came from."""
        groups = self.groups
        out = np.zeros((len(groups), self.n_features))
        out[np.arange(len(groups)), groups] = 1.0
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xn = X[:, self.numeric]
        filled = np.clip(np.where(np.isnan(Xn), self.median, Xn), self.low, self.high)
        blocks = [(filled - self.mean) / self.scale]
        blocks += [np.isnan(X[:, self.flagged]).astype(np.float64)]
        for j, n in zip(self.categorical, self.n_codes):
            codes = X[:, j]
            onehot = np.zeros((len(X), n))
            ok = ~np.isnan(codes) & (codes < n)
            onehot[np.flatnonzero(ok), codes[ok].astype(int)] = 1.0
            blocks.append(onehot)
        return np.column_stack(blocks) if blocks else np.zeros((len(X), 0))

    def to_dict(self) -> dict:
        return {
            "numeric": self.numeric,
            "median": self.median.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "flagged": self.flagged,
            "categorical": self.categorical,
            "n_codes": self.n_codes,
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> LinearDesign:
        names = ("median", "mean", "scale", "low", "high")
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in names}
        return cls(
            d["numeric"],
            flagged=d["flagged"],
            categorical=d["categorical"],
            n_codes=d["n_codes"],
            **arrays,
        )


@dataclass
class LinearLearner:
    """L2-regularized logistic regression (classification) or ridge (regression).

    `C` (classification) / `alpha` (regression) is the regularization strength; pass-through
    `sklearn__*` options go to the scikit-learn estimator.
    """

    strength: float = 1.0
    class_weight: str | None = "balanced"
    seed: int = 0
    options: dict = field(default_factory=dict)

    def fit(self, train: TrainData, valid: TrainData | None, budget: Budget) -> LinearFitted:
        design = LinearDesign.fit(train.X, train.categorical)
        Xd = design.transform(train.X)
        offset = np.zeros(train.n_classes if train.task == "multiclass" else 1)
        if train.task == "regression":
            from sklearn.linear_model import Ridge

            est = Ridge(alpha=self.strength, **self.options)
            est.fit(Xd, train.y, sample_weight=train.weight)
            coef, intercept = est.coef_.reshape(1, -1), np.atleast_1d(est.intercept_)
        else:
            import warnings

            from sklearn.exceptions import ConvergenceWarning
            from sklearn.linear_model import LogisticRegression

            weight = train.weight
            if self.class_weight == "balanced":
                bw = balanced_weights(train.y, train.n_classes)
                weight = bw if weight is None else weight * bw
                offset = prior_offset(train.y, train.n_classes)
            from threadpoolctl import threadpool_limits

            est = LogisticRegression(C=self.strength, max_iter=1000, **self.options)
            # One BLAS thread: these matrices are small, and spinning threads on 2 shared
            # cores cost more than they give.
            with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(Xd, train.y.astype(int), sample_weight=weight)
            coef, intercept = _full_class_coef(est, train)
        return LinearFitted(design, coef, intercept, offset, train.task)


def _full_class_coef(est, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients for every class, also those absent from this training fold."""
    if train.task == "binary":
        return est.coef_.reshape(1, -1), np.atleast_1d(est.intercept_)
    coef = np.zeros((train.n_classes, est.coef_.shape[1]))
    intercept = np.full(train.n_classes, -30.0)  # an absent class gets ~zero probability
    coef[est.classes_.astype(int)] = est.coef_
    intercept[est.classes_.astype(int)] = est.intercept_
    return coef, intercept


@dataclass
class LinearFitted:
    design: LinearDesign
    coef: np.ndarray  # (1 or k, d)
    intercept: np.ndarray  # (1 or k,)
    offset: np.ndarray
    task: str
    kind: str = "linear"

    def raw(self, X: np.ndarray) -> np.ndarray:
        scores = self.design.transform(X) @ self.coef.T + self.intercept + self.offset
        return scores if self.task == "multiclass" else scores[:, 0]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        # Per design column coef * value, summed into the encoded feature it came from.
        Xd = self.design.transform(X)
        to_feature = self.design.group_matrix()  # (d, p)
        per_class = [(Xd * self.coef[c]) @ to_feature for c in range(self.coef.shape[0])]
        bias = self.intercept + self.offset
        out = np.stack(
            [np.column_stack([pc, np.full(len(X), b)]) for pc, b in zip(per_class, bias)], axis=1
        )
        return out if self.task == "multiclass" else out[:, 0, :]

    def importance(self) -> np.ndarray:
        """|coefficient| summed over design columns of each encoded feature (standardized)."""
        return np.abs(self.coef).sum(axis=0) @ self.design.group_matrix()

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        files = {f"{prefix}_coef.npy": self.coef, f"{prefix}_intercept.npy": self.intercept}
        meta = {
            "kind": self.kind,
            "files": sorted(files),
            "design": self.design.to_dict(),
            "offset": self.offset.tolist(),
        }
        return meta, files

    @classmethod
    def load(cls, meta: dict, read_npy, prefix: str, task: str) -> LinearFitted:
        return cls(
            LinearDesign.from_dict(meta["design"]),
            read_npy(f"{prefix}_coef.npy"),
            read_npy(f"{prefix}_intercept.npy"),
            np.asarray(meta["offset"], dtype=np.float64),
            task,
        )
