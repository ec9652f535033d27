"""`shipml retrain`: original data + feedback from the server -> a new version, compared."""

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import GERMAN, run_cli
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore


@pytest.fixture(scope="module")
def with_feedback(tmp_path_factory):
    """Trained on the first 700 German credit rows; the other 300 were served and labelled."""
    import shipml

    root = tmp_path_factory.mktemp("retrain")
    full = pd.read_csv(GERMAN)
    original = root / "credit_original.csv"
    full.head(700).to_csv(original, index=False)
    reg = Registry(root / "registry")
    shipml.train(original, "credit_risk", name="credit", registry=reg, time_budget=30,
                 n_trials=2, progress=False, report=False)  # fmt: skip
    reg.set_alias("credit", "production", 1)
    keys = KeyStore(reg.engine)
    predict_key, feedback_key = keys.create("app", ["predict"]), keys.create("crm", ["feedback"])
    live = full.iloc[700:]
    with TestClient(create_app(["credit@production"], registry=reg, rate_per_s=1e4,
                               burst=10_000)) as client:  # fmt: skip
        res = client.post("/v1/models/credit/predict",
                          json={"records": live.drop(columns="credit_risk").to_dict("records")},
                          headers={"Authorization": f"Bearer {predict_key}"})  # fmt: skip
        ids = [p["id"] for p in res.json()["predictions"]]
        for pid, label in zip(ids, live["credit_risk"]):
            client.post("/v1/feedback", json={"prediction_id": pid, "label": int(label)},
                        headers={"Authorization": f"Bearer {feedback_key}"})  # fmt: skip
    live = live.set_axis(ids)  # rows by prediction id
    return root, reg, live


def test_retrain_adds_feedback_and_compares(with_feedback, capsys):
    from shipml.retrain import retrain

    root, reg, live = with_feedback
    result = retrain("credit", registry=reg, time_budget=30)
    assert (result.current, result.new) == (1, 2)
    assert result.rows_original == 700
    assert (result.rows_feedback_train, result.rows_feedback_compare) == (240, 60)
    assert result.model.info["lineage"]["rows"] == 940
    # both versions scored on the same 60 newest labelled rows, which neither was trained on
    recent = live.loc[result.compare_ids]
    assert len(recent) == 60
    for version in ("1", "2"):
        model = reg.resolve(f"credit/{version}")
        assert model.version == int(version)
    import shipml

    expected_old = shipml.load("credit/1", registry=reg).evaluate(recent)
    assert result.recent["1"]["roc_auc"] == pytest.approx(expected_old["roc_auc"])
    assert 0.5 < result.recent["2"]["roc_auc"] <= 1
    assert reg.resolve("credit@production").version == 1  # nothing promoted


def test_retrain_cli_shows_both_versions(with_feedback, capsys):
    root, reg, _ = with_feedback
    code, out, err = run_cli(["retrain", "credit@production", "--time-budget", "20",
                              "--registry-uri", root / "registry"], capsys)  # fmt: skip
    assert code == 0, err
    assert "current v1" in out and "new v3" in out and "roc_auc" in out
    assert "shipml models promote credit 3 --alias production" in out


def test_retrain_without_feedback_or_data_is_a_clear_error(with_feedback, tmp_path, capsys):
    import shipml

    root, reg, _ = with_feedback
    frame = pd.read_csv(GERMAN).head(300)
    shipml.train(frame, "credit_risk", name="nofeedback", registry=reg, time_budget=20,
                 n_trials=1, progress=False, report=False)  # fmt: skip
    code, _, err = run_cli(["retrain", "nofeedback", "--registry-uri", root / "registry"], capsys)
    assert code == 2 and "--data" in err  # trained from a DataFrame: no file to go back to
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    code, _, err = run_cli(["retrain", "nofeedback", "--data", path,
                            "--registry-uri", root / "registry"], capsys)  # fmt: skip
    assert code == 2 and "no feedback labels" in err


def test_feedback_labels_logged_as_floats_keep_their_class(german):
    """Where some logged predictions have no label yet, the log's label column is float: the
    label 2 comes back as 2.0 and must still be the class "2", not a third class "2.0"."""
    from shipml.data.schema import infer_schema
    from shipml.retrain import _feedback_frame

    schema = infer_schema(german, "credit_risk")
    logged = german.drop(columns="credit_risk").head(3).assign(feedback=[2.0, 1.0, float("nan")])
    frame = _feedback_frame(logged.head(2), schema, [])
    assert frame["credit_risk"].tolist() == ["2", "1"]
    assert infer_schema(pd.concat([german, frame]), "credit_risk").classes == [1, 2]
