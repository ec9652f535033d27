"""Training, prediction, evaluation and explanation on real data."""

import numpy as np
import pandas as pd
import pytest

import shipml
from conftest import ADULT, ADULT_TEST, AI4I, AI4I_LEAKS, GERMAN
from shipml.errors import DataError, SchemaError, TargetError


def test_credit_model_validates_well_and_reports_how(credit_model):
    m = credit_model.metrics
    assert credit_model.name == "credit" and credit_model.version == 1
    assert credit_model.info["validation"] == "5-fold stratified cross-validation on 1,000 rows"
    # Published tuned models reach ~0.78-0.80 ROC AUC on this data; majority class = 0.5.
    assert 0.74 < m["roc_auc"] < 0.9
    # roc_auc does not depend on the threshold: labels are the likelier class (0.5), which
    # beats always answering "good" (0.70); --metric balanced_accuracy would trade for recall
    assert m["accuracy"] > 0.72 and m["balanced_accuracy"] > 0.6
    assert credit_model.threshold == 0.5
    assert credit_model.report_path.is_file()


def test_predictions_are_labels_and_probabilities(credit_model, german):
    rows = german.drop(columns="credit_risk").head(50)
    labels = credit_model.predict(rows)
    assert set(labels) <= {1, 2}
    proba = credit_model.predict_proba(rows)
    assert list(proba.columns) == [1, 2]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the label follows the tuned threshold on P(bad)
    expected = np.where(proba[2] >= credit_model.threshold, 2, 1)
    np.testing.assert_array_equal(labels, expected)


def test_records_and_files_give_the_same_answers(credit_model, german):
    records = german.head(5).to_dict(orient="records")
    from_records = credit_model.predict_proba(records).to_numpy()
    from_file = credit_model.predict_proba(GERMAN).head(5).to_numpy()
    np.testing.assert_allclose(from_records, from_file)


def test_loaded_model_predicts_exactly_like_the_trained_one(credit_model, registry_dir, german):
    loaded = shipml.load("credit", registry_uri=str(registry_dir))
    assert loaded.version == 1
    np.testing.assert_array_equal(
        loaded.predict_proba(german).to_numpy(), credit_model.predict_proba(german).to_numpy()
    )


def test_contributions_add_up_to_the_score(credit_model, german):
    rows = german.head(20)
    explained = credit_model.explain_records(rows, top=100)
    _, X = credit_model.encode(rows)
    raw = credit_model.raw(X)
    for item, score in zip(explained, raw):
        total = item["baseline"] + sum(r["contribution"] for r in item["reasons"])
        assert total == pytest.approx(score, abs=1e-4)
    # reasons are the user's columns, not encoded features
    assert {r["column"] for r in explained[0]["reasons"]} <= set(german.columns)


def test_explain_frame_and_global_importance(credit_model, german):
    frame = credit_model.explain(german.head(3), top=4)
    assert list(frame.columns) == ["row", "prediction", "rank", "column", "value", "contribution"]
    assert len(frame) == 12
    first = frame[frame["row"] == 0]
    assert (first["contribution"].abs().diff().dropna() <= 1e-12).all()  # largest first
    importance = credit_model.info["importance"]
    assert next(iter(importance)) == "checking_status"  # the known strongest signal


def test_evaluate_on_unseen_census_rows(tmp_path):
    model = shipml.train(ADULT, target="income", time_budget=60, n_trials=3, progress=False)
    metrics = model.evaluate(ADULT_TEST, report=tmp_path / "eval.html")
    # UCI reports ~85-86% accuracy for tuned trees on this data; AUC ~0.9.
    assert metrics["roc_auc"] > 0.87
    assert metrics["n_rows"] == 1000
    assert (tmp_path / "eval.html").stat().st_size > 10_000


def test_regression_on_sensor_data(torque_model):
    frame = pd.read_csv(AI4I, encoding="utf-8-sig").drop(columns=AI4I_LEAKS + ["Machine_failure"])
    m = torque_model.metrics
    # torque follows from speed (power is roughly constant): R² well above a mean guess
    assert m["r2"] > 0.8
    assert m["rmse"] < frame["Torque [Nm]"].std() / 2
    pred = torque_model.predict(frame.drop(columns="Torque [Nm]").head(100))
    assert pred.dtype == np.float64 and np.isfinite(pred).all()
    with pytest.raises(DataError, match="predict_proba is for classifiers"):
        torque_model.predict_proba(frame.head(2))


def test_multiclass_target():
    frame = pd.read_csv(ADULT).head(1500)
    model = shipml.train(frame, target="relationship", time_budget=60, n_trials=2,
                         progress=False)  # fmt: skip
    assert model.task == "multiclass" and len(model.classes) == 6
    assert model.metrics["accuracy"] > 0.6  # majority class is ~40%
    proba = model.predict_proba(frame.head(10))
    assert proba.shape == (10, 6)
    explained = model.explain_records(frame.head(2), top=3)
    assert explained[0]["prediction"] in model.classes


def test_same_seed_and_trials_reproduce_the_model(german):
    a = shipml.train(german, target="credit_risk", time_budget=60, n_trials=2, seed=7,
                     progress=False)  # fmt: skip
    b = shipml.train(german, target="credit_risk", time_budget=60, n_trials=2, seed=7,
                     progress=False)  # fmt: skip
    np.testing.assert_allclose(a.predict_proba(german).to_numpy(),
                               b.predict_proba(german).to_numpy())  # fmt: skip


def test_prediction_input_errors(credit_model, german):
    with pytest.raises(SchemaError, match="missing 1 column.*'age_years'"):
        credit_model.predict(german.drop(columns="age_years").head(3))
    bad = german.head(3).copy()
    bad["duration_months"] = bad["duration_months"].astype(object)
    bad.loc[2, "duration_months"] = "two years"
    with pytest.raises(SchemaError, match="'duration_months' expected numeric.*row 3"):
        credit_model.predict(bad)
    unseen = german.head(3).copy()
    unseen["purpose"] = "spaceship"  # unseen categories are handled, not errors
    assert len(credit_model.predict(unseen)) == 3


def test_evaluate_rejects_labels_the_model_never_saw(credit_model, german):
    rows = german.head(5).copy()
    rows["credit_risk"] = [1, 2, 3, 1, 2]
    with pytest.raises(SchemaError, match="never saw.*3"):
        credit_model.evaluate(rows)


def test_training_errors(german):
    with pytest.raises(TargetError, match="Did you mean 'credit_risk'"):
        shipml.train(german, target="Credit_Risk ", progress=False)
    with pytest.raises(DataError, match="at least 10"):
        shipml.train(german.head(6), target="credit_risk", progress=False)


def test_pruned_trials_and_infinite_scores_are_stored_as_null(tmp_path, german):
    """A longer search prunes trials (no score); the model must still save as strict JSON."""
    model = shipml.train(german.head(300), target="credit_risk", name="pruned", n_trials=14,
                         registry_uri=str(tmp_path), progress=False, report=False)  # fmt: skip
    states = {t["state"] for t in model.info["trials"]}
    loaded = shipml.load("pruned", registry_uri=str(tmp_path))
    assert len(loaded.info["trials"]) == len(model.info["trials"])
    if "pruned" in states:
        assert any(t["value"] is None for t in loaded.info["trials"])


def test_json_safe():
    from shipml.model import json_safe

    assert json_safe({"a": np.float64("nan"), "b": [np.inf, np.int64(3)], 1: (2.5,)}) == {
        "a": None, "b": [None, 3], "1": [2.5]
    }  # fmt: skip
