"""The transitions family (learners/transitions.py): T counts the items that follow each other
within a window, 1 / gap each, normalised and cut to the strongest neighbours; on a log whose
order says what comes next it beats the order-blind families and popularity, and its directed
form wins the validation there; where the order says nothing the search that has it loses
nothing; it stores as data and reads back into the same scores."""

from __future__ import annotations

import numpy as np
import pytest

from shipml.learners.base import Budget, RankFolds
from shipml.learners.ease import EASE
from shipml.learners.popularity import POPULARITY
from shipml.learners.registry import RECOMMENDERS
from shipml.learners.transitions import TRANSITIONS, transition_matrix
from shipml.recommend.interactions import Histories, Interactions
from shipml.recommend.protocol import split_log
from shipml.search import run_search

from .sequence_logs import chain_log
from .test_recommenders import _round_trip, shop_log


def _log(sequences: list[list[int]], n_items: int) -> Interactions:
    user = np.concatenate([[u] * len(s) for u, s in enumerate(sequences)]).astype(np.int32)
    item = np.concatenate(sequences).astype(np.int32)
    n = len(sequences)
    ids = np.array([f"u{k}" for k in range(n)], dtype=object)
    names = np.array([f"i{k}" for k in range(n_items)], dtype=object)
    ones, times = np.ones(len(user), np.float32), np.arange(len(user), dtype=float)
    return Interactions(ids, names, user, item, ones, times)


def test_counts_follow_the_window_and_the_gap():
    data = _log([[0, 1, 2], [1, 2]], 3)
    # forward pairs within 2 events: (0,1) 1, (1,2) 1 + 1, (0,2) 1/2; backward at 0.5
    counts = np.array([[0, 1, 0.5], [0.5, 0, 2], [0.25, 1, 0]])
    row, col = counts.sum(axis=1), counts.sum(axis=0)
    expected = counts / row[:, None] ** 0.75 / col[None, :] ** 0.25
    got = transition_matrix(data, window=2, backward=0.5, neighbours=10).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    one = transition_matrix(data, window=1, backward=0.0, neighbours=10).toarray()
    assert one[0, 2] == 0 and one[1, 0] == 0 and one[0, 1] > 0  # gap 1, forward only


def test_each_item_keeps_its_strongest_neighbours():
    rng = np.random.default_rng(2)
    data = _log([list(rng.integers(0, 12, 30)) for _ in range(20)], 12)
    full = transition_matrix(data, window=3, backward=1.0, neighbours=12).toarray()
    cut = transition_matrix(data, window=3, backward=1.0, neighbours=4).toarray()
    for i in range(12):
        kept = np.flatnonzero(cut[i])
        assert len(kept) == min(4, np.count_nonzero(full[i]))
        np.testing.assert_allclose(cut[i, kept], full[i, kept])
        assert cut[i, kept].min() >= np.sort(full[i])[-4] - 1e-7


@pytest.fixture(scope="module")
def ordered():
    split = split_log(chain_log())
    return split, RankFolds(split.train, split.val, seed=0, metric="ndcg@10")


def _fits(fam, folds):
    return [fam.fit(folds, c, Budget.seconds(60)) for c in fam.configs(folds.data)]


def test_where_the_order_matters_it_beats_the_order_blind_families(ordered):
    _, folds = ordered
    both, forward = _fits(TRANSITIONS, folds)
    ease = EASE.fit(folds, EASE.configs(folds.data)[0], Budget.seconds(60))
    pop = POPULARITY.fit(folds, POPULARITY.configs(folds.data)[0], Budget.seconds(60))
    # the chain's next item follows the last one: directed rules win (measured 0.83 / 0.81)
    assert forward.score > both.score and forward.params["backward"] == 0.0
    assert forward.score > ease.score + 0.02 and forward.score > 4 * pop.score
    assert forward.params["tau"] is not None and forward.complete


def test_similar_items_are_the_chain_neighbours(ordered):
    split, folds = ordered
    fitted = _fits(TRANSITIONS, folds)[1].fitted
    seqs = folds.data.sequences()
    nxt = {}  # the most common follower of each item in the training events
    for s in seqs:
        for a, b in zip(s[:-1], s[1:]):
            nxt.setdefault(int(a), []).append(int(b))
    items = np.array(sorted(nxt)[:20])
    sim = fitted.similar(items)
    assert sim.shape == (20, folds.data.n_items)
    hits = [np.bincount(nxt[i]).argmax() in np.argsort(-row)[1:3] for i, row in zip(items, sim)]
    assert np.mean(hits) >= 0.9


def test_artifacts_read_back_into_the_same_scores(ordered, tmp_path):
    _, folds = ordered
    fitted = _fits(TRANSITIONS, folds)[0].fitted
    loaded = _round_trip(fitted, tmp_path)
    assert loaded.kind == "transitions" and loaded.tau == fitted.tau
    hist = folds.targets.history
    np.testing.assert_array_equal(loaded.scores(hist), fitted.scores(hist))
    items = np.array([0, 5, 9])
    np.testing.assert_array_equal(loaded.similar(items), fitted.similar(items))


def test_a_visitor_is_scored_from_the_items_given(ordered):
    _, folds = ordered
    fitted = _fits(TRANSITIONS, folds)[1].fitted
    hist = folds.targets.history.take(np.arange(10))
    visitors = Histories(np.full(10, -1), hist.matrix, hist.sequences)
    np.testing.assert_array_equal(fitted.scores(visitors), fitted.scores(hist))


@pytest.mark.parametrize("log", ["unordered", "shop"])
def test_where_the_order_does_not_matter_the_search_loses_nothing(log):
    data = chain_log(ordered=False) if log == "unordered" else shop_log()
    split = split_log(data)
    folds = RankFolds(split.train, split.val, seed=0, metric="ndcg@10")

    def best(families: str) -> float:
        result = run_search(split.train, None, metric="ndcg@10", budget=Budget.seconds(60),
                            seed=0, n_trials=4, families=families, folds=folds,
                            kind="recommend")  # fmt: skip
        return result.candidates[0].score

    without = best("popular,itemknn,ease")
    assert best("popular,itemknn,ease,transitions") >= without


def test_registered_before_the_transformer():
    names = list(RECOMMENDERS)
    assert names.index("transitions") == names.index("sasrec") - 1
    assert RECOMMENDERS["transitions"] is TRANSITIONS and TRANSITIONS.available() is None
