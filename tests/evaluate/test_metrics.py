"""shipml.evaluate.metrics on real predictions: German credit (binary and a 3-class target made
from credit_amount) and AI4I torque (regression). Every number is checked against scikit-learn
on the same arrays."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import label_binarize

from conftest import DATA
from shipml.errors import DataError, ShipmlError
from shipml.evaluate.metrics import (
    METRIC_DIRECTIONS,
    METRIC_NAMES,
    classification_metrics,
    is_better,
    regression_metrics,
)

NOT_SCORES = {"n_rows", "primary", "positive_class", "per_class", "confusion_matrix", "calibration"}


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    return pd.read_csv(DATA / "german_credit.csv")


@pytest.fixture(scope="module")
def binary(german):
    """Held-out predictions of a quick model: (y_true, proba, classes)."""
    X = german.select_dtypes("number").drop(columns="credit_risk")
    y = german["credit_risk"].to_numpy()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xtr, ytr)
    assert list(model.classes_) == [1, 2]
    return yte, model.predict_proba(Xte), [1, 2]


@pytest.fixture(scope="module")
def multiclass(german):
    """3 classes from binned credit_amount, predicted from the other numeric columns."""
    y = pd.qcut(german["credit_amount"], 3, labels=["low", "mid", "high"]).astype(str).to_numpy()
    X = german.select_dtypes("number").drop(columns=["credit_risk", "credit_amount"])
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xtr, ytr)
    return yte, model.predict_proba(Xte), list(model.classes_)


@pytest.fixture(scope="module")
def regression():
    frame = pd.read_csv(DATA / "ai4i_slice.csv", encoding="utf-8-sig")
    y = frame["Torque [Nm]"].to_numpy()
    X = frame[["Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]"]]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(Xtr, ytr)
    return yte, model.predict(Xte)


def _plain(x) -> bool:
    """Only JSON's own types, recursively."""
    if isinstance(x, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_plain(v) for v in x)
    return x is None or type(x) in (str, int, float, bool)


# --------------------------------------------------------------------------------------------
# classification


def test_binary_equals_sklearn(binary):
    y, proba, classes = binary
    m = classification_metrics(y, proba, classes)
    pred = np.array(classes)[proba.argmax(axis=1)]
    assert m["primary"] == "roc_auc"
    assert m["positive_class"] == "2"
    assert m["n_rows"] == len(y) == 300
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 2, proba[:, 1]))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1], pos_label=2))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y == 2, proba[:, 1]))
    assert 0.5 < m["roc_auc"] < 1  # a real model on real data: better than guessing
    assert m["confusion_matrix"] == {
        "labels": ["1", "2"],
        "matrix": skm.confusion_matrix(y, pred, labels=classes).tolist(),
    }
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=classes)
    assert m["per_class"]["2"] == pytest.approx(
        {"precision": p[1], "recall": r[1], "f1": f[1], "support": s[1]}
    )
    assert isinstance(m["per_class"]["1"]["support"], int)


def test_binary_calibration_equals_sklearn(binary):
    y, proba, classes = binary
    cal = classification_metrics(y, proba, classes)["calibration"]
    prob_true, prob_pred = calibration_curve(y == 2, proba[:, 1], n_bins=10, strategy="uniform")
    assert cal["prob_true"] == pytest.approx(prob_true.tolist())
    assert cal["prob_pred"] == pytest.approx(prob_pred.tolist())
    assert sum(cal["count"]) == len(y)
    assert all(c > 0 for c in cal["count"])  # empty bins are skipped


def test_multiclass_equals_sklearn(multiclass):
    y, proba, classes = multiclass
    m = classification_metrics(y, proba, classes)
    pred = np.array(classes)[proba.argmax(axis=1)]
    assert m["primary"] == "log_loss"
    assert m["positive_class"] is None and m["brier"] is None and m["calibration"] is None
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    )
    onehot = label_binarize(y, classes=classes)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(onehot, proba))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["confusion_matrix"]["labels"] == classes
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred, labels=classes).tolist()
    assert sorted(m["per_class"]) == sorted(classes)
    assert sum(c["support"] for c in m["per_class"].values()) == len(y)


def test_sample_weight_equals_sklearn(binary):
    y, proba, classes = binary
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    m = classification_metrics(y, proba, classes, sample_weight=w)
    pred = np.array(classes)[proba.argmax(axis=1)]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=w))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 2, proba[:, 1], sample_weight=w))
    assert m["n_rows"] == len(y)


def test_y_pred_scores_the_labels_given(binary):
    """A tuned decision threshold: label metrics score y_pred, probability metrics proba."""
    y, proba, classes = binary
    pred = np.where(proba[:, 1] >= 0.3, 2, 1)
    m = classification_metrics(y, proba, classes, y_pred=pred)
    base = classification_metrics(y, proba, classes)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert m["roc_auc"] == base["roc_auc"] and m["log_loss"] == base["log_loss"]


def test_perfect_predictions(multiclass):
    y, _, classes = multiclass
    proba = label_binarize(y, classes=classes).astype(float)
    m = classification_metrics(y, proba, classes)
    assert m["accuracy"] == 1.0 and m["f1_macro"] == 1.0 and m["balanced_accuracy"] == 1.0
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["log_loss"] == pytest.approx(0.0, abs=1e-9)
    matrix = np.array(m["confusion_matrix"]["matrix"])
    assert (matrix == np.diag(np.diag(matrix))).all()


def test_single_class_in_y_true_gives_none_without_warnings(binary):
    y, proba, classes = binary
    good = y == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's UndefinedMetricWarning noise is silenced
        m = classification_metrics(y[good], proba[good], classes)
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["per_class"]["2"]["support"] == 0
    assert m["per_class"]["2"]["precision"] == 0.0  # zero_division=0, not NaN
    json.dumps(m, allow_nan=False)


