"""The classical recommender families (learners/itemknn.py, ease.py, implicit_mf.py) on a
seeded synthetic shop log with real structure (users in taste clusters, a long-tailed item
popularity, some global-popularity noise): each ranks the held-out items better than the
popularity floor, stores as data only and reads back into the same scores, honours its seed,
and ALS/BPR stop at the budget's deadline."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from shipml.learners.base import Budget, Config, RankFolds
from shipml.learners.ease import EASE, ease_weights
from shipml.learners.implicit_mf import ALS, BPR, fold_in
from shipml.learners.itemknn import ITEMKNN, item_similarity
from shipml.learners.popularity import POPULARITY
from shipml.learners.registry import RECOMMENDERS, load_fitted
from shipml.recommend.interactions import Histories, Interactions
from shipml.recommend.protocol import split_log

CLASSICAL = [ITEMKNN, EASE, ALS, BPR]


def taste_clusters(rng, n_items: int, n_clusters: int) -> list[np.ndarray]:
    return [rng.choice(n_items, n_items // 8, replace=False) for _ in range(n_clusters)]


def shop_log(seed=0, n_users=500, n_items=300, n_clusters=8) -> Interactions:
    """Each user belongs to a taste cluster (a random eighth of the catalogue) and picks 90 % of
    8-30 events from it, the rest from the whole catalogue; items' popularity is Zipf-like."""
    rng = np.random.default_rng(seed)
    pop = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.8)
    clusters = taste_clusters(rng, n_items, n_clusters)
    users, items, times = [], [], []
    for u in range(n_users):
        liked = clusters[rng.integers(n_clusters)]
        n = int(rng.integers(8, 30))
        own = rng.random(n) < 0.9
        picks = np.where(own, rng.choice(liked, n, p=pop[liked] / pop[liked].sum()),
                         rng.choice(n_items, n, p=pop / pop.sum()))  # fmt: skip
        start = 1.7e9 + rng.uniform(0, 30 * 86400)
        users += [u] * n
        items += list(picks)
        times += list(start + 3600.0 * np.arange(n) + rng.uniform(0, 60, n))
    order = np.argsort(times, kind="stable")
    return Interactions(np.array([f"u{k}" for k in range(n_users)], dtype=object),
                        np.array([f"i{k}" for k in range(n_items)], dtype=object),
                        np.asarray(users, np.int32)[order], np.asarray(items, np.int32)[order],
                        np.ones(len(users), np.float32), np.asarray(times)[order])  # fmt: skip


def clusters_of(seed=0, n_items=300, n_clusters=8) -> list[np.ndarray]:
    """The taste clusters `shop_log(seed)` drew (the same first draws of its generator)."""
    rng = np.random.default_rng(seed)
    rng.permutation(n_items)
    return taste_clusters(rng, n_items, n_clusters)


@pytest.fixture(scope="module")
def split():
    return split_log(shop_log())


@pytest.fixture(scope="module")
def folds(split):
    return RankFolds(split.train, split.val, seed=0, metric="ndcg@10")


@pytest.fixture(scope="module")
def floor(folds):
    return POPULARITY.fit(folds, POPULARITY.configs(folds.data)[0], Budget.seconds(60)).score


@pytest.fixture(scope="module")
def fitted(folds):
    """Each classical family's first (default) configuration, fitted on the training events."""
    return {f.name: f.fit(folds, f.configs(folds.data)[0], Budget.seconds(600)) for f in CLASSICAL}


def test_registered_after_popularity():
    assert list(RECOMMENDERS)[:5] == ["popular", "itemknn", "ease", "als", "bpr"]
    assert sum(f.floor for f in RECOMMENDERS.values()) == 1
    for fam in CLASSICAL:
        assert RECOMMENDERS[fam.name] is fam and fam.available() is None  # implicit is here


@pytest.mark.parametrize("name", ["itemknn", "ease", "als", "bpr"])
def test_each_family_beats_popularity_on_validation(fitted, folds, floor, name):
    cand = fitted[name]
    assert cand.family == name and cand.complete
    assert cand.oof.shape == (len(folds.targets), 300)
    # the taste clusters are there to be found: well above the popularity floor (~0.07)
    assert cand.score > 1.5 * floor, (name, cand.score, floor)


