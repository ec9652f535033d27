"""The answer route in-process (FastAPI TestClient): answers and hand-overs as the model gives
them, auth, wrong routes per kind, attack inputs (4xx JSON, never 500), the prediction log
(personal data in questions hashed), Prometheus counts, and feedback by prediction id."""

import json

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from answer.helpdesk import OFF_TOPIC, faq_table, train_churn, train_helpdesk
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

ROUTE = "/v1/models/helpdesk/answer"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("answer-registry")
    model = train_helpdesk(folder)
    train_churn(folder)
    return Registry(folder), model


@pytest.fixture(scope="module")
def served(trained):
    import os

    os.environ["SHIPML_PII_SECRET"] = "answer-test-secret"
    reg, model = trained
    keys = KeyStore(reg.engine)
    suffix = str(np.random.default_rng().integers(1e9))
    predict_key = keys.create(f"widget-{suffix}", ["predict"])
    feedback_key = keys.create(f"fb-{suffix}", ["feedback"])
    app = create_app(["helpdesk", "churn"], registry=reg, rate_per_s=1000, burst=1000)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app, model, predict_key, feedback_key
    os.environ.pop("SHIPML_PII_SECRET", None)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def ask(client, key, body, route=ROUTE):
    return client.post(route, json=body, headers=bearer(key))


def feedback(client, key, body):
    return client.post("/v1/feedback", json=body, headers=bearer(key))


def flush(app):
    app.state.predictor.log.flush()


def logged(reg, pid):
    from shipml.registry import tables as t

    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(t.predictions).where(t.predictions.c.id == pid)).first()
    return row


def test_an_faq_question_gets_its_entry_as_the_model_answers_it(served):
    client, _, model, key, _ = served
    row = faq_table().iloc[0]
    res = ask(client, key, {"question": row["question"], "k": 3})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model"] == "helpdesk" and body["version"] == 1 and len(body["id"]) == 36
    assert body["handover"] is False and body["entry"] == row["id"]
    assert body["answer"] == row["answer"] and body["question"] == row["question"]
    assert 0 <= body["confidence"] <= 1 and len(body["alternatives"]) == 2
    want = model.answer(row["question"], k=3)  # the server answers what the model does
    assert body["confidence"] == pytest.approx(want["confidence"], abs=1e-6)
    assert [a["entry"] for a in body["alternatives"]] == [a["entry"] for a in want["alternatives"]]
    assert body["source"].get("url") == row["url"]


def test_k_defaults_to_three_and_bounds_the_alternatives(served):
    client, _, _, key, _ = served
    question = faq_table().iloc[3]["question"]
    assert len(ask(client, key, {"question": question}).json()["alternatives"]) == 2
    assert len(ask(client, key, {"question": question, "k": 1}).json()["alternatives"]) == 0
    assert len(ask(client, key, {"question": question, "k": 6}).json()["alternatives"]) == 5


def test_a_question_the_faq_cannot_answer_is_handed_over(served):
    client, _, model, key, _ = served
    handed = [q for q in OFF_TOPIC if model.answer(q)["handover"]]
    assert handed, "the model answered every off-topic question"
    body = ask(client, key, {"question": handed[0], "k": 3}).json()
    assert body["handover"] is True and body["answer"] is None and body["entry"] is None
    assert len(body["alternatives"]) == 3 and body["confidence"] < model.threshold
    assert body["alternatives"][0]["confidence"] == body["confidence"]  # the best is listed


def test_keys_and_scopes(served):
    client, _, _, _, feedback_key = served
    body = {"question": "How long does delivery take?"}
    assert client.post(ROUTE, json=body).status_code == 401
    assert client.post(ROUTE, json=body, headers=bearer("sk-wrong")).status_code == 401
    res = ask(client, feedback_key, body)  # the feedback scope cannot ask
    assert res.status_code == 403 and "error" in res.json()


