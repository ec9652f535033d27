"""scikit-learn estimators: `AutoClassifier` and `AutoRegressor`.

They run the same search as `shipml.train` (LightGBM + linear, ensembled) on arrays or
DataFrames, and follow scikit-learn's contract (`check_estimator`): parameters are only stored by
the constructor, fitted attributes end with "_", input is validated with scikit-learn's helpers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["AutoClassifier", "AutoRegressor"]

_TARGET = "__shipml_target__"


class _AutoBase(BaseEstimator):
    _task_hint: str | None = None

    def __init__(self, time_budget: float = 60.0, metric: str | None = None, seed: int = 0,
                 n_trials: int | None = None):  # fmt: skip
        self.time_budget = time_budget
        self.metric = metric
        self.seed = seed
        self.n_trials = n_trials

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _frame(self, X, *, reset: bool) -> pd.DataFrame:
        columns = getattr(X, "columns", None)
        arr = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype=None)
        if columns is not None and hasattr(X, "iloc"):
            frame = X.copy()
            frame.columns = [str(c) for c in frame.columns]
        else:
            arr = np.asarray(arr)
            if arr.dtype == object:
                arr = arr.astype(np.float64)
            frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        return frame.reset_index(drop=True)

    def _validated(self, X, y, *, numeric_y: bool):
        """scikit-learn's own checks of X and y (empty data, 1 sample, y=None, 2-D y...)."""
        _, y = validate_data(self, X, y, reset=True, ensure_all_finite="allow-nan", dtype=None,
                             y_numeric=numeric_y)  # fmt: skip
        return y

    def _fit(self, X, y, task: str):
        from shipml.training import train

        frame = self._frame(X, reset=True)
        # Every column given to an estimator is a feature: numbers stay numbers (no ID or
        # constant dropping); other columns are inferred as usual.
        kinds = {c: "numeric" for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])}
        frame[_TARGET] = y
        self.model_ = train(
            frame,
            _TARGET,
            task=task,
            metric=self.metric,
            time_budget=self.time_budget,
            seed=self.seed,
            n_trials=self.n_trials,
            kinds=kinds,
            progress=False,
            report=False,
        )
        return self

    def _checked(self, X) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        return self._frame(X, reset=False)


class AutoClassifier(ClassifierMixin, _AutoBase):
    """Classifier that searches LightGBM and linear models within `time_budget` seconds.

    Set `n_trials` (with `seed`) for results that do not depend on machine speed.
    """

    def fit(self, X, y):
        y = self._validated(X, y, numeric_y=False)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got 1 class ({y[0]!r})")
        codes = np.searchsorted(self.classes_, y)
        task = "binary" if len(self.classes_) == 2 else "multiclass"
        return self._fit(X, codes, task)

    def predict_proba(self, X) -> np.ndarray:
        frame = self._checked(X)
        proba = self.model_.predict_proba(frame)
        # columns are the class codes 0..k-1 in the model's order (positive class last)
        out = np.zeros((len(frame), len(self.classes_)))
        for j, code in enumerate(proba.columns):
            out[:, int(code)] = proba.iloc[:, j].to_numpy()
        return out

    def predict(self, X) -> np.ndarray:
        frame = self._checked(X)
        codes = np.asarray(self.model_.predict(frame), dtype=int)
        return self.classes_[codes]


class AutoRegressor(RegressorMixin, _AutoBase):
    """Regressor that searches LightGBM and linear models within `time_budget` seconds."""

    def fit(self, X, y):
        y = self._validated(X, y, numeric_y=True).astype(np.float64)
        if len(np.unique(y)) < 2:
            raise ValueError(f"y has one value for all {len(y)} samples: nothing to learn")
        return self._fit(X, y, "regression")

    def predict(self, X) -> np.ndarray:
        frame = self._checked(X)
        return np.asarray(self.model_.predict(frame), dtype=np.float64)
