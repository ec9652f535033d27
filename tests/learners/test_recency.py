"""Recency-weighted query histories (learners/recency.py) for EASE and item-kNN: the weights are
exp(-r / tau) of each item's latest position; on a log whose order says what comes next the
validation users choose a decay and the test users gain from it; where the order says nothing
the choice loses nothing on the test users; the decay is stored with the model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from shipml.learners.base import Budget, RankFolds
from shipml.learners.ease import EASE
from shipml.learners.itemknn import ITEMKNN
from shipml.learners.recency import TAUS, recency_weighted
from shipml.recommend.interactions import Histories
from shipml.recommend.metrics import metric_at
from shipml.recommend.protocol import split_log

from .sequence_logs import chain_log
from .test_recommenders import _round_trip, shop_log

FAMILIES = [EASE, ITEMKNN]


def test_weights_decay_from_the_latest_event():
    # user 0: items 2, 0, 2, 1 (item 2 twice: its latest position counts), confidence 2 on 2
    m = sp.csr_matrix(np.array([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 3.0]], np.float32))
    h = Histories(np.array([0, 1]), m, [np.array([2, 0, 2, 1]), np.array([3])])
    got = recency_weighted(h, 2.0).toarray()
    e = np.exp(-np.arange(4) / 2.0)
    np.testing.assert_allclose(got, [[e[2], e[0], 2 * e[1], 0.0], [0.0, 0.0, 0.0, 3.0]],
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(recency_weighted(h, None).toarray(), m.toarray())
    assert TAUS[0] is None  # no decay first: it wins ties


def _test_ndcg(fam, split, tau="chosen") -> tuple[float, float | None]:
    folds = RankFolds(split.train, split.val, seed=0, metric="ndcg@10")
    cand = fam.fit(folds, fam.configs(folds.data)[0], Budget.seconds(60))
    refit = fam.refit(replace(cand), split.train_val, 0, Budget.seconds(60)).fitted
    if tau != "chosen":
        refit = replace(refit, tau=tau)
    return metric_at("ndcg@10", refit.scores(split.test.history), split.test), cand.params["tau"]


@pytest.fixture(scope="module")
def splits():
    return {"ordered": split_log(chain_log()), "unordered": split_log(chain_log(ordered=False)),
            "shop": split_log(shop_log())}  # fmt: skip


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_a_decay_is_chosen_where_the_order_matters(splits, fam):
    chosen, tau = _test_ndcg(fam, splits["ordered"])
    plain, _ = _test_ndcg(fam, splits["ordered"], tau=None)
    assert tau is not None and tau <= 10
    assert chosen > 1.5 * plain, (chosen, plain)  # measured: 0.79 against 0.44 / 0.36


@pytest.mark.parametrize("log", ["unordered", "shop"])
@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_the_choice_loses_nothing_where_the_order_does_not(splits, fam, log):
    chosen, tau = _test_ndcg(fam, splits[log])
    plain, _ = _test_ndcg(fam, splits[log], tau=None)
    if log == "unordered":
        assert tau is None  # random order within each user: no decay beats none
    assert chosen >= 0.97 * plain, (chosen, plain, tau)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_the_decay_is_stored(splits, fam, tmp_path):
    split = splits["ordered"]
    folds = RankFolds(split.train, split.val, seed=0, metric="ndcg@10")
    fitted = fam.fit(folds, fam.configs(folds.data)[0], Budget.seconds(60)).fitted
    loaded = _round_trip(fitted, tmp_path)
    assert loaded.tau == fitted.tau is not None
    hist = folds.targets.history
    np.testing.assert_array_equal(loaded.scores(hist), fitted.scores(hist))
    meta, _ = fitted.artifacts("m")
    meta.pop("tau")  # a model stored before the decay existed: none
    assert fam.load({**meta}, _Reader(fitted), "recommend").tau is None


class _Reader:
    """The fitted's own arrays, served as a stored model's reader would."""

    def __init__(self, fitted) -> None:
        self.files = fitted.artifacts("m")[1]

    def read_npy(self, name):
        return self.files[name]
