"""The linear design's log of skewed numbers (learners/linear.py): decided on the training rows
only, applied the same way at prediction, stored in the model's JSON, and never applied to a
column that is symmetric, has negative values or holds pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shipml.learners.base import Budget, TrainData
from shipml.learners.linear import LinearDesign, LinearFitted, LinearLearner


def _columns(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.lognormal(7, 0.8, n),  # 0: a size in sq ft: skewed right, positive -> logged
            rng.normal(50, 5, n),  # 1: symmetric and positive -> as is
            rng.lognormal(0, 1, n) - 1.5,  # 2: skewed right but with negative values -> as is
            100 - rng.lognormal(2, 0.8, n),  # 3: skewed left -> as is
            rng.integers(1, 11, n).astype(float),  # 4: a 1-10 grade: about uniform -> as is
        ]
    )


def test_only_right_skewed_non_negative_columns_are_logged():
    X = _columns()
    design = LinearDesign.fit(X, [])
    logged = design.log_scale > 0
    assert logged.tolist() == [True, False, False, False, False]
    # the scale is a low percentile of the positive training values: the log is unit-free
    clipped = np.clip(X[:, 0], design.low[0], design.high[0])
    assert design.log_scale[0] == pytest.approx(np.quantile(clipped, 0.05))
    in_thousands = X.copy()
    in_thousands[:, 0] /= 1000
    again = LinearDesign.fit(in_thousands, [])
    assert np.allclose(again.transform(in_thousands), design.transform(X))


def test_columns_left_as_is_are_standardized_exactly_as_before():
    X = _columns()
    Z = LinearDesign.fit(X, []).transform(X)
    for j in (1, 2, 3, 4):
        column = np.clip(X[:, j], *np.quantile(X[:, j], [0.005, 0.995]))
        assert np.allclose(Z[:, j], (column - column.mean()) / column.std())
    assert abs(Z[:, 0].mean()) < 1e-9 and abs(Z[:, 0].std() - 1) < 1e-9  # logged, standardized


def test_the_decision_is_made_on_training_rows_and_applied_identically_later():
    X = _columns()
    design = LinearDesign.fit(X[:400], [])
    new = X[400:].copy()
    new[0, 0] = 1e7  # far beyond training: clipped first, then logged
    new[1, 0] = np.nan  # missing: the training median, then logged
    s, low, high = design.log_scale[0], design.low[0], design.high[0]
    raw = np.clip(np.where(np.isnan(new[:, 0]), design.median[0], new[:, 0]), low, high)
    expected = (np.log1p(raw / s) - design.mean[0]) / design.scale[0]
    assert np.allclose(design.transform(new)[:, 0], expected)
    assert design.transform(new)[0, 0] == pytest.approx((np.log1p(high / s) - design.mean[0])
                                                        / design.scale[0])  # fmt: skip
    refit = LinearDesign.fit(X, [])  # other rows decide other values
    assert refit.log_scale[0] != design.log_scale[0]


def test_the_log_survives_save_and_load_through_json():
    X = _columns()
    y = np.log(X[:, 0]) + 0.01 * X[:, 1]
    fitted = LinearLearner(strength=1.0).fit(TrainData(X, y, "regression"), None, Budget(np.inf))
    meta, files = fitted.artifacts("linear")
    meta = json.loads(json.dumps(meta))  # what the registry writes: JSON, no pickle
    assert meta["design"]["log_scale"][0] > 0
    loaded = LinearFitted.load(meta, lambda name: files[name], "linear", "regression")
    assert np.array_equal(loaded.design.log_scale, fitted.design.log_scale)
    assert np.allclose(loaded.raw(X), fitted.raw(X))


def test_a_design_saved_before_the_log_reads_back_without_it():
    X = _columns()
    saved = LinearDesign.fit(X, []).to_dict()
    del saved["log_scale"]
    old = LinearDesign.from_dict(saved)
    assert (old.log_scale == 0).all() and old.transform(X).shape[1] == X.shape[1]


def test_pixel_columns_are_never_logged():
    rng = np.random.default_rng(0)
    X = rng.beta(0.6, 3.0, (500, 4)) * 0.9 + 0.05  # dark pixels: skewed right, all positive
    plain = LinearDesign.fit(X, [])
    assert (plain.log_scale > 0).all()
    pixels = LinearDesign.fit(X, [], {"start": 0, "size": 1, "channels": 3})
    assert (pixels.log_scale > 0).tolist() == [False, False, False, True]


def test_a_log_linear_target_is_fit_better(monkeypatch):
    from shipml.learners import linear

    X = _columns(seed=1)
    y = 2.0 * np.log(X[:, 0]) + np.random.default_rng(2).normal(0, 0.1, len(X))
    data = TrainData(X, y, "regression")

    def rmse() -> float:
        fitted = LinearLearner(strength=1.0).fit(data, None, Budget(np.inf))
        return float(np.sqrt(np.mean((fitted.raw(X) - y) ** 2)))

    logged = rmse()
    monkeypatch.setattr(linear, "_SKEW", np.inf)  # no column qualifies: the design before
    assert logged < 0.6 * rmse()  # on the raw size the ridge line misses the curve
