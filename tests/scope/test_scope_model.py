"""Out-of-scope answers (scope.py) on a real CLINC150 slice: the threshold chosen on validation,
min_confidence, reject without oos rows, storage, bad input."""

import numpy as np
import pytest

from shipml.errors import DataError, UsageError
from shipml.model import Model
from shipml.registry.store import Registry
from shipml.scope import choose_scope, scope_metrics

from .conftest import CLINC

IN_SCOPE_MARGIN = 0.05  # in-scope test accuracy the threshold may cost (validation allows 0.01)


def test_threshold_raises_oos_recall_at_a_small_in_scope_cost(oos_model, clinc_test):
    scope = oos_model.scope
    assert scope["label"] == "oos" and scope["mode"] == "threshold" and scope["threshold"] > 0
    val = scope["validation"]
    assert val["in_scope_accuracy"] >= scope["as_class"]["in_scope_accuracy"] - 0.01 - 1e-9
    assert val["oos_recall"] > scope["as_class"]["oos_recall"]
    proba = oos_model.predict_proba(clinc_test[["text"]]).to_numpy()
    y = clinc_test["intent"].to_numpy()
    as_class = scope_metrics(y, oos_model.labels_from_proba(proba, scoped=False), "oos")
    scoped = scope_metrics(y, oos_model.predict(clinc_test[["text"]]), "oos")
    assert scoped["oos_recall"] > as_class["oos_recall"] + 0.02
    assert scoped["in_scope_accuracy"] >= as_class["in_scope_accuracy"] - IN_SCOPE_MARGIN
    assert scoped["in_scope_accuracy"] > 0.6  # 20 intents, 15 rows each: well above chance


def test_evaluate_reports_in_scope_accuracy_oos_recall_and_f1(oos_model, clinc_test):
    m = oos_model.evaluate(clinc_test)
    pred = oos_model.predict(clinc_test[["text"]])
    oos = clinc_test["intent"].to_numpy() == "oos"
    assert m["oos_recall"] == pytest.approx(np.mean(pred[oos] == "oos"))
    assert m["in_scope_accuracy"] == pytest.approx(
        np.mean(pred[~oos] == clinc_test["intent"].to_numpy()[~oos])
    )
    assert 0 < m["oos_f1"] <= 1
    assert "oos_recall" in oos_model.metrics  # the validation metrics too
    described = oos_model.describe()
    assert "below confidence" in described["out of scope"]
    assert described["out-of-scope thresholds"].startswith("0.00: ")


def test_evaluation_report_shows_the_decision(oos_model, clinc_test, tmp_path):
    path = tmp_path / "evaluation.html"
    oos_model.evaluate(clinc_test, report=path)
    html = path.read_text().lower()
    assert "below confidence" in html and "oos recall" in html and "oos f1" in html
    assert "in-scope accuracy / oos recall" in html


def test_min_confidence_changes_predictions(oos_model, clinc_test):
    X = clinc_test[["text"]]
    default = oos_model.predict(X)
    none = oos_model.predict(X, min_confidence=0.0)
    strict = oos_model.predict(X, min_confidence=0.99)
    assert (default == "oos").sum() > (none == "oos").sum()
    assert (strict == "oos").mean() > (default == "oos").mean() + 0.2
    with pytest.raises(DataError, match="min_confidence"):
        oos_model.predict(X, min_confidence=1.5)


def test_round_trip_keeps_the_threshold(oos_model, clinc_test, tmp_path):
    reg = Registry(tmp_path)
    w = reg.writer()
    oos_model.write(w)
    w.finish()
    reg.register("intents", w, task=oos_model.task, metrics=oos_model.metrics,
                 lineage=oos_model.info["lineage"], schema=oos_model.schema.to_dict())  # fmt: skip
    loaded = Model.read(reg.open(reg.resolve("intents/1")))
    assert loaded.scope["threshold"] == oos_model.scope["threshold"]
    X = clinc_test[["text"]]
    assert (loaded.predict(X) == oos_model.predict(X)).all()
    assert not any(p.suffix == ".pkl" for p in reg.resolve("intents/1").artifact_dir.iterdir())


def test_reject_quantile_rejects_at_most_the_loss_of_correct_answers():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5) * 0.3, size=2000)
    y = np.asarray(list("abcde"), dtype=object)[proba.argmax(axis=1)]
    scope = choose_scope(y, proba, list("abcde"), None, 0.05)
    rejected = (proba.max(axis=1) < scope["threshold"]).mean()
    assert 0.03 < rejected <= 0.05


def test_bad_input_is_a_usage_error(german):
    import shipml

    with pytest.raises(
        UsageError, match=r"'nothing' is not a label of target 'intent' \(21 labels: 'alarm'"
    ):
        shipml.train(CLINC, "intent", out_of_scope="nothing", mode="tfidf", n_trials=1)
    with pytest.raises(UsageError, match="regression"):
        shipml.train(german, "credit_amount", task="regression", out_of_scope="x", n_trials=1)
    with pytest.raises(UsageError, match="regression"):
        shipml.train(german, "credit_amount", task="regression", reject=True, n_trials=1)
