"""Train on a folder of photos (one sub-folder per label), reload from the registry, predict."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite_pytorch")


def _photos(root, per_class: int = 12):
    """Light discs vs dark squares on noise: what a pretrained network tells apart at once."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(1)
    for label in ("disc", "square"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(60, 140, (48, 48, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            draw = ImageDraw.Draw(image)
            x, y = (int(v) for v in rng.integers(12, 36, 2))
            r = int(rng.integers(7, 11))
            box = (x - r, y - r, x + r, y + r)
            if label == "disc":
                draw.ellipse(box, fill=(250, 240, 200))
            else:
                draw.rectangle(box, fill=(10, 20, 30))
            image.save(root / label / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_a_folder_of_photos_trains_stores_and_predicts(tmp_path):
    import shipml
    from shipml.model import Model

    root = _photos(tmp_path / "photos")
    model = shipml.train(root, name="shapes", time_budget=60, n_trials=2, report=False)
    assert sorted(model.classes) == ["disc", "square"]
    assert "efficientnet-lite2" in model.info["lineage"]["image_encoder"]  # the embed network
    loaded = shipml.load("shapes")
    assert isinstance(loaded, Model) and loaded.encoder.image_encoder is not None
    new = _photos(tmp_path / "new", per_class=4)
    labels = loaded.predict(new)
    assert (labels == np.array(["disc"] * 4 + ["square"] * 4)).mean() >= 0.75
    frame = loaded.input_frame(new / "disc" / "1.png")
    assert list(frame.columns[:1]) == ["image"] and len(frame) == 1
