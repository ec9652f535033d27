"""The sequential Transformer family (SASRec, learners/sasrec.py) on a seeded log whose next item
follows from the last one (items form a hidden chain i -> succ(i), with popularity-skewed jumps
off it): it must beat popularity and an order-blind co-occurrence model on the validation
events, save and load as safetensors with identical scores, stop at the deadline with a scored
candidate, score an unknown visitor like the known user with the same sequence, and refit on
more events. A small network and few epochs keep the file to seconds; benchmarks/sasrec.py
measures the default recipe on MovieLens."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from shipml.learners.base import Budget, Config, RankFolds
from shipml.learners.popularity import POPULARITY
from shipml.recommend.interactions import Histories
from shipml.recommend.log import read_log
from shipml.recommend.metrics import metric_at
from shipml.recommend.protocol import split_log
from shipml.registry.artifacts import ArtifactWriter
from shipml.registry.formats import ArtifactReader

pytest.importorskip("torch")  # the family needs the text extra
from shipml.learners import sasrec  # noqa: E402

SMALL = {"hidden": 32, "blocks": 1, "heads": 1, "dropout": 0.1, "lr": 5e-3, "batch_size": 64,
         "max_epochs": 12, "patience": 4}  # fmt: skip
FOREVER = Budget(np.inf)


class FakeClock:
    """Seconds that pass only when read (`tick` per read), as in tests/training/test_budget.py."""

    def __init__(self, start: float = 100.0, tick: float = 0.0) -> None:
        self.t, self.tick, self.reads = start, tick, 0

    def __call__(self) -> float:
        self.t += self.tick
        self.reads += 1
        return self.t


def chain_log(seed: int = 0, n_users: int = 200, n_items: int = 100) -> pd.DataFrame:
    """Users walk a hidden cycle over the items (the next item is succ(last) with p = 0.8),
    else jump to a popularity-skewed random item; 10-25 events each, rows shuffled (the time
    column orders them). The set of a user's items says little about which comes next."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_items)
    succ = np.empty(n_items, dtype=int)
    succ[order] = np.roll(order, -1)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    rows, t = [], 0
    for u in range(n_users):
        item = rng.choice(n_items, p=pop)
        for _ in range(rng.integers(10, 26)):
            rows.append((f"u{u}", f"i{item}", t))
            t += 1
            item = succ[item] if rng.random() < 0.8 else rng.choice(n_items, p=pop)
    return pd.DataFrame(rows, columns=["user", "item", "t"]).sample(frac=1, random_state=seed)


@pytest.fixture(scope="module")
def split():
    inter, _ = read_log(chain_log(), user="user", item="item", time="t")
    return split_log(inter)


@pytest.fixture(scope="module")
def folds(split):
    return RankFolds(split.train, split.val, seed=0, metric="ndcg@10")


def _config(split, **extra) -> Config:
    base = sasrec.SASREC.configs(split.train)[0].params
    return Config("sasrec", {**base, **SMALL, **extra})


@pytest.fixture(scope="module")
def fit(split, folds):
    return sasrec.SASREC.fit(folds, _config(split), FOREVER)


def _cooccurrence_scores(folds) -> np.ndarray:
    """Order-blind: each item scored by how often it shares a user with the user's items."""
    x = folds.data.matrix()
    x.data[:] = 1.0
    co = (x.T @ x).toarray()
    np.fill_diagonal(co, 0.0)
    h = folds.targets.history.matrix.copy()
    h.data[:] = 1.0
    return np.asarray(h @ co, dtype=np.float32)


def test_configs_are_scaled_to_the_log(split):
    params = sasrec.SASREC.configs(split.train)[0].params
    assert params["loss"] == "full"  # 100 items: the full softmax
    assert params["max_len"] == 21  # histories of 8-23 items: their 90th percentile (in [20, 50])
    assert sasrec.SASREC.available() is None


