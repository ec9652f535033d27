"""`shipml retrain` of a recommender on the feedback its served answers got, end to end on the
committed shop log: serve it (TestClient), ask for recommendations, click and buy some of them,
retrain without --data; the clicked (user, item) pairs are in the new version's events and change
what it recommends, and retraining that version again finds nothing new (the feedback is not
counted twice). --data and feedback merge; a recommender with neither gets an error naming both;
feedback on a model of the same name trained anew (other user keys) is left out."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import DATA, run_cli
from shipml.errors import DataError
from shipml.recommend.model import user_key
from shipml.recommend.training import train_recommender
from shipml.registry.store import Registry
from shipml.retrain import retrain
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

LOG = DATA / "shop_log" / "events.csv"
ITEMS = DATA / "shop_log" / "items.csv"
USER = "1260"


@pytest.fixture(scope="module")
def served_feedback(tmp_path_factory):
    """A recommender "shop" served; USER's top 3 clicked, the first also bought, a basket
    visitor's top item clicked. (registry, answers, the feedback responses)."""
    folder = tmp_path_factory.mktemp("retrain-feedback")
    reg = Registry(folder)
    reg.folder = folder  # what --registry-uri names
    train_recommender(LOG, items=ITEMS, name="shop", registry=reg, families=["itemknn"],
                      n_trials=2, time_budget=20, report=False, progress=False)  # fmt: skip
    keys = KeyStore(reg.engine)
    predict, fb = keys.create("shop", ["predict"]), keys.create("crm", ["feedback"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPML_PII_SECRET", "test-secret")
        with TestClient(create_app(["shop"], registry=reg)) as client:
            mine = _post(client, predict, "/v1/models/shop/recommend", {"user": USER, "k": 10})
            basket = _post(client, predict, "/v1/models/shop/recommend",
                           {"items": ["12", "40"], "k": 5})  # fmt: skip
            top = [row["item"] for row in mine["items"]]
            events = [
                (mine, top[0], "click"),
                (mine, top[1], "click"),
                (mine, top[2], "click"),
                (mine, top[0], "purchase"),
                (basket, basket["items"][0]["item"], "click"),
            ]
            sent = [_post(client, fb, "/v1/feedback", {"prediction_id": a["id"], "item": item,
                                                       "event": event})
                    for a, item, event in events]  # fmt: skip
    return reg, mine, basket, sent


def _post(client, key, path, body) -> dict:
    res = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert res.status_code == 200, res.text
    return res.json()


def _pairs(model) -> set[tuple[str, str]]:
    ev = model.events
    return set(zip(ev.users.astype(str)[ev.user], ev.items.astype(str)[ev.item]))


def test_retrain_without_data_learns_the_clicks(served_feedback, capsys):
    import shipml

    reg, mine, basket, sent = served_feedback
    first = shipml.load("shop/1", registry=reg)
    top = [row["item"] for row in mine["items"]]
    key = user_key(first.salt, USER)
    assert not {(key, t) for t in top[:3]} & _pairs(first)  # recommended: not had before
    code, out, err = run_cli(["retrain", "shop/1", "--registry-uri", reg.folder], capsys)
    assert code == 0, err
    assert "5 new events came from feedback" in out
    new = shipml.load("shop/2", registry=reg)
    assert new.events.n_events == first.events.n_events + 5
    assert {(key, t) for t in top[:3]} <= _pairs(new)
    session = f"session:{basket['id']}"
    assert (session, basket["items"][0]["item"]) in _pairs(new)
    assert all(r["recommended"] and not r["duplicate"] for r in sent)
    # the feedback's own time: the clicks are the newest events of the user, from minutes ago
    ev = new.events
    mine_times = ev.time[ev.user == list(ev.users).index(key)]
    assert 0 <= pd.Timestamp.now("UTC").timestamp() - mine_times.max() < 600
    # a purchase weighs what a purchase weighs in the log (4), a click 1 (the log's defaults)
    item_code = list(ev.items.astype(str)).index(top[0])
    weights = ev.weight[(ev.user == list(ev.users).index(key)) & (ev.item == item_code)]
    assert sorted(weights.tolist()) == [1.0, 4.0]
    # what is recommended changes: the clicked items now count as owned and are left out
    before = [r["item"] for r in first.recommend(user=USER, k=10)["items"]]
    after = [r["item"] for r in new.recommend(user=USER, k=10)["items"]]
    assert before == top and not set(top[:3]) & set(after) and after != before
    assert new.info["lineage"]["data_source"].endswith("+ 5 feedback events")
    # retraining the new version again: its events hold the feedback, nothing is new
    code, out, err = run_cli(["retrain", "shop/2", "--registry-uri", reg.folder], capsys)
    assert code == 2 and "Traceback" not in err
    assert "every feedback event is already in its stored events" in err + out


def test_data_and_feedback_merge_without_counting_a_click_twice(served_feedback, tmp_path):
    reg, mine, *_ = served_feedback
    top = [row["item"] for row in mine["items"]]
    log = pd.read_csv(LOG)
    later = log.tail(40).reset_index(drop=True)
    now = pd.Timestamp.now("UTC")
    later["ts"] = [(now + pd.Timedelta(seconds=i)).isoformat() for i in range(len(later))]
    # the shop's own export holds one of the clicks too, seconds after the feedback
    later.loc[0, ["customer_id", "product_id", "event"]] = [int(USER), int(top[1]), "click"]
    later.loc[0, "quantity"] = None
    later.to_csv(tmp_path / "later.csv", index=False)
    result = retrain("shop/1", data=tmp_path / "later.csv", registry=reg, time_budget=20)
    assert result.rows_from_feedback == 4  # 5 events, the click of top[1] already in --data
    assert any("1 feedback events already known" in n for n in result.notes)
    assert result.rows_feedback_train + result.rows_feedback_compare == 40 + 4


def test_no_data_and_no_feedback_names_both(tmp_path, capsys):
    reg = Registry(tmp_path / "reg")
    train_recommender(LOG, items=ITEMS, name="quiet", registry=reg, families=["popular"],
                      n_trials=1, time_budget=10, report=False, progress=False)  # fmt: skip
    with pytest.raises(DataError, match="--data.*POST /v1/feedback.*got no click or purchase"):
        retrain("quiet", registry=reg)
    code, out, err = run_cli(["retrain", "quiet", "--registry-uri", tmp_path / "reg"], capsys)
    assert code == 2 and "--data" in err + out and "Traceback" not in err


def test_feedback_on_a_model_trained_anew_is_left_out(served_feedback):
    """A new `shipml train` under the same name keys its users with another salt: the answers
    of the old model cannot be joined to them."""
    reg, *_ = served_feedback
    train_recommender(LOG, items=ITEMS, name="shop", registry=reg, families=["popular"],
                      n_trials=1, time_budget=10, report=False, progress=False)  # fmt: skip
    with pytest.raises(DataError, match="5 feedback events on answers of a model trained anew"):
        retrain("shop", registry=reg)
