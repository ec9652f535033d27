"""The image features step: which training rows fit the budget (stratified, exact)."""

from __future__ import annotations

import numpy as np

from shipml.learners.image import rows_that_fit


def test_all_rows_when_they_fit_and_a_stratified_sample_when_not():
    y = np.array([0] * 80 + [1] * 20)
    assert len(rows_that_fit(y, "binary", seconds=10.0, per_row=0.1, seed=0)) == 100
    keep = rows_that_fit(y, "binary", seconds=5.0, per_row=0.1, seed=0)
    assert len(keep) == 50 and list(keep) == sorted(keep)
    assert (y[keep] == 1).sum() == 10  # the classes keep their shares


def test_every_class_keeps_a_few_rows_however_short_the_budget():
    y = np.array([0] * 98 + [1, 2])
    keep = rows_that_fit(y, "multiclass", seconds=0.1, per_row=1.0, seed=0)
    assert set(y[keep]) == {0, 1, 2}
