"""The packaged EfficientNet-Lite0 as an image encoder: shapes, missing images, batches."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def network():
    import torch

    from shipml.encoders.image import load_image_encoder

    torch.set_num_threads(1)
    return load_image_encoder()


def _png(seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_vectors_do_not_depend_on_the_batch_and_missing_images_are_zero_rows(network):
    from shipml.encoders.image import ImageReport

    cells = [_png(0), None, _png(1)]
    report = ImageReport()
    together = network.encode(cells, batch_size=8, report=report)
    alone = np.vstack([network.encode([c], batch_size=1) for c in cells])
    assert together.shape == (3, 1280) and together.dtype == np.float32
    assert np.allclose(together, alone, atol=1e-4)
    assert not together[1].any() and together[0].any()
    assert (report.images, report.missing) == (3, 1)


def test_an_injected_speed_is_used_as_is_and_a_deadline_stops_encoding(network):
    from shipml.encoders.image import load_image_encoder

    other = load_image_encoder()
    other.seconds_per_image = 0.25
    assert other.estimate_seconds([_png(0)]) == 0.25
    other.deadline = 0.0  # long past
    with pytest.raises(TimeoutError):
        other.encode([_png(0)])


def test_maps_stop_before_the_cut_and_the_tail_finishes_them_into_the_embedding(network):
    import torch

    from shipml.errors import UsageError
    from shipml.learners.image_tail import load_pretrained, tail_network

    maps = network.maps()
    assert maps.kind == "maps" and network.kind == "network" and maps.id != network.id
    assert maps.settings["map"] == [192, 7, 7] and maps.dim == 192 * 7 * 7
    assert maps.layout == {"kind": "maps", "channels": 192, "size": 7, "cut": 15,
                           "arch": "efficientnet-lite0"}  # fmt: skip
    cells = [_png(i) for i in range(3)]
    flat = maps.encode(cells)
    assert flat.shape == (3, 9408)
    # the pretrained tail on these maps gives back the frozen network's own embedding
    tail = tail_network({**maps.layout, "n_classes": 2, "dropout": 0.0, "drop_connect": 0.0})
    load_pretrained(tail, maps.layout)
    with torch.inference_mode():
        pooled = tail.eval().pooled(torch.from_numpy(flat.reshape(3, 192, 7, 7))).numpy()
    np.testing.assert_allclose(pooled, network.encode(cells), rtol=1e-4, atol=1e-4)
    with pytest.raises(UsageError, match="block number in 1..15"):
        network.maps(16)