def test_routes_of_the_other_kinds_say_which_to_use(served):
    client, _, _, key, _ = served
    res = ask(client, key, {"records": [{"question": "hi"}]}, "/v1/models/helpdesk/predict")
    assert res.status_code == 400 and "/v1/models/helpdesk/answer" in res.json()["error"]
    res = ask(client, key, {"question": "hi"}, "/v1/models/churn/answer")
    assert res.status_code == 400 and "not an answer model" in res.json()["error"]
    res = client.post("/v2/models/helpdesk/infer", json={"inputs": []}, headers=bearer(key))
    assert res.status_code == 400, res.text
    info = client.get("/v1/models/helpdesk", headers=bearer(key)).json()
    assert info["task"] == "answer" and info["n_entries"] == len(faq_table())
    listed = client.get("/v1/models", headers=bearer(key)).json()["models"]
    assert {m["name"]: m["task"] for m in listed}["helpdesk"] == "answer"


BAD_BODIES = [
    {},
    {"question": ""},
    {"question": "   \n\t "},
    {"question": "x" * 2001},
    {"question": 5},
    {"question": None},
    {"question": ["where is my parcel"]},
    {"question": {"text": "hi"}},
    {"question": "hi", "k": 0},
    {"question": "hi", "k": 51},
    {"question": "hi", "k": 10**12},
    {"question": "hi", "k": -1},
    {"question": "hi", "k": "3"},
    {"question": "hi", "k": 2.5},
    {"question": "hi", "k": None},
    {"question": "hi", "extra": 1},
    [],
    "just a string",
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=lambda b: json.dumps(b)[:40])
def test_bad_bodies_get_a_4xx_json_error(served, body):
    client, _, _, key, _ = served
    res = ask(client, key, body)
    assert 400 <= res.status_code < 500, res.text
    assert set(res.json()) == {"error"} and res.json()["error"]


def test_raw_bodies_that_are_not_json_get_4xx(served):
    client, _, _, key, _ = served
    for raw, kind in ((b"{not json", "application/json"), (b"question=hi", "text/plain"),
                      (b'{"question": "\\ud800 lone"}', "application/json"),
                      (b'{"question": "a\\u0000b"}', "application/json")):  # fmt: skip
        res = client.post(ROUTE, content=raw, headers={**bearer(key), "Content-Type": kind})
        assert res.status_code != 500, (raw, res.text)
        assert res.status_code == 200 or set(res.json()) == {"error"}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=st.text(max_size=300), k=st.integers(-5, 60))
def test_any_text_and_k_never_fails_the_server(served, question, k):
    client, _, _, key, _ = served
    res = ask(client, key, {"question": question, "k": k})
    assert res.status_code in (200, 400, 422), res.text
    if res.status_code == 200:
        n = len(faq_table())  # k past the FAQ's size: every other entry
        body = res.json()  # a hand-over lists the best among its alternatives
        assert len(body["alternatives"]) == min(k, n) - (0 if body["handover"] else 1)


def test_the_log_keeps_the_question_with_personal_data_hashed(served, trained):
    client, app, _, key, _ = served
    reg, _ = trained
    question = ("Hi, I am Anna Schmidt, anna.schmidt@example.com, +49 151 2345678: my parcel "
                "has not arrived yet")  # fmt: skip
    body = ask(client, key, {"question": question, "k": 2}).json()
    flush(app)
    row = logged(reg, body["id"])
    text = row.inputs["question"]
    for secret in ("anna.schmidt@example.com", "Anna Schmidt", "2345678"):
        assert secret not in json.dumps(row.inputs) and secret not in json.dumps(row.outputs)
    assert "[email hmac:" in text and "[phone hmac:" in text and "[name hmac:" in text
    assert text.endswith("my parcel has not arrived yet")
    assert row.outputs["entry"] == body["entry"] and row.outputs["handover"] is body["handover"]
    again = ask(client, key, {"question": question, "k": 2}).json()  # same person, same codes
    flush(app)
    assert logged(reg, again["id"]).inputs["question"] == text


