"""Every registered learner family honours the contract (learners/base.py's Family): it fits a
configuration on the shared folds into a Candidate of out-of-fold raw scores, its Fitted maps
the encoded matrix to raw scores and contributions that sum to them, and what it stores reads
back, through the one artifact reader, into the same predictions. A new family is added to the
registry and checked here without touching this file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import GERMAN
from shipml.data.split import plan_validation
from shipml.learners.base import Budget, Candidate, Config, Folds
from shipml.learners.registry import FAMILIES, load_fitted

DEFECTS = Path(__file__).resolve().parents[1] / "data" / "images" / "defects"
AVAILABLE = [name for name, fam in FAMILIES.items() if fam.available() is None]


@pytest.fixture(scope="module")
def german():
    from shipml.training import prepare

    _, schema, _, data, _ = prepare(pd.read_csv(GERMAN), "credit_risk")
    return data, plan_validation(data.y, schema.task, seed=0)


def _pixels():
    """Digits 3 vs 8 as 8 x 8 grey pixels (scikit-learn's bundled set), for a family that only
    runs on images (learners/cnn.py)."""
    from sklearn.datasets import load_digits

    from shipml.learners.base import TrainData

    digits = load_digits()
    keep = np.isin(digits.target, (3, 8))
    X = digits.images[keep].reshape(int(keep.sum()), -1) / 16.0
    y = (digits.target[keep] == 8).astype(int)
    data = TrainData(X, y, "binary", 2, images={"start": 0, "size": 8, "channels": 1})
    return data, plan_validation(y, "binary", seed=0)


def _maps():
    """The committed defect images, fine (0) or not (1), as the pretrained network's maps
    before its last block, for a family that only runs on maps (learners/image_finetune.py)."""
    from shipml.encoders.image import load_image_encoder
    from shipml.learners.base import TrainData

    files = sorted(p for p in DEFECTS.glob("*/*") if p.suffix in (".png", ".jpg"))
    y = np.array([int(p.parent.name != "ok") for p in files])
    encoder = load_image_encoder().maps()
    X = encoder.encode([str(f) for f in files]).astype(np.float64)
    data = TrainData(X, y, "binary", 2, images={"start": 0, **encoder.layout})
    return data, plan_validation(y, "binary", seed=0)


@pytest.fixture(scope="module", params=AVAILABLE)
def fitted(request, german):
    data, plan = german
    fam = FAMILIES[request.param]
    if not fam.configs(data):  # a family for other inputs than German credit's
        data, plan = _pixels()
    if not fam.configs(data):
        data, plan = _maps()
    config = fam.configs(data)[0]
    folds = Folds(data, plan, seed=0, metric="roc_auc")
    params = {**config.params, "target_transform": "none"}
    cand = fam.fit(folds, Config(config.name, params), Budget.seconds(600))
    return fam, cand, data, plan


def test_registry_declares_each_family_once():
    # the search's order today: linear, forests, boosting (a new family goes where it runs)
    assert [n for n in FAMILIES if n in ("linear", "forest", "lightgbm")] == [
        "linear", "forest", "lightgbm"
    ]  # fmt: skip
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.keep >= 1 and isinstance(fam.kind, str)
    assert sum(f.floor for f in FAMILIES.values()) == 1  # one score the search must not end below


def test_fit_on_folds_gives_a_scored_candidate(fitted):
    fam, cand, data, plan = fitted
    rows = plan.scored_rows
    assert isinstance(cand, Candidate) and cand.family == fam.name and cand.complete
    assert cand.oof.shape == (len(rows),)
    from sklearn.metrics import roc_auc_score

    assert cand.score == pytest.approx(roc_auc_score(data.y[rows], cand.oof))
    assert cand.score > 0.7  # German credit: every family learns something


def test_contributions_sum_to_raw_scores(fitted):
    _, cand, data, _ = fitted
    X = data.X[:50]
    raw, contrib = cand.fitted.raw(X), cand.fitted.contributions(X)
    assert contrib.shape == (50, X.shape[1] + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-6, atol=1e-6)


def test_artifacts_read_back_through_the_registry(fitted, tmp_path):
    from shipml.registry.artifacts import ArtifactWriter
    from shipml.registry.formats import ArtifactReader

    fam, cand, data, _ = fitted
    meta, files = cand.fitted.artifacts("member0")
    writer = ArtifactWriter(tmp_path)
    for name, content in files.items():
        writer.write(name, content)
    writer.finish()
    reader = ArtifactReader(writer.publish(tmp_path / "v1"))
    loaded = load_fitted({**meta, "prefix": "member0"}, reader, "binary")
    np.testing.assert_array_equal(loaded.raw(data.X), cand.fitted.raw(data.X))


def test_unknown_kind_in_model_json_is_a_clear_error(tmp_path):
    from shipml.errors import DataError

    with pytest.raises(DataError, match="unknown learner kind 'tabpfn' in model.json"):
        load_fitted({"kind": "tabpfn"}, reader=None, task="binary")
