"""Ensemble selection (ensemble.py) on synthetic out-of-fold scores whose right answer is known:
members that err on different rows are averaged, noise is left out, and models the deadline
cut short or trained on another target transform never join."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shipml.ensemble import select_ensemble
from shipml.learners.base import Candidate
from shipml.search import SearchResult


def _cand(name: str, oof: np.ndarray, y: np.ndarray, metric: str = "roc_auc", **kw) -> Candidate:
    from shipml.scoring import score

    task = "regression" if metric == "rmse" else "binary"
    value = score(metric, task, y, oof, kw.get("transform", "none"))
    return Candidate(name, {}, value, oof, None, 1.0, family=name.split("#")[0], **kw)


def _result(metric: str, cands: list[Candidate]) -> SearchResult:
    sign = -1 if metric == "roc_auc" else 1
    return SearchResult(metric, sorted(cands, key=lambda c: sign * c.score))


@pytest.fixture()
def binary():
    """y, and two scorers that each see the signal on one half of the rows only."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    signal = 2.0 * (y - 0.5)
    half = np.arange(len(y)) < len(y) // 2
    a = np.where(half, signal, 0.0) + rng.normal(size=len(y))
    b = np.where(~half, signal, 0.0) + rng.normal(size=len(y))
    return y, a, b, rng


def test_members_that_err_on_different_rows_are_averaged(binary):
    y, a, b, _ = binary
    ens = select_ensemble(_result("roc_auc", [_cand("a", a, y), _cand("b", b, y)]), y, "binary")
    assert {m.name for m in ens.members} == {"a", "b"}
    assert sum(ens.weights) == pytest.approx(1.0)
    assert min(ens.weights) >= 0.3  # symmetric halves: close to an even split
    raw = ens.raw_oof()
    assert ens.score == pytest.approx(roc_auc_score(y, raw))
    assert ens.score > ens.single_best_score + 0.02  # the average beats either alone


def test_copies_of_the_best_add_nothing_and_noise_gets_little(binary):
    y, a, _, rng = binary
    strong = a + np.where(np.arange(len(y)) >= len(y) // 2, 2.0 * (y - 0.5), 0.0)
    copies = [_cand(f"copy#{i}", strong.copy(), y) for i in range(3)]
    ens = select_ensemble(_result("roc_auc", [_cand("strong", strong, y), *copies]), y, "binary")
    assert len(ens.members) == 1 and ens.weights == [1.0]  # no average beats it: alone
    assert ens.score == ens.single_best_score == pytest.approx(roc_auc_score(y, strong))
    # pure noise may win a lucky sliver on the rows the weights are chosen on, no more
    noise = [_cand(f"noise#{i}", rng.normal(size=len(y)), y) for i in range(4)]
    ens = select_ensemble(_result("roc_auc", [_cand("strong", strong, y), *noise]), y, "binary")
    assert ens.members[0].name == "strong" and ens.weights[0] >= 0.9


def test_cut_short_or_other_transform_candidates_never_join(binary):
    y, a, b, _ = binary
    cut = _cand("b", b, y, complete=False)
    logged = _cand("c", b, y, transform="log")
    ens = select_ensemble(_result("roc_auc", [_cand("a", a, y), cut, logged]), y, "binary")
    assert [m.name for m in ens.members] == ["a"]


def test_regression_averages_independent_errors_in_raw_space():
    rng = np.random.default_rng(1)
    y = rng.normal(10.0, 3.0, 1500)
    a, b = y + rng.normal(0, 1.0, len(y)), y + rng.normal(0, 1.0, len(y))
    far = y + rng.normal(0, 4.0, len(y))
    cands = [_cand("a", a, y, "rmse"), _cand("b", b, y, "rmse"), _cand("far", far, y, "rmse")]
    ens = select_ensemble(_result("rmse", cands), y, "regression")
    weights = dict(zip([m.name for m in ens.members], ens.weights))
    assert set(weights) >= {"a", "b"} and weights.get("far", 0.0) < 0.2
    # two equally good, independent errors: the mean has about 1/sqrt(2) of their error
    assert ens.score == pytest.approx(np.sqrt(np.mean((ens.raw_oof() - y) ** 2)))
    assert ens.score < 0.8 * ens.single_best_score
