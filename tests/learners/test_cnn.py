"""The `cnn` family: a CNN from scratch on the pixels of an image column, searched, ensembled,
stored and reloaded like every other family (scikit-learn's digits, made into PNG files here)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")


def _digits(root, n: int = 300, side: int = 16):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:n], digits.target[:n])):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * 16).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).resize((side, side)).save(folder / f"{i}.png")
    return root


def test_scratch_mode_trains_the_cnn_and_reloads_it(tmp_path):
    import shipml

    root = _digits(tmp_path / "digits")
    model = shipml.train(root, name="digits", time_budget=40, mode="scratch", report=False,
                         progress=False)  # fmt: skip
    names = [m.name for m in model.members]
    assert any(n.startswith("cnn") for n in names), names
    assert model.info["metrics"]["accuracy"] > 0.85
    assert "pixels (16 x 16 grey)" in " ".join(model.info["notes"])
    loaded = shipml.load("digits")
    photos = sorted(str(p) for p in (root / "3").glob("*.png"))[:6]
    records = [{"image": p} for p in photos]
    np.testing.assert_allclose(loaded.predict_proba(records).to_numpy(),
                               model.predict_proba(records).to_numpy(), atol=1e-6)  # fmt: skip
    assert (loaded.predict(records).astype(str) == "3").mean() >= 0.8


def test_the_family_runs_only_on_pixels_and_its_reasons_sum_to_its_scores():
    from shipml.learners.base import TrainData
    from shipml.learners.cnn import CNN, CNNFitted
    from shipml.learners.fold_networks import images_of as pixels_of
    from shipml.learners.fold_networks import raw_scores

    X = np.arange(2 * 5 * 16, dtype=float).reshape(2, 80)
    plain = TrainData(X, np.array([0, 1]), "binary", 2)
    assert CNN.configs(plain) == []
    layout = {"start": 16, "size": 4, "channels": 4}
    with_pixels = TrainData(X, np.array([0, 1]), "binary", 2, images=layout)
    assert [c.name for c in CNN.configs(with_pixels)] == ["cnn (from scratch)"]
    assert CNN.configs(TrainData(X, np.array([0.5, 1.0]), "regression", images=layout)) == []
    images = pixels_of(X, layout)
    assert images.shape == (2, 4, 4, 4) and images[1, 0, 0, 0] == X[1, 16]
    proba = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert raw_scores(proba, "binary") == pytest.approx(np.log([4.0, 1 / 9]))

    class Fold:
        def predict_proba(self, pixels):
            return np.tile([0.25, 0.75], (len(pixels), 1))

    fitted = CNNFitted([Fold(), Fold()], layout, "binary")
    parts = fitted.contributions(X)
    assert parts.shape == (2, 81) and parts.sum(axis=1) == pytest.approx(fitted.raw(X))


def test_auto_on_small_images_puts_pixels_next_to_embeddings(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    from shipml.encoders.pixels import ImageStack, PixelEncoder
    from shipml.learners.image import image_features

    root = _digits(tmp_path / "small", n=20, side=16)
    cells = sorted(str(p) for p in root.glob("*/*.png"))
    stack = image_features("auto", cells)
    assert isinstance(stack, ImageStack) and isinstance(stack.parts[0], PixelEncoder)
    assert stack.dim == 256 + 2256 and "efficientnet" in stack.source
    assert stack.encode(cells[:2]).shape == (2, 256 + 2256)
    assert isinstance(image_features("scratch", cells), PixelEncoder)
