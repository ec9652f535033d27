"""Issue 13 item 5: promoting a version whose files no longer match their manifest took a live
server down (400 on every request, blaming the client, with the artifact path in the body)."""

import logging

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from conftest import GERMAN, Clock, copy_versions, run_cli
from shipml.errors import ArtifactIntegrityError
from shipml.registry import tables as t
from shipml.serve.app import create_app


@pytest.fixture()
def two_versions(credit_model, registry_dir, tmp_path):
    """A registry of its own with credit versions 1 and 2 (the trained model's files), the
    production alias on 1, and version 2's model file tampered with."""
    reg = copy_versions(registry_dir, tmp_path / "reg")
    broken = reg.get("credit", 2).artifact_dir / "model.json"
    original = broken.read_bytes()
    broken.write_bytes(original.replace(b'"weight"', b'"weight" ', 1))
    return reg, broken, original


def records(n=2):
    return pd.read_csv(GERMAN).drop(columns="credit_risk").head(n).to_dict(orient="records")


def test_promote_refuses_a_tampered_version(two_versions, capsys):
    reg, broken, _ = two_versions
    args = ["models", "promote", "credit", "2", "--alias", "production", "--registry-uri",
            reg.artifact_root.parent]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    assert "not moving credit@production to version 2" in err and "Traceback" not in err
    assert "model.json" in err and "modified" in err
    assert reg.resolve("credit@production").version == 1  # the alias did not move
    with pytest.raises(ArtifactIntegrityError, match="not moving credit@staging to version 2"):
        reg.set_alias("credit", "staging", 2)  # the Python API refuses too
    assert "staging" not in reg.get("credit", 2).aliases


def test_promote_refuses_a_version_that_does_not_load(two_versions, capsys):
    import hashlib
    import json

    reg, _, _ = two_versions
    folder = reg.get("credit", 2).artifact_dir
    (folder / "model.json").write_text(json.dumps({"format": 99}))  # manifest updated to match
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.json"] = hashlib.sha256(
        (folder / "model.json").read_bytes()
    ).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, out, err = run_cli(["models", "promote", "credit", "2", "--registry-uri",
                              reg.artifact_root.parent], capsys)  # fmt: skip
    assert code == 2 and "does not load" in err and "format 99" in err, (out, err)
    assert reg.resolve("credit@production").version == 1
    assert (
        run_cli(
            [
                "models",
                "promote",
                "credit",
                "1",
                "--alias",
                "staging",
                "--registry-uri",
                reg.artifact_root.parent,
            ],
            capsys,
        )[0]
        == 0
    )  # a good version still promotes


def test_an_alias_moved_to_a_broken_version_keeps_the_server_up(two_versions, caplog):
    reg, broken, original = two_versions
    app = create_app(["credit@production"], registry=reg, auth=False, log_predictions=False)
    clock = Clock(1e9)
    app.state.pool.clock = clock
    client = TestClient(app)
    bodies = []

    def call(method, url, **kw):
        res = client.request(method, url, **kw)
        bodies.append(res.text)
        return res

    def predict():
        return call("POST", "/v1/models/credit/predict", json={"records": records()})

    assert predict().json()["version"] == 1
    with reg.engine.begin() as conn:  # a racing process moves the alias, skipping promote
        conn.execute(t.aliases.update().where(t.aliases.c.alias == "production").values(version=2))
    caplog.set_level(logging.DEBUG, logger="shipml.serve")
    for _ in range(5):  # five re-resolutions of the alias, a second apart
        clock.now += 1.1
        res = predict()
        assert res.status_code == 200, res.text
        assert res.json()["version"] == 1  # the version it had
        assert call("GET", "/v2/health/ready").status_code == 200
        assert call("GET", "/v1/models").json()["models"][0]["version"] == 1
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "credit/2" in r.message
    ]
    assert len(warnings) == 1  # logged once for this target, not per request
    metrics = call("GET", "/metrics").text
    assert 'shipml_model_load_failures_total{model="credit",version="2"} 1.0' in metrics
    clock.now += 30  # tried again later: still broken, counted again
    assert predict().json()["version"] == 1
    assert 'shipml_model_load_failures_total{model="credit",version="2"} 2.0' in call(
        "GET", "/metrics").text  # fmt: skip
    broken.write_bytes(original)  # repaired: the next attempt serves it
    clock.now += 31
    assert predict().json()["version"] == 2

    root = str(reg.artifact_root.parent)
    assert all(root not in body for body in bodies)


def test_no_loadable_version_is_503_and_no_body_carries_a_path(two_versions):
    reg, broken, _ = two_versions
    with reg.engine.begin() as conn:
        conn.execute(t.aliases.update().where(t.aliases.c.alias == "production").values(version=2))
    app = create_app(["credit@production"], registry=reg, auth=False, log_predictions=False)
    client = TestClient(app)
    responses = [
        client.get("/v2/health/ready"),
        client.post("/v1/models/credit/predict", json={"records": records()}),
        client.post("/v1/models/credit/explain", json={"records": records()}),
        client.get("/v1/models/credit"),
        client.post("/v2/models/credit/infer", json={"inputs": []}),
    ]
    assert [r.status_code for r in responses] == [503] * 5
    assert client.get("/v2/health/live").status_code == 200
    root = str(reg.artifact_root.parent)
    for res in responses:
        assert set(res.json()) == {"error"} and root not in res.text, res.text
        assert "/" not in res.json()["error"], res.text
    with reg.engine.connect() as conn:
        assert conn.execute(sa.select(t.aliases.c.version)).scalar() == 2


def test_error_bodies_never_carry_server_paths(two_versions):
    from shipml.errors import DataError

    reg, _, _ = two_versions
    app = create_app(["credit@production"], registry=reg, auth=False, log_predictions=False)
    folder = reg.get("credit", 1).artifact_dir

    @app.get("/leak")
    def leak():  # any message naming a server file, whatever raised it
        raise DataError(f"{folder / 'model.json'} is odd; see {reg.url} and {folder}")

    res = TestClient(app).get("/leak")
    assert res.status_code == 400
    body = res.json()["error"]
    assert str(reg.artifact_root.parent) not in body and str(folder) not in body
    assert body.startswith("model.json is odd")
