"""One evaluation summary: the model beside the popularity baseline on the same split, the
same numbers whatever the block size, JSON-able, examples without user IDs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shipml.learners.popularity import item_popularity
from shipml.recommend import metrics as M
from shipml.recommend.evaluation import evaluate_ranking
from shipml.recommend.protocol import split_log

from .logs_for_eval import cooccurrence_scorer, shop_log


@pytest.fixture(scope="module")
def split():
    return split_log(shop_log(n_users=300, n_items=400, seed=11), how="leave-last-out")


def test_the_summary_is_the_metrics_of_the_model_and_of_popularity(split):
    scorer = cooccurrence_scorer(split.train_val)
    out = evaluate_ranking(scorer, split.test, split.train_val)
    assert out["model"]["full"] == pytest.approx(
        M.ranking_metrics(scorer(split.test.history), split.test)
    )
    pop = np.broadcast_to(item_popularity(split.train_val), split.test.target.shape)
    assert out["popularity"]["full"] == pytest.approx(M.ranking_metrics(pop, split.test))
    assert out["users"] == len(split.test) and out["targets"] == split.test.target.nnz
    # a model that learned the taste clusters beats the best sellers, and shows more of the shop
    assert out["model"]["full"]["ndcg@10"] > 1.5 * out["popularity"]["full"]["ndcg@10"]
    assert out["model"]["coverage"]["10"] > out["popularity"]["coverage"]["10"]
    assert out["popularity"]["popularity_share"]["10"] > out["model"]["popularity_share"]["10"]
    assert out["popular_items"] == 4  # 1 % of 400 items
    assert json.loads(json.dumps(out)) == out


def test_blocks_of_users_give_the_same_summary(split):
    scorer = cooccurrence_scorer(split.train_val)
    whole = evaluate_ranking(scorer, split.test, split.train_val)
    blocks = evaluate_ranking(scorer, split.test, split.train_val, block_cells=7 * 400)
    assert blocks == whole


def test_sampled_figures_are_at_least_the_full_ones_with_one_held_out_item(split):
    out = evaluate_ranking(cooccurrence_scorer(split.train_val), split.test, split.train_val)
    for k in (5, 10, 20):
        assert out["model"]["sampled"][f"hr@{k}"] >= out["model"]["full"][f"hr@{k}"]
    assert out["model"]["sampled"]["hr@20"] > out["model"]["full"]["hr@20"]  # 400 items, 100 drawn


def test_by_history_length_covers_every_user_once(split):
    out = evaluate_ranking(cooccurrence_scorer(split.train_val), split.test, split.train_val)
    rows = out["by_history"]
    assert sum(r["users"] for r in rows) == out["users"]
    lengths = M.history_lengths(split.test.history)
    for r in rows:
        lo, hi = (
            (int(r["bucket"][:-1]), None)
            if r["bucket"].endswith("+")
            else map(int, r["bucket"].split("-"))
        )
        n = int(((lengths >= lo) & ((lengths <= hi) if hi else True)).sum())
        assert r["users"] == n and set(r["model"]) >= {"hr@10", "ndcg@10", "mrr"}


def test_examples_show_items_not_users(split):
    out = evaluate_ranking(
        cooccurrence_scorer(split.train_val), split.test, split.train_val, n_examples=4, seed=3
    )
    assert len(out["examples"]) == 4
    for e in out["examples"]:
        assert set(e) == {"history_length", "history", "held_out", "top", "hits"}
        held = {x["code"] for x in e["held_out"]}
        assert e["hits"] == [x["code"] in held for x in e["top"]]
        assert len(e["top"]) == 10 and all(x["id"].startswith("i") for x in e["top"])
        assert not {x["code"] for x in e["top"]} & {x["code"] for x in e["history"]}
    again = evaluate_ranking(
        cooccurrence_scorer(split.train_val), split.test, split.train_val, n_examples=4, seed=3
    )
    assert again["examples"] == out["examples"]
