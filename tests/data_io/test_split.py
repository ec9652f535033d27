import numpy as np
import pandas as pd

from conftest import ADULT
from shipml.data.split import plan_validation


def labels():
    y = (pd.read_csv(ADULT)["income"] == ">50K").to_numpy().astype(int)
    return y


def test_small_data_gets_stratified_kfold_covering_every_row():
    y = labels()[:1000]
    plan = plan_validation(y, "binary")
    assert plan.kind == "kfold" and len(plan.folds) == 5
    assert "5-fold stratified" in plan.description
    assert np.array_equal(plan.scored_rows, np.arange(1000))
    shares = [y[va].mean() for _, va in plan.folds]
    assert max(shares) - min(shares) < 0.02  # same class balance in every fold


def test_large_data_gets_a_holdout():
    ages = pd.read_csv(ADULT)["age"]
    y = (ages > ages.median()).to_numpy().astype(int)  # ~1,500 rows per class
    plan = plan_validation(y, "binary", cv_max_rows=2000)
    assert plan.kind == "holdout" and len(plan.folds) == 1
    train, valid = plan.folds[0]
    assert len(valid) == 600 and len(set(train) & set(valid)) == 0


def test_a_rare_class_keeps_cross_validation_on_larger_data():
    """720 high earners in 3,000 rows: a 600-row holdout would hold ~140 of them, too few for
    a stable score, so the plan cross-validates even above cv_max_rows."""
    plan = plan_validation(labels(), "binary", cv_max_rows=2000)
    assert plan.kind == "kfold" and len(plan.folds) == 5


def test_time_column_validates_on_the_latest_rows():
    y = labels()[:500]
    times = np.random.default_rng(0).permutation(500).astype(float)
    plan = plan_validation(y, "binary", times=times)
    train, valid = plan.folds[0]
    assert times[train].max() < times[valid].min()
    assert "time-ordered" in plan.description


def test_groups_never_straddle_a_split():
    frame = pd.read_csv(ADULT).head(1000)
    groups = frame["occupation"].fillna("none").to_numpy()
    y = (frame["income"] == ">50K").to_numpy().astype(int)
    plan = plan_validation(y, "binary", groups=groups)
    for train, valid in plan.folds:
        assert not set(groups[train]) & set(groups[valid])
