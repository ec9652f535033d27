"""RecModel: the answers (known user, session, popular; exclude, filter, item fields, unknown
items, k), similar items (members; the text fallback for a new item), storage through a real
registry (identical answers, no pickle, no raw user ID) and evaluate on later events."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from tests.recommend.synthetic_log import PER_CATEGORY, shop_log

import shipml
from shipml.errors import DataError, UsageError
from shipml.recommend.log import read_log
from shipml.recommend.training import pseudonymized, train_recommender
from shipml.registry.store import Registry

COLUMNS = {"user": "customer", "item": "product", "time": "ts"}


def with_items(log: pd.DataFrame, items: pd.DataFrame):
    """The log read with the item table in item-code order, table-only items coded last (what
    read_log(items=...) gives: recommend/log.py)."""
    inter, spec = read_log(log, **COLUMNS)
    if inter.item_table is None:
        table = items.assign(product=items["product"].astype(str)).set_index("product")
        extra = sorted(set(table.index) - set(inter.items), key=int)
        inter.items = np.array([*inter.items, *extra], dtype=object)
        inter.item_table = table.reindex(pd.Index(inter.items, dtype=object))
    return inter, spec.to_dict()


@pytest.fixture(scope="module")
def data():
    log, items = shop_log(seed=3)
    return log, items


@pytest.fixture(scope="module")
def model(data, encoder, tmp_path_factory):
    log, items = data
    inter, spec = with_items(log, items)
    root = tmp_path_factory.mktemp("recreg")
    reg = Registry(f"sqlite:///{root}/r.db", artifact_root=root / "a")
    prepared = (pseudonymized(inter, "salt"), spec, "salt", "<test>", None)
    return train_recommender(None, prepared=prepared, name="shop", registry=reg,
                             families="popular,itemknn", n_trials=4, time_budget=60,
                             encoder=encoder, report=False), reg  # fmt: skip


def category(answer) -> Counter:
    return Counter(i["category"] for i in answer["items"])


def test_known_user_gets_new_items_with_their_fields(model, data):
    m, _ = model
    log, _ = data
    user = "c5"  # category index 1: running
    had = set(log.loc[log["customer"] == user, "product"].astype(str))
    answer = m.recommend(user=user, k=10)
    assert answer["fallback"] is None and answer["unknown_items"] == []
    assert len(answer["items"]) == 10
    assert not had & {i["item"] for i in answer["items"]}
    first = answer["items"][0]
    assert {"item", "score", "name", "category", "in_stock", "description"} <= set(first)
    assert category(answer).most_common(1)[0][0] == "running"
    scores = [i["score"] for i in answer["items"]]
    assert scores == sorted(scores, reverse=True)


def test_basket_of_an_unknown_visitor_is_a_session(model):
    m, _ = model
    basket = [str(2 * PER_CATEGORY + j) for j in (2, 3, 4)]  # garden items
    answer = m.recommend(user="someone new", items=basket, k=8)
    assert answer["fallback"] == "session"
    assert not set(basket) & {i["item"] for i in answer["items"]}
    assert category(answer).most_common(1)[0][0] == "garden"


def test_known_user_with_a_basket_gets_neither_their_items_nor_the_basket(model, data):
    m, _ = model
    log, _ = data
    had = set(log.loc[log["customer"] == "c5", "product"].astype(str))
    basket = ["33", "34"]
    answer = m.recommend(user="c5", items=basket, k=10)
    assert answer["fallback"] is None
    assert not (had | set(basket)) & {i["item"] for i in answer["items"]}
    assert answer != m.recommend(user="c5", k=10)


def test_neither_user_nor_items_gets_recent_popular(model):
    m, _ = model
    answer = m.recommend(k=5)
    assert answer["fallback"] == "popular"
    expected = [str(m.items[i]) for i in np.argsort(-m.popular, kind="stable")[:5]]
    assert [i["item"] for i in answer["items"]] == expected
    assert m.recommend(user="nobody", k=5) == answer


def test_unknown_item_ids_are_ignored_and_listed(model):
    m, _ = model
    answer = m.recommend(items=["9999", "3", "nope"], k=5)
    assert answer["fallback"] == "session"
    assert answer["unknown_items"] == ["9999", "nope"]
    only_unknown = m.recommend(items=["nope"], exclude=["gone"], k=5)
    assert only_unknown["fallback"] == "popular"
    assert only_unknown["unknown_items"] == ["nope", "gone"]


def test_exclude_removes_items(model):
    m, _ = model
    first = m.recommend(user="c5", k=5)
    drop = [first["items"][0]["item"], first["items"][2]["item"]]
    again = m.recommend(user="c5", k=5, exclude=drop)
    assert not set(drop) & {i["item"] for i in again["items"]}
    assert again["items"][0]["item"] == first["items"][1]["item"]


def test_filter_on_item_table_columns(model):
    m, _ = model
    tea = m.recommend(user="c5", k=6, filter={"category": "tea"})
    assert len(tea["items"]) == 6 and set(category(tea)) == {"tea"}
    two = m.recommend(k=20, filter={"category": ["tea", "Books"]})
    assert set(category(two)) == {"tea", "books"}
    for flag in (True, "true", 1, "yes"):
        stocked = m.recommend(user="c5", k=10, filter={"in_stock": flag})
        assert all(i["in_stock"] is True for i in stocked["items"])
    both = m.recommend(user="c5", k=10, filter={"in_stock": False, "category": "running"})
    assert all(not i["in_stock"] and i["category"] == "running" for i in both["items"])


def test_filter_errors_name_the_column(model):
    m, _ = model
    with pytest.raises(UsageError, match="'colour'.*its columns: name, category, in_stock"):
        m.recommend(user="c5", filter={"colour": "red"})
    with pytest.raises(UsageError, match="filter must be a mapping"):
        m.recommend(user="c5", filter="tea")
    with pytest.raises(UsageError, match="'category': give a value"):
        m.similar("3", filter={"category": []})


def test_filter_without_an_item_table(data):
    log, _ = data
    inter, spec = read_log(log, **COLUMNS)
    prepared = (pseudonymized(inter, "s"), spec.to_dict(), "s", "<test>", None)
    m = train_recommender(None, prepared=prepared, families="popular", time_budget=30)
    with pytest.raises(UsageError, match="'category'.*without an item table"):
        m.recommend(k=3, filter={"category": "tea"})
    assert set(m.recommend(k=3)["items"][0]) == {"item", "score"}


@pytest.mark.parametrize("k", [0, 1001, "5", True, 2.0, None])
def test_k_is_checked(model, k):
    m, _ = model
    with pytest.raises(UsageError, match="k must be an integer from 1 to 1000"):
        m.recommend(user="c5", k=k)
    with pytest.raises(UsageError, match="k must be an integer from 1 to 1000"):
        m.similar("3", k=k)


def test_similar_by_the_members(model):
    m, _ = model
    item = str(3 * PER_CATEGORY + 4)  # books
    answer = m.similar(item, k=6)
    assert answer["fallback"] is None
    assert item not in {i["item"] for i in answer["items"]}
    assert category(answer).most_common(1)[0][0] == "books"
    assert set(category(m.similar(item, k=4, filter={"category": "tea"}))) == {"tea"}


def test_similar_for_a_new_item_uses_its_text(model):
    m, _ = model
    new = str(4 * PER_CATEGORY + 2)  # "New running item": in the item table, no events
    assert m._counts[m.catalog.index[new]] == 0
    answer = m.similar(new, k=5)
    assert answer["fallback"] == "text"
    assert set(category(answer)) == {"running"}
    assert new not in {i["item"] for i in answer["items"]}
    with pytest.raises(DataError, match="'nope' is not in the model's catalogue"):
        m.similar("nope")


def test_round_trip_through_the_registry_gives_identical_answers(model):
    m, reg = model
    loaded = shipml.load("shop", registry=reg)
    assert type(loaded) is type(m) and loaded.task == "recommend" and loaded.version == 1
    new = str(4 * PER_CATEGORY + 1)
    for call in (lambda x: x.recommend(user="c7", k=10),
                 lambda x: x.recommend(items=["3", "4", "nope"], k=7, exclude=["5"]),
                 lambda x: x.recommend(k=4, filter={"in_stock": True, "category": "tea"}),
                 lambda x: x.similar("12", k=5),
                 lambda x: x.similar(new, k=5)):  # fmt: skip
        assert call(loaded) == call(m)


def test_artifact_folder_holds_data_only(model, data):
    m, reg = model
    folder = reg.resolve("shop").artifact_dir
    names = sorted(p.name for p in folder.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())["files"]
    assert set(names) - {"manifest.json"} == set(manifest)
    assert {"ids.json", "items.json", "item_text.npy", "popular.npy", "model.json"} <= set(names)
    for name in names:
        assert name.rsplit(".", 1)[1] in ("json", "npy", "html", "safetensors"), name
        if name.endswith(".npy"):
            np.load(folder / name, allow_pickle=False)
        assert not (folder / name).read_bytes().startswith(b"\x80"), f"{name} is a pickle"
    ids = (folder / "ids.json").read_text()
    log, _ = data
    assert not any(f'"{u}"' in ids for u in log["customer"].unique()), "raw user IDs stored"


def test_evaluate_on_later_events(model, data):
    m, _ = model
    log, _ = data
    later = pd.DataFrame({"customer": ["c5", "c5", "c9", "stranger", "c9"],
                          "product": ["16", "17", "40", "3", "777"],
                          "ts": pd.Timestamp("2025-06-01", tz="UTC")})  # fmt: skip
    had = set(log.loc[log["customer"] == "c5", "product"].astype(str))
    result = m.evaluate(later, k=10)
    assert result["unknown_users"] == 1 and result["unknown_items"] == 1
    assert result["events"] == 5
    assert result["events_scored"] + result["repeat_events"] == 3
    assert result["repeat_events"] == len({"16", "17"} & had) + ("40" in set(
        log.loc[log["customer"] == "c9", "product"].astype(str)))  # fmt: skip
    assert 0.0 <= result["model"]["full"]["ndcg@10"] <= 1.0
    assert "ndcg@10" in result["popularity"]["full"]
    with pytest.raises(DataError, match="nothing to evaluate"):
        m.evaluate(later.assign(customer=["x", "y", "x", "y", "x"]))


def test_answers_never_load_torch(model):
    """The text fallback reads the stored item vectors: a request loads no PyTorch."""
    import subprocess
    import sys

    _, reg = model
    new = str(4 * PER_CATEGORY + 3)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from shipml.registry.store import Registry\n"
        "from shipml.api import load\n"
        f"reg = Registry({str(reg.engine.url)!r}, artifact_root=Path({str(reg.artifact_root)!r}))\n"
        "m = load('shop', registry=reg)\n"
        f"assert m.similar({new!r}, k=3)['fallback'] == 'text'\n"
        "m.recommend(user='c1', k=3); m.recommend(items=['3'], k=3, filter={'category': 'tea'})\n"
        "print(sorted(x for x in ('torch', 'transformers') if x in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_short_budget_skips_the_item_texts_and_says_so(data):
    log, items = data
    inter, spec = with_items(log, items)
    prepared = (pseudonymized(inter, "s"), spec, "s", "<test>", None)
    m = train_recommender(None, prepared=prepared, families="popular", time_budget=20)
    assert m.catalog.text_vectors is None
    assert any("item texts not embedded" in n for n in m.info["notes"])
    new = str(4 * PER_CATEGORY + 1)
    with pytest.raises(DataError, match="texts were not embedded at training"):
        m.similar(new)
    assert m.recommend(k=2, filter={"category": "tea"})["items"][0]["category"] == "tea"