@pytest.mark.parametrize("name", ["itemknn", "ease", "als", "bpr"])
def test_similar_items_share_a_taste_cluster(fitted, folds, name):
    clusters = clusters_of()
    member = np.zeros((folds.data.n_items, len(clusters)), dtype=bool)
    for c, items in enumerate(clusters):
        member[items, c] = True
    counts = np.bincount(folds.data.item, minlength=folds.data.n_items)
    probe = np.flatnonzero((member.sum(axis=1) == 1) & (counts >= 30))[:20]
    sim = fitted[name].fitted.similar(probe)
    assert sim.shape == (len(probe), folds.data.n_items)
    shared = []
    for row, item in zip(sim, probe):
        row[item] = -np.inf
        top = np.argsort(-row)[:10]
        shared.append(np.mean(member[top] @ member[item]))
    # a random item shares a cluster about 1 time in 8; a similar one nearly always does
    assert np.mean(shared) > 0.8, (name, np.mean(shared))


def _round_trip(fitted, tmp_path):
    from shipml.registry.artifacts import ArtifactWriter
    from shipml.registry.formats import ArtifactReader

    meta, files = fitted.artifacts("member0")
    assert all(not isinstance(v, np.ndarray) or v.dtype != object for v in files.values())
    writer = ArtifactWriter(tmp_path / "w")
    for name, content in files.items():
        writer.write(name, content)
    writer.finish()
    reader = ArtifactReader(writer.publish(tmp_path / "v1"))
    return load_fitted({**meta, "prefix": "member0"}, reader, "recommend")


@pytest.mark.parametrize("name", ["itemknn", "ease", "als", "bpr"])
def test_artifacts_read_back_into_the_same_scores(fitted, folds, name, tmp_path, monkeypatch):
    fit = fitted[name].fitted
    monkeypatch.setitem(sys.modules, "implicit", None)  # the stored model scores without it
    loaded = _round_trip(fit, tmp_path)
    assert loaded.kind == fit.kind == name
    hist = folds.targets.history
    np.testing.assert_array_equal(loaded.scores(hist), fit.scores(hist))
    items = np.array([0, 7, 42])
    np.testing.assert_array_equal(loaded.similar(items), fit.similar(items))
    assert loaded.scores(hist).dtype == np.float32


@pytest.mark.parametrize("fam", [ALS, BPR], ids=["als", "bpr"])
def test_same_seed_same_scores(folds, fam):
    config = fam.configs(folds.data)[0]
    small = Config(config.name, {**config.params, "iterations": 5})
    a, b = (fam.fit(folds, small, Budget.seconds(600)) for _ in range(2))
    np.testing.assert_array_equal(a.oof, b.oof)
    other = RankFolds(folds.data, folds.targets, seed=1, metric=folds.metric)
    assert not np.array_equal(fam.fit(other, small, Budget.seconds(600)).oof, a.oof)


@pytest.mark.parametrize("fam", [ALS, BPR], ids=["als", "bpr"])
def test_deadline_stops_the_epochs(folds, fam):
    ticks = itertools.count()  # the clock moves one second each time it is read
    budget = Budget(2.5, lambda: next(ticks))
    config = fam.configs(folds.data)[0]
    cand = fam.fit(folds, config, budget)
    assert not cand.complete
    # read after epochs 1-4 at 0, 1, 2, 3 s: the deadline passed during the fourth
    assert cand.fitted.epochs == 4 < config.params["iterations"]
    assert np.isfinite(cand.score)
    refit = fam.refit(cand, folds.data, 0, Budget(0.5, lambda: next(ticks)))  # already past
    assert refit.fitted.epochs == 1 and not refit.complete  # an epoch always runs


def test_ease_is_the_closed_form():
    rng = np.random.default_rng(3)
    X = sp.csr_matrix(
        (rng.random((30, 12)) < 0.3).astype(np.float32) * rng.integers(1, 4, (30, 12))
    )
    lam = 2.5
    P = np.linalg.inv(X.T.toarray() @ X.toarray() + lam * np.eye(12))
    expected = np.eye(12) - P / np.diag(P)[None, :]
    np.fill_diagonal(expected, 0.0)
    B = ease_weights(X, lam)
    assert B.dtype == np.float32
    np.testing.assert_allclose(B, expected, rtol=1e-5, atol=1e-6)


def test_ease_skips_catalogues_too_large_for_a_dense_inverse(folds, monkeypatch):
    import shipml.learners.ease as ease

    assert len(EASE.configs(folds.data)) == 4  # lambda at the data's default, then a grid
    monkeypatch.setattr(ease, "MAX_ITEMS", folds.data.n_items - 1)
    assert EASE.configs(folds.data) == []


def test_itemknn_keeps_the_k_nearest_by_shrunk_cosine():
    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((40, 15)) < 0.3).astype(np.float32))
    S = item_similarity(X, neighbours=4, shrink=2.0).toarray()
    d = X.toarray()
    norms = np.linalg.norm(d, axis=0)
    full = d.T @ d / (norms[:, None] * norms[None, :] + 2.0 + 1e-12)
    np.fill_diagonal(full, 0.0)
    for j in range(15):  # column j holds j's 4 nearest items with their similarity
        kept = np.flatnonzero(S[:, j])
        assert len(kept) == min(4, np.count_nonzero(full[:, j]))
        assert np.min(full[kept, j]) >= np.sort(full[:, j])[-4] - 1e-6
        np.testing.assert_allclose(S[kept, j], full[kept, j], rtol=1e-5)


