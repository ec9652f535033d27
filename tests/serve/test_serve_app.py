"""The HTTP server in-process (FastAPI TestClient): auth matrix, predictions, errors, limits."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import GERMAN, copy_versions
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore


@pytest.fixture()
def served(credit_model, registry_dir):
    reg = Registry(registry_dir)
    keys = KeyStore(reg.engine)
    suffix = str(np.random.default_rng().integers(1e9))
    predict_key = keys.create(f"app-{suffix}", ["predict"])
    feedback_key = keys.create(f"fb-{suffix}", ["feedback"])
    app = create_app(["credit"], registry=reg, rate_per_s=1000, burst=1000, max_body_bytes=200_000)
    return TestClient(app), predict_key, feedback_key


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def records(n=3):
    return pd.read_csv(GERMAN).drop(columns="credit_risk").head(n).to_dict(orient="records")


def test_predict_matches_the_model(served, credit_model):
    client, key, _ = served
    res = client.post(
        "/v1/models/credit/predict", json={"records": records(5)}, headers=bearer(key)
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model"] == "credit" and body["version"] == 1
    expected = credit_model.predict_proba(records(5))
    for row, (_, want) in zip(body["predictions"], expected.iterrows()):
        assert row["probabilities"]["2"] == pytest.approx(want[2], abs=1e-6)
        assert row["label"] in (1, 2) and len(row["id"]) == 36


def test_auth_matrix(served):
    client, predict_key, feedback_key = served
    url, payload = "/v1/models/credit/predict", {"records": records(1)}
    cases = [({}, 401), (bearer("shipml_nope_nope"), 401), (bearer(feedback_key), 403),
             ({"Authorization": predict_key}, 401), (bearer(predict_key), 200)]  # fmt: skip
    for headers, status in cases:
        res = client.post(url, json=payload, headers=headers)
        assert res.status_code == status, (headers, res.text)
        if status != 200:
            assert set(res.json()) == {"error"}
            assert predict_key not in res.text


def test_bad_input_names_the_field(served):
    client, key, _ = served
    rows = records(2)
    del rows[1]["age_years"]
    res = client.post("/v1/models/credit/predict", json={"records": rows}, headers=bearer(key))
    assert res.status_code == 422 and "age_years" in res.json()["error"]
    rows = records(2)
    rows[0]["duration_months"] = "a while"
    res = client.post("/v1/models/credit/predict", json={"records": rows}, headers=bearer(key))
    assert res.status_code == 422 and "'duration_months' expected numeric" in res.json()["error"]
    res = client.post("/v1/models/credit/predict", json={"rows": []}, headers=bearer(key))
    assert res.status_code == 422 and res.json()["error"].startswith("records")
    res = client.post("/v1/models/ghost/predict", json={"records": rows}, headers=bearer(key))
    assert res.status_code == 404 and "not served here" in res.json()["error"]
    res = client.post("/v1/models/credit/predict", content=b"{not json", headers=bearer(key))
    assert res.status_code == 422
    form = {**bearer(key), "Content-Type": "application/x-www-form-urlencoded"}  # curl -d
    res = client.post("/v1/models/credit/predict", content=b'{"records": []}', headers=form)
    assert res.status_code == 415 and "Content-Type: application/json" in res.json()["error"]


def test_body_limit_and_explain(served):
    client, key, _ = served
    big = {"records": records(1) * 2000}
    res = client.post("/v1/models/credit/predict", json=big, headers=bearer(key))
    assert res.status_code == 413 and "limit" in res.json()["error"]
    res = client.post("/v1/models/credit/explain?top=3", json={"records": records(2)},
                      headers=bearer(key))  # fmt: skip
    assert res.status_code == 200
    reasons = res.json()["explanations"][0]["reasons"]
    assert len(reasons) == 3 and {"column", "value", "contribution"} <= set(reasons[0])


def test_rate_limit_says_when_to_retry(credit_model, registry_dir):
    reg = Registry(registry_dir)
    key = KeyStore(reg.engine).create(f"slow-{np.random.default_rng().integers(1e9)}", ["predict"])
    client = TestClient(create_app(["credit"], registry=reg, rate_per_s=0.5, burst=2))
    codes = [client.get("/v1/models", headers=bearer(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    res = client.get("/v1/models", headers=bearer(key))
    assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1


def test_health_and_info_without_secrets(served):
    client, key, _ = served
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    info = client.get("/v1/models/credit", headers=bearer(key)).json()
    assert info["classes"] == [1, 2] and {"name": "age_years", "kind": "numeric"} in info["inputs"]


def test_alias_moves_without_restart(credit_model, registry_dir, tmp_path):
    """Promote a new version while serving "credit@production": after at most a second the
    server answers with it; no request fails in between."""
    import time

    reg = copy_versions(registry_dir, tmp_path)  # versions 1 and 2 with the same files
    client = TestClient(create_app(["credit@production"], registry=reg, auth=False))
    first = client.post("/v1/models/credit/predict", json={"records": records(1)}).json()
    assert first["version"] == 1
    reg.set_alias("credit", "production", 2)
    seen = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and 2 not in seen:
        res = client.post("/v1/models/credit/predict", json={"records": records(1)})
        assert res.status_code == 200
        seen.add(res.json()["version"])
    assert 2 in seen
