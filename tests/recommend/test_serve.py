"""The recommendation routes in-process (FastAPI TestClient): answers, fallbacks, bad input,
wrong routes per task, auth, the prediction log (user ids hashed) and feedback -> hit rate/CTR."""

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli, start_server
from recommend.small_shop import catalog, shop_log
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A recommender ("recs") and a small classifier ("churn") in one registry."""
    import shipml
    from shipml.cli.recommend import train_log

    reg = Registry(tmp_path_factory.mktemp("rec-registry"))
    recs = train_log(shop_log(), user="customer_id", item="product_id", time_column="ts",
                     items=catalog(), name="recs", time_budget=6, registry=reg)  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    table = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] + x[:, 1] > 0).astype(int)})
    shipml.train(table, "y", name="churn", time_budget=5, n_trials=1, registry=reg,
                 progress=False, report=False)  # fmt: skip
    return reg, recs


@pytest.fixture()
def served(trained, monkeypatch):
    monkeypatch.setenv("SHIPML_PII_SECRET", "test-secret")
    reg, recs = trained
    keys = KeyStore(reg.engine)
    suffix = str(np.random.default_rng().integers(1e9))
    predict_key = keys.create(f"shop-{suffix}", ["predict"])
    feedback_key = keys.create(f"fb-{suffix}", ["feedback"])
    app = create_app(["recs", "churn"], registry=reg, rate_per_s=1000, burst=1000)
    with TestClient(app) as client:
        yield client, app, recs, predict_key, feedback_key


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def bought(user: str) -> set[str]:
    log = shop_log()
    return set(log.product_id[log.customer_id == user].astype(str))


def post(client, key, path, body):
    return client.post(path, json=body, headers=bearer(key))


def test_recommend_for_a_known_user_leaves_out_what_they_bought(served):
    client, _, recs, key, _ = served
    res = post(client, key, "/v1/models/recs/recommend", {"user": "u4", "k": 10})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model"] == "recs" and body["version"] == 1 and len(body["id"]) == 36
    assert body["fallback"] is None and body["unknown_items"] == []
    ids = [row["item"] for row in body["items"]]
    assert len(ids) == 10 and len(set(ids)) == 10 and not set(ids) & bought("u4")
    scores = [row["score"] for row in body["items"]]
    assert scores == sorted(scores, reverse=True)
    want = recs.recommend(user="u4", k=10)["items"]  # the server answers what the model does
    assert ids == [row["item"] for row in want]
    assert scores == pytest.approx([row["score"] for row in want], abs=1e-5)


def test_user_ids_as_numbers_and_unknown_users_fall_back_to_popular(served):
    client, _, recs, key, _ = served
    res = post(client, key, "/v1/models/recs/recommend", {"user": 424242, "k": 5})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["fallback"] == "popular"
    ids = [row["item"] for row in body["items"]]
    top = [str(recs.items[i]) for i in np.argsort(-recs.popular, kind="stable")[:5]]
    assert ids == top  # a visitor the model never saw: the most popular items


def test_a_basket_without_user_lists_unknown_items(served):
    client, _, recs, key, _ = served
    res = post(client, key, "/v1/models/recs/recommend",
               {"items": ["100", 106, "nope-1"], "k": 8})  # fmt: skip
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["fallback"] == "session" and body["unknown_items"] == ["nope-1"]
    ids = [row["item"] for row in body["items"]]
    assert len(ids) == 8 and not {"100", "106"} & set(ids)  # the basket's items left out
    want = recs.recommend(items=["100", "106", "nope-1"], k=8)["items"]
    assert ids == [row["item"] for row in want]


def test_exclude_and_similar(served):
    client, _, _, key, _ = served
    first = post(client, key, "/v1/models/recs/recommend", {"user": "u7", "k": 5}).json()
    dropped = [row["item"] for row in first["items"][:2]]
    res = post(client, key, "/v1/models/recs/recommend",
               {"user": "u7", "k": 5, "exclude": dropped})  # fmt: skip
    ids = [row["item"] for row in res.json()["items"]]
    assert res.status_code == 200 and len(ids) == 5 and not set(dropped) & set(ids)
    assert ids[:3] == [row["item"] for row in first["items"][2:5]]
    res = post(client, key, "/v1/models/recs/similar", {"item": "103", "k": 6})
    assert res.status_code == 200, res.text
    body = res.json()
    ids = [row["item"] for row in body["items"]]
    assert len(ids) == 6 and "103" not in ids and len(body["id"]) == 36


def test_filter_on_the_item_table(served):
    client, _, _, key, _ = served
    res = post(client, key, "/v1/models/recs/recommend",
               {"user": "u4", "k": 5, "filter": {"category": "books"}})  # fmt: skip
    assert res.status_code == 200, res.text
    kinds = catalog().set_index(catalog().product_id.astype(str)).category
    assert [kinds[row["item"]] for row in res.json()["items"]] == ["books"] * 5
    res = post(client, key, "/v1/models/recs/recommend",
               {"user": "u4", "k": 5, "filter": {"colour": "red"}})  # fmt: skip
    assert 400 <= res.status_code < 500 and "colour" in res.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": "u1", "k": 0}, "k"),
        ({"user": "u1", "k": 1001}, "k"),
        ({"user": "u1", "k": "10"}, "k"),  # strict: no "10" for 10
        ({"user": "u1", "k": 2.5}, "k"),
        ({"user": 4.2}, "user"),
        ({"user": ""}, "user"),
        ({"items": ["1"] * 1001}, "items"),
        ({"items": "100,101"}, "items"),
        ({"user": "u1", "exclude": [None]}, "exclude"),
        ({"user": "u1", "filter": {"category": {"nested": 1}}}, "filter"),
        ({"user_id": "u1"}, "user_id"),  # a misspelt field is not ignored
    ],
)
def test_bad_input_is_422_naming_the_field(served, body, field):
    client, _, _, key, _ = served
    res = post(client, key, "/v1/models/recs/recommend", body)
    assert res.status_code == 422, res.text
    assert set(res.json()) == {"error"} and res.json()["error"].startswith(field)


def test_bad_similar_input(served):
    client, _, _, key, _ = served
    for body, field in [({"k": 3}, "item"), ({"item": "103", "k": 0}, "k"),
                        ({"item": ["103"]}, "item")]:  # fmt: skip
        res = post(client, key, "/v1/models/recs/similar", body)
        assert res.status_code == 422 and res.json()["error"].startswith(field), res.text
    res = post(client, key, "/v1/models/recs/similar", {"item": "no-such-item"})
    assert 400 <= res.status_code < 500 and "no-such-item" in res.json()["error"]


def test_each_task_names_its_own_route(served):
    client, _, _, key, _ = served
    res = post(client, key, "/v1/models/recs/predict", {"records": [{"a": 1}]})
    assert res.status_code == 400 and "/v1/models/recs/recommend" in res.json()["error"]
    res = post(client, key, "/v1/models/recs/explain", {"records": [{"a": 1}]})
    assert res.status_code == 400 and "recommender" in res.json()["error"]
    res = client.post("/v1/models/recs/predict/csv", content=b"a\n1\n",
                      headers={**bearer(key), "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 400 and "/recommend" in res.json()["error"]
    res = client.get("/v2/models/recs", headers=bearer(key))
    assert res.status_code == 400 and "/recommend" in res.json()["error"]
    res = post(client, key, "/v1/models/churn/recommend", {"user": "u1"})
    assert res.status_code == 400 and "/v1/models/churn/predict" in res.json()["error"]
    res = post(client, key, "/v1/models/churn/similar", {"item": "1"})
    assert res.status_code == 400 and "not a recommender" in res.json()["error"]
    res = post(client, key, "/v1/models/churn/predict", {"records": [{"a": 0.5, "b": 1.0}]})
    assert res.status_code == 200  # the classifier still predicts


def test_auth_is_required_with_the_predict_scope(served):
    client, _, _, key, feedback_key = served
    for headers, status in [({}, 401), (bearer("shipml_nope_nope"), 401),
                            (bearer(feedback_key), 403), (bearer(key), 200)]:  # fmt: skip
        res = client.post("/v1/models/recs/recommend", json={"user": "u1"}, headers=headers)
        assert res.status_code == status, res.text
        res = client.post("/v1/models/recs/similar", json={"item": "101"}, headers=headers)
        assert res.status_code == status, res.text


def test_model_list_and_info_for_a_recommender(served):
    client, _, recs, key, _ = served
    listed = {m["name"]: m for m in client.get("/v1/models", headers=bearer(key)).json()["models"]}
    assert listed["recs"]["task"] == "recommend" and listed["recs"]["classes"] is None
    assert listed["churn"]["task"] == "binary"
    info = client.get("/v1/models/recs", headers=bearer(key)).json()
    assert info["task"] == "recommend" and info["n_items"] == len(recs.items) == 90
    assert info["n_users"] == 160 and info["metrics"]["ndcg@10"] == recs.metrics["ndcg@10"]
    assert "/v1/models/recs/similar" in info["routes"] and info["members"]


def test_metrics_count_recommendations(served):
    client, _, _, key, _ = served
    post(client, key, "/v1/models/recs/recommend", {"user": "u2"})
    post(client, key, "/v1/models/recs/recommend", {"user": "stranger"})
    text = client.get("/metrics").text
    assert 'route="/v1/models/{name}/recommend",status="200"' in text
    assert 'shipml_predictions_total{class="popular",model="recs",version="1"}' in text


def test_quick_answers_move_to_the_event_loop(served):
    client, app, recs, key, _ = served
    post(client, key, "/v1/models/recs/recommend", {"user": "u2", "k": 10})
    served_model, _ = app.state.pool.get("recs")
    from shipml.serve.recommend import Timing

    timing = Timing(quick_s=0.002)
    assert not timing.quick(served_model)  # never measured: the thread pool
    timing.record(served_model, 0.0005)
    assert timing.quick(served_model)
    for _ in range(20):  # a model that turns slow goes back to the pool
        timing.record(served_model, 0.05)
    assert not timing.quick(served_model)


def logged(reg) -> list:
    from shipml.registry import tables as t

    with reg.engine.connect() as conn:
        return conn.execute(sa.select(t.predictions).where(t.predictions.c.model == "recs")).all()


def test_the_log_keeps_items_and_a_hashed_user_never_the_raw_id(served, trained):
    client, app, _, key, _ = served
    reg, _ = trained
    body = post(client, key, "/v1/models/recs/recommend",
                {"user": "u11", "items": ["104"], "k": 4}).json()  # fmt: skip
    app.state.predictor.log.flush()
    row = next(r for r in logged(reg) if r.id == body["id"])
    assert row.version == 1 and row.inputs["items"] == ["104"] and row.inputs["k"] == 4
    assert row.inputs["user"].startswith("hmac:") and row.inputs["route"] == "recommend"
    assert row.outputs["items"] == [r["item"] for r in body["items"]]
    everything = json.dumps([[*map(str, r)] for r in logged(reg)])
    assert '"u11"' not in everything and "u11" not in everything


def answer(client, key, user):
    return post(client, key, "/v1/models/recs/recommend", {"user": user, "k": 5}).json()


def test_feedback_gives_hit_rate_and_ctr_in_monitor(trained, monkeypatch, tmp_path, capsys):
    """Four answers: a click on a returned item, a purchase on one, a click on an item that was
    not returned, no feedback: hit rate 2/4, CTR 1/4, purchases 1/4."""
    monkeypatch.setenv("SHIPML_PII_SECRET", "test-secret")
    source, _ = trained
    reg = Registry(tmp_path / "reg")  # a registry of its own: only this test's answers
    for name in ("recs", "churn"):
        info = source.resolve(name)
        w = reg.writer()
        for f in source.open(info).files:
            w.write_bytes(f, (info.artifact_dir / f).read_bytes())
        w.finish()
        reg.register(name, w, task=info.task, metrics=info.metrics, lineage=info.lineage,
                     schema=info.schema)  # fmt: skip
    keys = KeyStore(reg.engine)
    key, fb = keys.create("shop", ["predict"]), keys.create("crm", ["feedback"])
    with TestClient(create_app(["recs", "churn"], registry=reg)) as client:
        answers = [answer(client, key, u) for u in ("u1", "u2", "u3", "u5")]
        feedback = [
            (answers[0], answers[0]["items"][0]["item"], "click"),
            (answers[0], answers[0]["items"][0]["item"], "click"),  # the same event twice
            (answers[1], answers[1]["items"][3]["item"], "purchase"),
            (answers[2], "not-shown", "click"),
        ]
        for a, item, event in feedback:
            res = post(client, fb, "/v1/feedback",
                       {"prediction_id": a["id"], "item": item, "event": event})  # fmt: skip
            assert res.status_code == 200, res.text
        assert res.json()["recommended"] is False
        _bad_feedback(client, key, fb, answers[3])
    from shipml.monitor.check import monitor

    result = monitor(reg, "recs", report=tmp_path / "m.html")
    rec = result["recommendations"]
    assert result["status"] == "checked" and result["drift_detected"] is False
    assert (rec["n_answers"], rec["n_with_feedback"], rec["n_events_elsewhere"]) == (4, 3, 1)
    assert (rec["hit_rate"], rec["ctr"], rec["purchase_rate"]) == (0.5, 0.25, 0.25)
    assert any("drift" in note for note in result["notes"])
    assert "Hit rate" in (tmp_path / "m.html").read_text()
    code, out, err = run_cli(["monitor", "recs", "--registry-uri", tmp_path / "reg", "--json",
                              "--output", tmp_path / "reports"], capsys)  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["recommendations"]["hit_rate"] == 0.5
    code, out, err = run_cli(["monitor", "recs", "--registry-uri", tmp_path / "reg",
                              "--output", tmp_path / "reports"], capsys)  # fmt: skip
    assert code == 0 and "hit rate" in out and "50.0%" in out and "Traceback" not in err


def _bad_feedback(client, key, fb, rec_answer):
    res = post(client, fb, "/v1/feedback",
               {"prediction_id": rec_answer["id"], "item": "101", "event": "view"})  # fmt: skip
    assert res.status_code == 422 and res.json()["error"].startswith("event")
    res = post(client, fb, "/v1/feedback", {"prediction_id": rec_answer["id"], "label": 1})
    assert res.status_code == 422 and '"item"' in res.json()["error"]
    res = post(client, fb, "/v1/feedback", {"prediction_id": rec_answer["id"], "item": "101"})
    assert res.status_code == 422 and "event" in res.json()["error"]
    res = post(client, fb, "/v1/feedback",
               {"prediction_id": "00000000-0000-0000-0000-000000000000", "item": "1",
                "event": "click"})  # fmt: skip
    assert res.status_code == 404
    row = post(client, key, "/v1/models/churn/predict",
               {"records": [{"a": 1.0, "b": 1.0}]}).json()["predictions"][0]  # fmt: skip
    res = post(client, fb, "/v1/feedback", {"prediction_id": row["id"], "item": "1",
                                            "event": "click"})  # fmt: skip
    assert res.status_code == 422 and "not a recommendation" in res.json()["error"]
    res = post(client, fb, "/v1/feedback", {"prediction_id": row["id"], "label": 1})
    assert res.status_code == 200  # label feedback for the classifier still works


def test_shipml_serve_answers_recommendations(trained):
    """`shipml serve recs` in its own process: the pool loads the recommender from the registry."""
    import httpx

    reg, recs = trained
    proc, base = start_server(reg.artifact_root.parent, "recs", options=["--no-auth"])
    try:
        res = httpx.post(f"{base}/v1/models/recs/recommend", json={"user": "u9", "k": 3},
                         timeout=30)  # fmt: skip
        assert res.status_code == 200, res.text
        want = [row["item"] for row in recs.recommend(user="u9", k=3)["items"]]
        assert [row["item"] for row in res.json()["items"]] == want
        res = httpx.post(f"{base}/v1/models/recs/predict", json={"records": [{}]}, timeout=30)
        assert res.status_code == 400 and "/recommend" in res.json()["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_ids = st.one_of(st.text(max_size=6), st.integers(-5, 200), st.none(), st.booleans(),
                 st.floats(allow_nan=False, allow_infinity=False))  # fmt: skip
_values = st.recursive(_ids, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=2),
                       max_leaves=4)  # fmt: skip
_bodies = st.fixed_dictionaries({}, optional={
    "user": st.one_of(st.sampled_from(["u1", "u30", "ghost"]), _values),
    "items": st.one_of(st.lists(st.sampled_from(["100", "131", "nope", 105]), max_size=4), _values),
    "item": st.one_of(st.sampled_from(["100", "131", "nope"]), _values),
    "k": st.one_of(st.integers(-2, 1002), _values),
    "exclude": st.one_of(st.lists(st.sampled_from(["100", "x"]), max_size=3), _values),
    "filter": st.one_of(st.fixed_dictionaries({"category": st.sampled_from(["books", "x"])}),
                        st.fixed_dictionaries({"in_stock": st.booleans()}), _values),
})  # fmt: skip


def test_arbitrary_bodies_never_break_the_server(served):
    """Hypothesis bodies on both routes: 200 with items, or 4xx {"error": ...}; never a 5xx."""
    client, _, _, key, _ = served

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(route=st.sampled_from(["recommend", "similar"]), body=_bodies)
    def check(route, body):
        res = post(client, key, f"/v1/models/recs/{route}", body)
        assert res.status_code < 500, (body, res.text)
        if res.status_code == 200:
            assert len(res.json()["items"]) <= body.get("k", 10)
        else:
            assert set(res.json()) == {"error"}, res.text

    check()
