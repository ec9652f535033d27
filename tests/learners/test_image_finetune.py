"""The `finetune` family: the pretrained network's last block and head fine-tuned on the maps
of an image column, searched, stored and reloaded like every other family (the committed
defect images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

DEFECTS = Path(__file__).resolve().parents[1] / "data" / "images" / "defects"


def test_finetune_mode_trains_the_tail_and_reloads_it(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite_pytorch")
    import shipml

    monkeypatch.setenv("SHIPML_HOME", str(tmp_path / "home"))
    model = shipml.train(DEFECTS, name="defects", time_budget=60, mode="finetune", report=False,
                         progress=False)  # fmt: skip
    assert [m.name.split(" ")[0] for m in model.members] == ["finetune"]
    assert "blocks 0-14 (9408 per image)" in " ".join(model.info["notes"])
    assert model.info["metrics"]["accuracy"] > 0.6  # 3 classes; measured 0.83 at 60 s
    loaded = shipml.load("defects")
    photos = sorted(str(p) for p in (DEFECTS / "spot").glob("*.png"))[:4]
    records = [{"image": p} for p in photos]
    np.testing.assert_allclose(loaded.predict_proba(records).to_numpy(),
                               model.predict_proba(records).to_numpy(), atol=1e-5)  # fmt: skip


def test_the_family_runs_only_on_maps_of_classes_and_its_reasons_sum_to_its_scores():
    from shipml.learners.base import TrainData
    from shipml.learners.cnn import CNN
    from shipml.learners.fold_networks import images_of as maps_of
    from shipml.learners.image import families_on
    from shipml.learners.image_finetune import FINETUNE, FinetuneFitted

    X = np.arange(2 * 2 * 16 + 2, dtype=float).reshape(2, 33)
    layout = {"start": 1, "size": 2, "channels": 4, "kind": "maps", "cut": 15,
              "arch": "efficientnet-lite0"}  # fmt: skip
    assert FINETUNE.configs(TrainData(X, np.array([0, 1]), "binary", 2)) == []
    on_maps = TrainData(X, np.array([0, 1]), "binary", 2, images=layout)
    assert [c.name for c in FINETUNE.configs(on_maps)] == ["finetune (last block + head)"]
    assert CNN.configs(on_maps) == []  # the cnn reads pixels, not maps
    assert FINETUNE.configs(TrainData(X, np.array([0.5, 1.0]), "regression", images=layout)) == []
    pixels = {**layout, "kind": "pixels"}
    assert FINETUNE.configs(TrainData(X, np.array([0, 1]), "binary", 2, images=pixels)) == []
    assert families_on(layout, ("linear", "lightgbm", "cnn", "finetune")) == ("finetune",)
    assert families_on(pixels, ("linear", "lightgbm", "cnn", "finetune")) == ("linear", "cnn")
    assert families_on(None, ("linear", "lightgbm")) == ("linear", "lightgbm")
    maps = maps_of(X, layout)
    assert maps.shape == (2, 4, 2, 2) and maps[1, 0, 0, 0] == X[1, 1]

    class Fold:
        def predict_proba(self, maps):
            return np.tile([0.25, 0.75], (len(maps), 1))

    fitted = FinetuneFitted([Fold()], layout, "binary")
    parts = fitted.contributions(X)
    assert parts.shape == (2, 34) and parts.sum(axis=1) == pytest.approx(fitted.raw(X))