def test_als_fold_in_is_implicits_recalculate_user(fitted, folds):
    fit = fitted["als"].fitted
    hist = folds.targets.history.take(np.arange(25))
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=fit.item_factors.shape[1],
                                    regularization=fit.regularization, alpha=fit.alpha)  # fmt: skip
    model.item_factors = fit.item_factors
    theirs = model.recalculate_user(np.arange(25), hist.matrix)
    mine = fold_in(fit.item_factors, hist.matrix, fit.regularization, fit.alpha)
    np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_new_visitors_are_scored_from_their_items(fitted, folds, floor, name):
    """A visitor the model never saw (user -1) with the same items ranks about as well."""
    from shipml.scoring import score

    hist = folds.targets.history
    visitors = Histories(np.full(len(hist), -1), hist.matrix, hist.sequences)
    from shipml.learners.base import standardize_rows

    value = score("ndcg@10", "recommend", folds.targets,
                  standardize_rows(fitted[name].fitted.scores(visitors)))  # fmt: skip
    assert value > 1.5 * floor


def test_implicit_missing_is_a_note_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "implicit", None)
    for fam in (ALS, BPR):
        assert "implicit" in fam.available()


def test_search_over_every_family_beats_popularity(split, folds, floor):
    from shipml.search import run_search

    every = "popular,itemknn,ease,als,bpr"
    result = run_search(split.train, None, metric="ndcg@10", budget=Budget.seconds(120),
                        seed=0, n_trials=6, families=every, folds=folds,
                        kind="recommend")  # fmt: skip
    best = result.candidates[0]
    assert best.family != "popular" and best.score > 1.5 * floor
    tried = {t["name"].split("#")[0].split("(")[0] for t in result.trials}
    assert {"popular", "itemknn", "ease", "als", "bpr"} <= tried


@pytest.mark.parametrize("fam", [ITEMKNN, ALS, BPR], ids=["itemknn", "als", "bpr"])
def test_sampled_configurations_fit(folds, fam):
    """Optuna's samples of each search space (the defaults enqueued, then TPE) fit into a
    scored candidate with the same keys as the family's defaults."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(2):
        trial = study.ask()
        params = fam.suggest(trial, "recommend", ["none"])
        assert set(params) == set(fam.configs(folds.data)[0].params)
        budget = Budget(1.5, itertools.count().__next__)  # two epochs at most
        cand = fam.fit(folds, Config("sampled", params), budget, trial)
        assert np.isfinite(cand.score) and cand.score > 0
        study.tell(trial, cand.score)


def test_a_diverging_configuration_is_scored_worst_not_a_crash(split, folds, monkeypatch):
    """implicit raises ModelFitError when BPR's SGD ends in NaN factors (a learning rate too
    large for the log, seen in a 300 s MovieLens search): that trial scores worst, stays out of
    the blend, and the search goes on; a refit that diverges keeps the validation factors."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.recommender_base import ModelFitError

    from shipml.ensemble import select_ensemble
    from shipml.search import run_search

    real_fit = BayesianPersonalizedRanking.fit

    def fit(self, *args, **kwargs):  # every learning rate but the default one diverges
        if self.learning_rate != 0.01:
            raise ModelFitError("NaN encountered in factors")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(BayesianPersonalizedRanking, "fit", fit)
    bad = Config("bpr(lr 0.2)", {**BPR.configs(folds.data)[0].params, "learning_rate": 0.2})
    cand = BPR.fit(folds, bad, Budget.seconds(60))
    assert cand.score == -np.inf and not cand.complete
    kept = cand.fitted
    assert BPR.refit(cand, split.train_val, 0, Budget.seconds(60)).fitted is kept
    result = run_search(split.train, None, metric="ndcg@10", budget=Budget.seconds(60), seed=0,
                        n_trials=5, families="popular,bpr", folds=folds,
                        kind="recommend")  # fmt: skip
    diverged = [t for t in result.trials if t["name"].startswith("bpr#") and t["value"] == -np.inf]
    assert len(diverged) >= 2  # the sampled ones diverged and the search went on
    assert result.candidates[0].name == "bpr#0" and np.isfinite(result.candidates[0].score)
    result.candidates.append(cand)
    ens = select_ensemble(result, folds.targets, "recommend")
    assert all(m is not cand for m in ens.members) and np.isfinite(ens.score)
