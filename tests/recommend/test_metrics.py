"""Full-ranking metrics against independent references (sklearn's ndcg_score, a brute-force
sort, hand-computed cases), sampled-100, coverage, popularity share, history buckets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from shipml.recommend import metrics as M
from shipml.recommend.interactions import Histories, RankTargets


def targets_of(history: list[list[int]], held: list[list[int]], n_items: int) -> RankTargets:
    def csr(rows):
        r = [u for u, xs in enumerate(rows) for _ in xs]
        c = [x for xs in rows for x in xs]
        return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), n_items))

    seqs = [np.array(h, dtype=np.int32) for h in history]
    return RankTargets(Histories(np.arange(len(history)), csr(history), seqs), csr(held))


def random_case(n_users=40, n_items=60, seed=0):
    """Untied scores (a permutation per user), 0-8 seen items, 1-3 held-out unseen items."""
    rng = np.random.default_rng(seed)
    scores = np.stack([rng.permutation(n_items) for _ in range(n_users)]).astype(np.float32)
    history, held = [], []
    for _ in range(n_users):
        items = rng.permutation(n_items)
        n_seen, n_held = rng.integers(0, 9), rng.integers(1, 4)
        history.append(sorted(items[:n_seen].tolist()))
        held.append(sorted(items[n_seen : n_seen + n_held].tolist()))
    return scores, targets_of(history, held, n_items), history, held


def reference(scores, history, held, k):
    """Per user, with the seen items removed: sklearn NDCG@k; HR, recall, MRR by sorting."""
    ndcg, hr, recall, rr = [], [], [], []
    for u, row in enumerate(scores):
        keep = np.setdiff1d(np.arange(len(row)), history[u])
        rel = np.isin(keep, held[u]).astype(float)
        ndcg.append(ndcg_score(rel[None, :], row[keep][None, :], k=k))
        order = keep[np.argsort(-row[keep])]
        ranks = 1 + np.flatnonzero(np.isin(order, held[u]))
        hr.append(float((ranks <= k).any()))
        recall.append(float((ranks <= k).mean()))
        rr.append(1.0 / ranks.min())
    return np.mean(ndcg), np.mean(hr), np.mean(recall), np.mean(rr)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_ranking_metrics_match_sklearn_ndcg_and_a_brute_force_sort(seed):
    scores, targets, history, held = random_case(seed=seed)
    got = M.ranking_metrics(scores, targets)
    for k in (5, 10, 20):
        ndcg, hr, recall, mrr = reference(scores, history, held, k)
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg, abs=1e-9)
        assert got[f"hr@{k}"] == pytest.approx(hr)
        assert got[f"recall@{k}"] == pytest.approx(recall)
        assert M.metric_at(f"ndcg@{k}", scores, targets) == pytest.approx(ndcg, abs=1e-9)
    assert got["mrr"] == pytest.approx(mrr)
    assert M.metric_at("mrr", scores, targets) == pytest.approx(mrr)


def test_blocks_of_rows_give_the_same_ranks(monkeypatch):
    scores, targets, *_ = random_case(n_users=30, seed=3)
    whole = M.target_ranks(scores, targets)
    monkeypatch.setattr(M, "_BLOCK_CELLS", 100)  # one or two entries per block
    rows, ranks = M.target_ranks(scores, targets)
    assert np.array_equal(rows, whole[0]) and np.array_equal(ranks, whole[1])
    per_user = M.ranks_of_targets(scores, targets)
    assert [len(r) for r in per_user] == np.bincount(rows, minlength=30).tolist()


def test_a_hand_computed_ranking():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]], dtype=np.float32)
    # item 0 is the user's own (masked): the ranking is 1, 2, 3, 4; held out: 2 and 4
    t = targets_of([[0]], [[2, 4]], 5)
    assert [r.tolist() for r in M.ranks_of_targets(scores, t)] == [[2, 4]]
    m = M.ranking_metrics(scores, t, ks=(1, 2, 5))
    assert m["hr@1"] == 0.0 and m["hr@2"] == 1.0
    assert m["recall@2"] == 0.5 and m["recall@5"] == 1.0
    assert m["ndcg@2"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert m["ndcg@5"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3)))
    assert m["mrr"] == 0.5


def test_ties_count_against_the_held_out_item_and_nan_ranks_last():
    t = targets_of([[0], [1]], [[3], [2]], 6)
    flat = np.ones((2, 6), dtype=np.float32)
    # a constant scorer: the held-out item is behind the 5 unseen items (itself included)
    assert [r.tolist() for r in M.ranks_of_targets(flat, t)] == [[5], [5]]
    assert M.ranking_metrics(flat, t, ks=(4,))["hr@4"] == 0.0
    s = np.arange(12, dtype=np.float32).reshape(2, 6)
    s[0, 3] = np.nan
    assert M.ranks_of_targets(s, t)[0].tolist() == [6]


def test_a_held_out_item_the_user_already_had_is_ignored():
    scores = np.array([[0.1, 0.9, 0.5, 0.3]], dtype=np.float32)
    t = targets_of([[1]], [[1, 3]], 4)  # 1 is a repeat: only 3 counts (rank 2 after 2)
    assert M.ranks_of_targets(scores, t)[0].tolist() == [2]
    assert M.ranking_metrics(scores, t)["mrr"] == 0.5
    only_repeat = targets_of([[1]], [[1]], 4)
    assert M.ranking_metrics(scores, only_repeat) == {}
    assert np.isnan(M.metric_at("ndcg@10", scores, only_repeat))


def test_sampled_negatives_are_items_the_user_never_had_and_seeded():
    t = targets_of([[0, 1], [2]], [[5], [3, 4]], 200)
    rows, neg = M.sample_negatives(t, n=100, seed=7)
    assert rows.tolist() == [0, 1, 1] and neg.shape == (3, 100)
    for e, u in enumerate(rows):
        own = {0, 1, 5} if u == 0 else {2, 3, 4}
        assert len(set(neg[e].tolist())) == 100 and not own & set(neg[e].tolist())
        assert neg[e].min() >= 0 and neg[e].max() < 200
    assert np.array_equal(M.sample_negatives(t, n=100, seed=7)[1], neg)
    assert not np.array_equal(M.sample_negatives(t, n=100, seed=8)[1], neg)
    # fewer free items than asked: every free item, then -1 padding
    small = targets_of([[0, 1]], [[2]], 6)
    _, few = M.sample_negatives(small, n=5, seed=0)
    assert sorted(few[0][few[0] >= 0].tolist()) == [3, 4, 5] and (few[0] == -1).sum() == 2


def test_sampled_rank_counts_the_negatives_scored_at_least_as_high():
    t = targets_of([[0]], [[5]], 200)
    rng = np.random.default_rng(0)
    scores = rng.random((1, 200)).astype(np.float32)
    rows, neg = M.sample_negatives(t, n=100, seed=1)
    _, ranks = M.sampled_ranks(scores, t, neg)
    assert ranks.tolist() == [1 + int((scores[0, neg[0]] >= scores[0, 5]).sum())]
    m = M.sampled_metrics(np.array([0, 0, 1]), np.array([1, 3, 20]), ks=(1, 5))
    assert m["hr@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["hr@5"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / np.log2(4)) / 2 / 2)
    assert m["mrr"] == pytest.approx(((1 + 1 / 3) / 2 + 1 / 20) / 2)


def test_coverage_and_popularity_share_by_hand():
    top = np.array([[0, 1, 2], [1, 2, -1], [7, 0, 1]])
    assert M.coverage(top, 10) == pytest.approx(4 / 10)
    popularity = np.zeros(200)
    popularity[[1, 7]] = [50, 40]  # 1 % of 200 items: the 2 most popular, 1 and 7
    popular = M.top_popular(popularity, 0.01)
    assert sorted(popular.tolist()) == [1, 7]
    assert M.popularity_share(top, popular) == pytest.approx(4 / 8)  # 8 filled slots
    assert M.top_popular(np.array([3.0, 9.0, 1.0]), 0.01).tolist() == [1]  # at least one


def test_history_length_buckets():
    lengths = np.array([1, 2, 3, 5, 6, 10, 11, 20, 21, 300])
    assert M.bucket_of(lengths).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    labels = [M.history_bucket(lo, hi) for lo, hi in M.HISTORY_BUCKETS]
    assert labels == ["1-2", "3-5", "6-10", "11-20", "21+"]
    t = targets_of([[0, 1, 2], [3]], [[5], [6]], 8)
    assert M.history_lengths(t.history).tolist() == [3, 1]


def test_metric_curve_is_the_metrics_at_each_k():
    scores, targets, *_ = random_case(seed=4)
    rows, ranks = M.target_ranks(scores, targets)
    curve = M.metric_curve(rows, ranks, 20)
    full = M.ranking_metrics(scores, targets)
    for k in (5, 10, 20):
        assert curve["ndcg"][k - 1] == pytest.approx(full[f"ndcg@{k}"])
        assert curve["hr"][k - 1] == pytest.approx(full[f"hr@{k}"])
    assert all(a <= b for a, b in zip(curve["hr"], curve["hr"][1:]))