def test_beats_popularity_and_cooccurrence_on_validation(folds, fit):
    pop = POPULARITY.fit(folds, POPULARITY.configs(folds.data)[0], FOREVER)
    cooc = metric_at("ndcg@10", _cooccurrence_scores(folds), folds.targets)
    assert fit.complete and fit.params["loss"] == "full"
    assert 0 < fit.params["steps"] <= SMALL["max_epochs"] * 4  # 4 batches an epoch
    assert fit.score > 3 * pop.score, (fit.score, pop.score)
    assert fit.score > cooc + 0.1, (fit.score, cooc)
    # the candidate's score is the metric of the fitted model's own scores
    own = fit.fitted.scores(folds.targets.history)
    assert metric_at("ndcg@10", own, folds.targets) == pytest.approx(fit.score, abs=1e-9)


def _saved(fitted, tmp_path):
    meta, files = fitted.artifacts("member0")
    writer = ArtifactWriter(tmp_path)
    for name, content in files.items():
        writer.write(name, content)
    writer.finish()
    return writer.dir, json.loads(json.dumps(meta))  # the meta is plain JSON


def test_save_load_round_trip_gives_identical_scores(folds, fit, tmp_path):
    folder, meta = _saved(fit.fitted, tmp_path)
    assert meta["weights"] == "member0_sasrec.safetensors"
    assert meta["arch"]["n_items"] == folds.data.n_items
    assert (folder / meta["weights"]).read_bytes()[8:9] == b"{"  # a safetensors header
    loaded = sasrec.SASREC.load(meta, ArtifactReader(folder, label="recs v1"), "recommend")
    hist = folds.targets.history
    np.testing.assert_array_equal(loaded.scores(hist), fit.fitted.scores(hist))
    items = np.array([0, 5, 17])
    np.testing.assert_array_equal(loaded.similar(items), fit.fitted.similar(items))


def test_tampered_weights_are_refused(fit, tmp_path):
    from shipml.errors import ArtifactIntegrityError

    folder, meta = _saved(fit.fitted, tmp_path)
    path = folder / meta["weights"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="modified after it was saved"):
        sasrec.SASREC.load(meta, ArtifactReader(folder, label="recs v1"), "recommend")


def test_unknown_visitor_scores_like_the_known_user_with_that_sequence(folds, fit):
    hist = folds.targets.history.take(np.arange(6))
    visitor = Histories(np.full(6, -1), hist.matrix, [s.copy() for s in hist.sequences])
    np.testing.assert_allclose(fit.fitted.scores(visitor), fit.fitted.scores(hist),
                               rtol=0, atol=1e-5)  # fmt: skip
    # alone or in a batch of longer sequences: the padding does not change a sequence's scores
    alone = fit.fitted.scores(Histories(np.array([-1]), hist.matrix[:1], [hist.sequences[0]]))
    np.testing.assert_allclose(alone[0], fit.fitted.scores(hist)[0], rtol=0, atol=1e-5)


def _successor(seed: int = 0, n_items: int = 100) -> dict[str, str]:
    """chain_log's hidden cycle, by item ID."""
    order = np.random.default_rng(seed).permutation(n_items)
    return {f"i{a}": f"i{b}" for a, b in zip(order, np.roll(order, -1))}


def test_the_next_item_follows_the_last_item(folds, fit):
    """Order matters: after [a, b] the top item is b's successor, after [b, a] a's."""
    succ = _successor()
    ids = folds.data.items
    code = {item: i for i, item in enumerate(ids)}
    rng = np.random.default_rng(1)
    a, b = rng.choice(len(ids), 40), rng.choice(len(ids), 40)
    seqs = [np.array([x, y], dtype=np.int32) for x, y in zip(a, b)]
    seqs += [s[::-1].copy() for s in seqs]
    hist = Histories(np.full(len(seqs), -1), folds.targets.history.matrix[np.zeros(80, int)],
                     seqs)  # fmt: skip
    top = np.argmax(fit.fitted.scores(hist), axis=1)
    after_last = np.mean(top == np.array([code[succ[ids[s[-1]]]] for s in seqs]))
    after_first = np.mean(top == np.array([code[succ[ids[s[0]]]] for s in seqs]))
    assert after_last > 0.4 and after_last > 4 * after_first, (after_last, after_first)


