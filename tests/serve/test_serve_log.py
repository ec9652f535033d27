"""What the server keeps: the prediction log (PII hashed), feedback, metrics, access log, CSV."""

import io
import json
import logging

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import GERMAN
from shipml.monitor.log import read_log
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

PII = ["age_years", "personal_status_sex"]


@pytest.fixture()
def served(credit_model, registry_dir, tmp_path, monkeypatch):
    """A server on its own copy of the registry (so the log holds only this test's rows)."""
    monkeypatch.setenv("SHIPML_PII_SECRET", "test-secret")
    source = Registry(registry_dir).resolve("credit/1")
    reg = Registry(tmp_path / "registry")
    writer = reg.writer()
    for name in Registry(registry_dir).open(source).files:
        writer.write_bytes(name, (source.artifact_dir / name).read_bytes())
    writer.finish()
    reg.register("credit", writer, task=source.task, metrics=source.metrics,
                 lineage=source.lineage, schema=source.schema)  # fmt: skip
    keys = KeyStore(reg.engine)
    predict_key = keys.create("app", ["predict"])
    feedback_key = keys.create("crm", ["feedback"])
    app = create_app(["credit"], registry=reg, rate_per_s=1000, burst=1000, pii_columns=PII)
    with TestClient(app) as client:
        yield client, reg, app, predict_key, feedback_key


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def german(n, skip=0):
    frame = pd.read_csv(GERMAN).iloc[skip : skip + n]
    return frame.drop(columns="credit_risk"), frame["credit_risk"]


def flush(app):
    app.state.predictor.log.flush()


def test_predictions_are_logged_with_pii_hashed(served):
    client, reg, app, key, _ = served
    frame, _ = german(4)
    res = client.post("/v1/models/credit/predict", json={"records": frame.to_dict("records")},
                      headers=bearer(key))  # fmt: skip
    assert res.status_code == 200
    flush(app)
    logged = read_log(reg.engine, "credit")
    returned = res.json()["predictions"]
    assert set(logged["id"]) == {p["id"] for p in returned}
    logged = logged.set_index("id").loc[[p["id"] for p in returned]]
    assert list(logged["prediction"]) == [p["label"] for p in returned]
    assert list(logged["version"]) == [1] * 4
    assert list(logged["duration_months"]) == list(frame["duration_months"])
    for column in PII:
        hashed = logged[column].tolist()
        assert all(str(h).startswith("hmac:") for h in hashed)
        assert not set(map(str, frame[column])) & set(map(str, hashed))
    # equal values hash equally (drift and joins still work), different values differently
    same = frame["personal_status_sex"].to_numpy()
    hashes = logged["personal_status_sex"].to_numpy()
    for i in range(4):
        for j in range(4):
            assert (same[i] == same[j]) == (hashes[i] == hashes[j])
    # nowhere in the database row: the raw ages do not appear in the stored JSON
    with reg.engine.connect() as conn:
        stored = [r[0] for r in conn.exec_driver_sql("SELECT inputs FROM predictions")]
    for text, age in zip(stored, frame["age_years"]):
        assert f'"age_years": {age}' not in text and f'"age_years":{age}' not in text