def test_class_never_predicted(multiclass):
    y, proba, classes = multiclass
    p = proba.copy()
    p[:, 0] = 0.0  # the model never gives the first class any chance
    p = p / p.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, p, classes)
    first = m["per_class"][classes[0]]
    assert first["precision"] == 0.0 and first["recall"] == 0.0
    assert m["roc_auc"] is not None  # every class is present in y_true
    assert all(row[0] == 0 for row in m["confusion_matrix"]["matrix"])


def test_absent_class_multiclass_roc_auc_is_none(multiclass):
    y, proba, classes = multiclass
    keep = y != classes[2]
    m = classification_metrics(y[keep], proba[keep], classes)
    assert m["roc_auc"] is None
    assert m["pr_auc"] is not None  # averaged over the classes present


def test_labels_read_as_text_match_numeric_classes(binary):
    y, proba, classes = binary
    as_text = classification_metrics(y.astype(str), proba, classes)
    assert as_text == classification_metrics(y, proba, classes)


def test_one_dimensional_binary_proba(binary):
    y, proba, classes = binary
    one = classification_metrics(y, proba[:, 1], classes)
    two = classification_metrics(y, proba, classes)
    for key in ("accuracy", "roc_auc", "pr_auc", "log_loss", "brier"):
        assert one[key] == pytest.approx(two[key])


@pytest.mark.parametrize(
    ("y_true", "proba", "classes", "match"),
    [
        ([1, 3], [[0.5, 0.5], [0.5, 0.5]], [1, 2], "not among the classes"),
        ([1, 2], [[0.5, 0.5]], [1, 2], "shape"),
        ([1, 2], [[0.9, 0.9], [0.5, 0.5]], [1, 2], "sum to 1"),
        ([1, 2], [[np.nan, 1.0], [0.5, 0.5]], [1, 2], "missing"),
        ([1], [[1.0]], [1], "at least 2 classes"),
        ([], np.zeros((0, 2)), [1, 2], "empty"),
    ],
)
def test_bad_classification_input_is_a_data_error(y_true, proba, classes, match):
    with pytest.raises(DataError, match=match):
        classification_metrics(y_true, proba, classes)


# --------------------------------------------------------------------------------------------
# regression


def test_regression_equals_sklearn(regression):
    y, pred = regression
    m = regression_metrics(y, pred)
    assert m["primary"] == "rmse" and m["n_rows"] == len(y)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred))
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert m["rmse_log"] == pytest.approx(
        math.sqrt(skm.mean_squared_error(np.log1p(y), np.log1p(pred)))
    )
    assert 0.3 < m["r2"] < 1  # torque is predictable from speed and temperatures


def test_regression_perfect(regression):
    y, _ = regression
    m = regression_metrics(y, y)
    assert m["rmse"] == 0.0 and m["mae"] == 0.0 and m["r2"] == 1.0 and m["mape"] == 0.0


def test_regression_mape_ignores_zero_targets():
    m = regression_metrics([0.0, 2.0, 4.0], [5.0, 1.0, 5.0])
    assert m["mape"] == pytest.approx((0.5 + 0.25) / 2)
    assert regression_metrics([0.0, 0.0], [1.0, 2.0])["mape"] is None


def test_regression_undefined_scores_are_none():
    m = regression_metrics([3.0], [1.0])  # R² of one row is NaN in sklearn
    assert m["r2"] is None
    assert regression_metrics([-5.0, 2.0], [1.0, 2.0])["rmse_log"] is None
    json.dumps(m, allow_nan=False)


def test_regression_bad_input_is_a_data_error():
    with pytest.raises(DataError, match="missing"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(DataError, match="3 values but y_pred has 2"):
        regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(DataError, match="numbers"):
        regression_metrics(["a", "b"], [1.0, 2.0])


# --------------------------------------------------------------------------------------------
# shared contract


def test_json_round_trip_with_plain_types(binary, multiclass, regression):
    results = [
        classification_metrics(*binary),
        classification_metrics(*multiclass),
        regression_metrics(*regression),
    ]
    for m in results:
        assert _plain(m), m
        assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_every_scalar_metric_has_a_direction_and_a_name(binary, multiclass, regression):
    results = [
        classification_metrics(*binary),
        classification_metrics(*multiclass),
        regression_metrics(*regression),
    ]
    for m in results:
        scalars = set(m) - NOT_SCORES
        assert scalars <= set(METRIC_DIRECTIONS), scalars - set(METRIC_DIRECTIONS)
        assert m["primary"] in METRIC_DIRECTIONS
    assert set(METRIC_NAMES) == set(METRIC_DIRECTIONS)


def test_is_better():
    assert is_better("roc_auc", 0.8, 0.7) and not is_better("roc_auc", 0.7, 0.8)
    assert is_better("log_loss", 0.3, 0.5) and not is_better("rmse", 2.0, 1.0)
    assert not is_better("r2", 0.5, 0.5)  # strictly better
    assert is_better("rmse", 10.0, None) and not is_better("rmse", None, 10.0)
    assert not is_better("accuracy", float("nan"), 0.1)
    with pytest.raises(ShipmlError, match="unknown metric"):
        is_better("speed", 1.0, 2.0)


def test_importing_the_module_loads_no_heavy_library():
    code = (
        "import sys, shipml.evaluate.metrics, shipml.evaluate.plots, shipml.evaluate.report;"
        "heavy = [m for m in ('matplotlib', 'sklearn', 'lightgbm') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