def test_an_empty_history_gets_the_learned_item_bias(folds, fit):
    hist = Histories(np.array([-1]), folds.targets.history.matrix[:1],
                     [np.array([], dtype=np.int32)])  # fmt: skip
    bias = fit.fitted.net.bias.detach().numpy()
    np.testing.assert_array_equal(fit.fitted.scores(hist)[0], bias)
    # the bias learned the popularity skew: the 10 most frequent items score above the rest
    counts = np.bincount(folds.data.item, minlength=folds.data.n_items)
    top = np.argsort(-counts)[:10]
    assert bias[top].mean() > np.delete(bias, top).mean()


def test_similar_is_the_cosine_of_item_embeddings(fit):
    sim = fit.fitted.similar(np.array([3, 4]))
    assert sim.shape == (2, fit.fitted.arch["n_items"])
    np.testing.assert_allclose(sim[[0, 1], [3, 4]], 1.0, atol=1e-5)
    assert np.all(sim <= 1.0 + 1e-5) and np.all(sim >= -1.0 - 1e-5)


def test_same_seed_same_scores(split, folds):
    cfg = _config(split, max_epochs=2)
    a = sasrec.SASREC.fit(folds, cfg, FOREVER)
    b = sasrec.SASREC.fit(folds, cfg, FOREVER)
    np.testing.assert_array_equal(a.oof, b.oof)
    other = RankFolds(folds.data, folds.targets, seed=1, metric="ndcg@10")
    c = sasrec.SASREC.fit(other, cfg, FOREVER)
    assert not np.array_equal(a.oof, c.oof)


def test_deadline_stops_training_with_a_scored_candidate(split, folds):
    clock = FakeClock(tick=1.0)  # every read of the clock takes a second
    budget = Budget(clock() + 20.0, clock)  # the family's share: 80% of it, ~16 reads
    cand = sasrec.SASREC.fit(folds, _config(split, max_epochs=200), budget)
    assert not cand.complete
    assert 0 < cand.params["steps"] <= 16  # one clock read per batch
    assert clock.t - 100.0 < 20.0  # it stopped inside its share, before the search's deadline
    assert np.isfinite(cand.score) and cand.oof.shape == (len(folds.targets), 100)
    own = cand.fitted.scores(folds.targets.history)
    assert metric_at("ndcg@10", own, folds.targets) == pytest.approx(cand.score, abs=1e-9)


def test_refit_trains_on_more_events_for_the_epochs_found(split, fit):
    from dataclasses import replace

    refit = sasrec.SASREC.refit(replace(fit), split.train_val, 0, FOREVER)
    assert refit.fitted.refit and refit.fitted is not fit.fitted
    pop = POPULARITY.refit(replace(fit), split.train_val, 0, FOREVER)
    test = metric_at("ndcg@10", refit.fitted.scores(split.test.history), split.test)
    floor = metric_at("ndcg@10", pop.fitted.scores(split.test.history), split.test)
    assert test > 3 * floor, (test, floor)
    # no room for the retraining: the validation run's network is kept as it was
    kept = sasrec.SASREC.refit(replace(fit), split.train_val, 0, Budget(0.0, lambda: 1.0))
    assert kept.fitted is fit.fitted and not kept.fitted.refit


def test_available_says_what_to_install_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert "shipml[text]" in sasrec.SASREC.available()


def test_searched_with_popularity_through_the_learner_contract(split, folds, monkeypatch):
    """run_search on the recommend kind: the registry's sasrec line, its fixed configuration,
    its share of the time (a fake clock), ranked above popularity."""
    from shipml.ensemble import select_ensemble
    from shipml.learners.registry import RECOMMENDERS
    from shipml.search import run_search

    assert list(RECOMMENDERS)[-1] == "sasrec"
    for key, value in {**SMALL, "max_epochs": 6}.items():
        monkeypatch.setitem(sasrec.DEFAULTS, key, value)
    clock = FakeClock(tick=0.01)
    result = run_search(split.train, None, metric="ndcg@10", budget=Budget(clock() + 5, clock),
                        families="popular,sasrec", folds=folds, kind="recommend")  # fmt: skip
    assert [c.family for c in result.candidates][0] == "sasrec"
    assert {c.family for c in result.candidates} == {"sasrec", "popular"}
    ens = select_ensemble(result, split.val, "recommend")
    assert "sasrec" in {m.family for m, w in zip(ens.members, ens.weights) if w > 0}