def test_feedback_joins_labels_to_predictions(served):
    client, reg, app, predict_key, feedback_key = served
    frame, truth = german(3, skip=10)
    res = client.post("/v1/models/credit/predict", json={"records": frame.to_dict("records")},
                      headers=bearer(predict_key))  # fmt: skip
    ids = [p["id"] for p in res.json()["predictions"]]
    url = "/v1/feedback"
    # immediately after predicting: the row may still be queued; the server waits for it
    first = client.post(url, json={"prediction_id": ids[0], "label": int(truth.iloc[0])},
                        headers=bearer(feedback_key))  # fmt: skip
    assert first.status_code == 200, first.text
    assert first.json()["model"] == "credit" and first.json()["version"] == 1
    as_text = client.post(url, json={"prediction_id": ids[1], "label": str(truth.iloc[1])},
                          headers=bearer(feedback_key))  # fmt: skip
    assert as_text.status_code == 200
    cases = [
        ({"prediction_id": ids[0], "label": 1}, feedback_key, 409, "already"),
        ({"prediction_id": "nope", "label": 1}, feedback_key, 404, "no logged prediction"),
        ({"prediction_id": ids[2], "label": "maybe"}, feedback_key, 422, "not one of"),
        ({"prediction_id": ids[2]}, feedback_key, 422, "label"),
        ({"prediction_id": ids[2], "label": 1}, predict_key, 403, "scope"),
    ]
    for body, key, status, words in cases:
        res = client.post(url, json=body, headers=bearer(key))
        assert res.status_code == status, (body, res.text)
        assert words in res.json()["error"]
    logged = read_log(reg.engine, "credit").set_index("id")
    assert logged.loc[ids[0], "feedback"] == truth.iloc[0]
    assert logged.loc[ids[1], "feedback"] == truth.iloc[1]  # "2" stored as the class 2
    assert pd.isna(logged.loc[ids[2], "feedback"])


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_and_predictions(served):
    client, _, _, key, _ = served
    frame, _ = german(7)
    res = client.post("/v1/models/credit/predict", json={"records": frame.to_dict("records")},
                      headers=bearer(key))  # fmt: skip
    labels = [p["label"] for p in res.json()["predictions"]]
    client.post("/v1/models/credit/predict", json={"records": []}, headers=bearer(key))
    client.get("/v1/models/ghost", headers=bearer(key))
    text = client.get("/metrics").text
    route = "/v1/models/{name}/predict"
    assert _metric(text, "shipml_requests_total", route=route, status="200") == 1
    assert _metric(text, "shipml_requests_total", route=route, status="422") == 1
    assert _metric(text, "shipml_requests_total", route="/v1/models/{name}", status="404") == 1
    for cls in (1, 2):
        assert _metric(text, "shipml_predictions_total", model="credit", version="1",
                       **{"class": str(cls)}) == labels.count(cls)  # fmt: skip
    assert _metric(text, "shipml_request_duration_seconds_count", route=route) == 2
    assert _metric(text, "shipml_model_load_seconds", model="credit") > 0
    assert "ghost" not in text  # unknown names never become label values


def test_access_log_is_json_without_payloads(served, caplog):
    client, _, _, key, _ = served
    frame, _ = german(1)
    record = frame.to_dict("records")[0]
    with caplog.at_level(logging.INFO, logger="shipml.access"):
        client.post("/v1/models/credit/predict", json={"records": [record]}, headers=bearer(key))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "shipml.access"]
    assert lines and lines[-1]["route"] == "/v1/models/{name}/predict"
    assert lines[-1]["status"] == 200 and lines[-1]["key"] == "app" and lines[-1]["rows"] == 1
    assert lines[-1]["model"] == "credit" and lines[-1]["version"] == 1
    text = " ".join(r.getMessage() for r in caplog.records)
    assert key not in text and str(record["checking_status"]) not in text


def test_csv_upload_scores_a_table(served, credit_model):
    client, _, _, key, _ = served
    frame, _ = german(60, skip=100)
    body = frame.to_csv(index=False).encode()
    headers = {**bearer(key), "Content-Type": "text/csv"}
    res = client.post("/v1/models/credit/predict/csv", content=body, headers=headers)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    out = pd.read_csv(io.StringIO(res.text))
    assert len(out) == 60 and out["prediction_id"].nunique() == 60
    np.testing.assert_array_equal(out["prediction"], credit_model.predict(frame))
    np.testing.assert_allclose(out["probability_2"], credit_model.predict_proba(frame)[2],
                               atol=1e-6)  # fmt: skip
    assert list(out.columns[1 : 1 + frame.shape[1]]) == list(frame.columns)
    bad = frame.head(3).copy()
    bad["credit_amount"] = ["12", "lots", "9"]
    res = client.post("/v1/models/credit/predict/csv", content=bad.to_csv(index=False).encode(),
                      headers=headers)  # fmt: skip
    assert res.status_code == 422 and "credit_amount" in res.json()["error"]
    res = client.post("/v1/models/credit/predict/csv", content=body,
                      headers={**bearer(key), "Content-Type": "application/json"})  # fmt: skip
    assert res.status_code == 400 and "text/csv" in res.json()["error"]
    res = client.post("/v1/models/credit/predict/csv", content=b"", headers=headers)
    assert res.status_code == 400 and "empty" in res.json()["error"]