def test_prometheus_counts_answers_and_handovers(served):
    client, _, model, key, _ = served
    ask(client, key, {"question": faq_table().iloc[1]["question"]})
    handed = next(q for q in OFF_TOPIC if model.answer(q)["handover"])
    ask(client, key, {"question": handed})
    text = client.get("/metrics").text
    for kind in ("answered", "handover"):
        line = next(ln for ln in text.splitlines() if ln.startswith("shipml_predictions_total{")
                    and 'model="helpdesk"' in ln and f'class="{kind}"' in ln)  # fmt: skip
        assert float(line.rsplit(" ", 1)[1]) >= 1
    assert 'route="/v1/models/{name}/answer"' in text or "/answer" in text


def test_feedback_helpful_then_409_and_unknown_id_404(served):
    client, app, _, key, feedback_key = served
    pid = ask(client, key, {"question": "How much does shipping cost?"}).json()["id"]
    flush(app)
    res = feedback(client, feedback_key, {"prediction_id": pid, "helpful": True})
    assert res.status_code == 200, res.text
    assert res.json()["helpful"] is True and res.json()["model"] == "helpdesk"
    again = feedback(client, feedback_key, {"prediction_id": pid, "helpful": False})
    assert again.status_code == 409 and "already has feedback" in again.json()["error"]
    missing = feedback(client, feedback_key, {"prediction_id": "no-such-id", "helpful": True})
    assert missing.status_code == 404 and "error" in missing.json()
    assert feedback(client, key, {"prediction_id": pid, "helpful": True}).status_code == 403


def test_feedback_with_the_right_entry(served, trained):
    from shipml.registry import tables as t

    client, app, _, key, feedback_key = served
    reg, _ = trained
    body = ask(client, key, {"question": "How much does shipping cost?"}).json()
    flush(app)
    other = next(e for e in faq_table()["id"] if e != body["entry"])
    res = feedback(client, feedback_key, {"prediction_id": body["id"], "entry": other})
    assert res.status_code == 200, res.text
    assert res.json()["entry"] == other and res.json()["helpful"] is False
    with reg.engine.connect() as conn:
        label = conn.execute(sa.select(t.feedback.c.label)
                             .where(t.feedback.c.prediction_id == body["id"])).scalar()  # fmt: skip
    assert label == {"helpful": False, "entry": other}


BAD_FEEDBACK = [
    {"helpful": "yes"},
    {"helpful": 1},
    {"entry": "no-such-entry"},
    {"entry": ""},
    {"entry": ["ship-cost"]},
    {"helpful": True, "entry": "ship-cost"},
    {"helpful": True, "label": "ship-cost"},
    {"label": "ship-cost"},
    {"item": "ship-cost", "event": "click"},
    {},
]


@pytest.mark.parametrize("extra", BAD_FEEDBACK, ids=lambda b: json.dumps(b)[:40])
def test_bad_feedback_bodies_get_422(served, extra):
    client, app, _, key, feedback_key = served
    pid = ask(client, key, {"question": "Do you ship abroad?"}).json()["id"]
    flush(app)
    res = feedback(client, feedback_key, {"prediction_id": pid, **extra})
    assert res.status_code == 422, res.text
    assert set(res.json()) == {"error"}
    ok = feedback(client, feedback_key, {"prediction_id": pid, "helpful": True})
    assert ok.status_code == 200, ok.text  # a refused body stored nothing


def test_answer_feedback_on_a_tabular_prediction_is_422(served):
    client, app, _, key, feedback_key = served
    res = ask(client, key, {"records": [{"a": 0.1, "b": 0.2}]}, "/v1/models/churn/predict")
    pid = res.json()["predictions"][0]["id"]
    flush(app)
    res = feedback(client, feedback_key, {"prediction_id": pid, "helpful": True})
    assert res.status_code == 422 and "not an answer" in res.json()["error"]
