"""Sentence encoders are loaded by sentence-transformers itself: a folder with Dense and Normalize
modules and max pooling gives sentence-transformers' own vectors (PyTorch and int8 ONNX), a model
trained with it reloads and predicts the same, weights only in pickle files are refused, a hub
id loads from the local Hugging Face cache only, and the old stored layout still loads.

The folders are built here from the packaged all-MiniLM-L6-v2 weights (a seeded random 384->128
Dense layer, saved by sentence-transformers' own `save()`). Texts: banking77 slices (tests/data,
CC BY 4.0).
"""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import BANKING, BANKING_TEST

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

LONG = "my card was charged twice and " * 80  # past the 256-token window: truncated


def texts() -> list[str]:
    return pd.read_csv(BANKING_TEST)["text"].tolist() + [LONG]


def save_folder(folder, pooling: str = "max", out: int = 128, seed: int = 0):
    """Packaged MiniLM + `pooling` + Dense(384 -> out, tanh, seeded) + Normalize, as saved by
    sentence-transformers."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    from shipml.encoders.loading import packaged_folder

    torch.manual_seed(seed)
    modules = [
        models.Transformer(str(packaged_folder()), max_seq_length=256),
        models.Pooling(384, pooling_mode=pooling),
        models.Dense(384, out, activation_function=torch.nn.Tanh()),
        models.Normalize(),
    ]
    model = SentenceTransformer(modules=modules, device="cpu")
    model.save(str(folder), create_model_card=False, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_folder(tmp_path_factory.mktemp("encoders") / "minilm-max-dense")


@pytest.fixture(scope="module")
def reference(folder):
    """What sentence-transformers itself gives for the folder."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True).encode(texts())


@pytest.fixture(scope="module")
def dense(folder):
    from shipml.encoders import load_encoder

    return load_encoder(str(folder), cache=False)


def test_the_folder_is_what_the_test_says(folder):
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == [
        "Transformer", "Pooling", "Dense", "Normalize"]  # fmt: skip
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "max"
    assert (folder / "2_Dense" / "model.safetensors").is_file()
    assert not list(folder.rglob("*.bin"))


def test_dense_normalize_and_max_pooling_give_sentence_transformers_vectors(dense, reference):
    from shipml.encoders import EncodeReport

    report = EncodeReport()
    vectors = dense.encode(texts(), report=report)
    assert dense.dim == 128 and vectors.shape == (len(texts()), 128)
    assert report.truncated == 1  # the long text, cut where sentence-transformers cuts it
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    # the modules really act: without Dense the vectors would be 384-wide, mean-pooled differ
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_default_encoder_gives_sentence_transformers_vectors(encoder):
    from sentence_transformers import SentenceTransformer

    from shipml.encoders.loading import packaged_folder

    model = SentenceTransformer(str(packaged_folder()), device="cpu", local_files_only=True)
    assert encoder.dim == 384 and encoder.max_length == 256
    np.testing.assert_allclose(encoder.encode(texts()), model.encode(texts()), atol=1e-5)


def test_int8_onnx_runs_every_module(dense, reference):
    from shipml.encoders.onnx import export_onnx, quantize_int8

    graph = export_onnx(dense)
    fp32 = dense.with_onnx(graph, kind="onnx")
    np.testing.assert_allclose(fp32.encode(texts()), reference, atol=1e-4)
    int8 = dense.with_onnx(quantize_int8(graph))
    vectors = int8.encode(texts())
    assert vectors.shape == reference.shape
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98


def test_the_id_follows_every_module(folder, dense, tmp_path):
    """The embedding cache is keyed by the id: other pooling, other Dense weights, other id."""
    import copy

    from shipml.encoders import load_encoder

    other = tmp_path / "mean-pooling"
    shutil.copytree(folder, other)
    config = other / "1_Pooling" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "pooling_mode": "mean"}))
    assert load_encoder(str(folder), cache=False).id == dense.id  # same files, same id
    mean = load_encoder(str(other), cache=False)
    assert mean.id != dense.id
    assert not np.allclose(mean.encode(texts()[:4]), dense.encode(texts()[:4]), atol=1e-3)
    tuned = copy.deepcopy(dense.module)
    tuned.model[2].linear.weight.data.mul_(1.01)
    assert dense.with_weights(tuned, source="tuned").id != dense.id


def test_a_model_trained_with_it_reloads_and_predicts_the_same(folder, dense, tmp_path):
    import shipml
    from shipml.registry.store import Registry

    registry = str(tmp_path / "registry")
    model = shipml.train(BANKING, target="category", name="dense", encoder=str(folder),
                         mode="embed", n_trials=1, time_budget=300, registry_uri=registry,
                         progress=False, report=False)  # fmt: skip
    assert model.info["lineage"]["text_encoder"] == str(folder)
    test = pd.read_csv(BANKING_TEST)
    loaded = shipml.load("dense", registry_uri=registry)
    info = Registry(registry).resolve("dense")
    stored = json.loads((info.artifact_dir / "encoder.json").read_text())
    assert "text_encoder.st.2_Dense.model.safetensors" in stored["text_encoder"]["files"].values()
    np.testing.assert_allclose(loaded.predict_proba(test), model.predict_proba(test), atol=1e-6)
    assert list(loaded.predict(test)) == list(model.predict(test))
    sentence = loaded.encoder.text_encoder
    assert sentence.id == model.encoder.text_encoder.id
    sentence.runtime = None  # int8 or not, the PyTorch modules are stored too: the same
    sentence.use_cache = False  # (the cache, under the int8 id, holds int8 vectors)
    np.testing.assert_allclose(sentence.encode(texts()), dense.encode(texts()), atol=1e-6)


def test_weights_only_in_pickle_files_are_refused(folder, tmp_path):
    from shipml.encoders import load_encoder
    from shipml.errors import EncoderError

    marker = tmp_path / "UNPICKLED"
    dense_bin = tmp_path / "dense-bin"
    shutil.copytree(folder, dense_bin)
    (dense_bin / "2_Dense" / "model.safetensors").unlink()
    (dense_bin / "2_Dense" / "pytorch_model.bin").write_bytes(pickle.dumps(Trap(marker)))
    with pytest.raises(EncoderError, match=r"2_Dense.*pytorch_model\.bin.*safetensors only"):
        load_encoder(str(dense_bin))
    base_bin = tmp_path / "transformer-bin"
    shutil.copytree(folder, base_bin)
    (base_bin / "model.safetensors").unlink()
    (base_bin / "pytorch_model.bin").write_bytes(pickle.dumps(Trap(marker)))
    with pytest.raises(EncoderError, match="no model.safetensors"):
        load_encoder(str(base_bin))
    assert not marker.exists()


class Trap:
    """Unpickling this creates a marker file: the proof that something unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hub_ids_load_from_the_local_cache_only(folder, dense, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from shipml.encoders import load_encoder
    from shipml.errors import EncoderError

    cache = tmp_path / "hf-cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--acme--minilm-dense"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    cached = load_encoder("acme/minilm-dense", cache=False)
    assert cached.source == "acme/minilm-dense" and cached.id == dense.id
    with pytest.raises(EncoderError) as error:
        load_encoder("acme/not-downloaded")
    message = str(error.value)
    assert "'acme/not-downloaded'" in message and "not in the local Hugging Face cache" in message
    assert "local folder" in message and "--encoder out" in message


def test_models_saved_in_the_old_layout_still_load(encoder, tmp_path):
    """Before sentence-transformers loaded them, a model stored its encoder as one transformers
    model (safetensors weights, config JSON, tokenizer JSON) and its pooling: same vectors."""
    import safetensors.torch
    import transformers

    from shipml.encoders import from_artifacts
    from shipml.encoders.loading import packaged_folder
    from shipml.registry.artifacts import ArtifactWriter
    from shipml.registry.formats import ArtifactReader

    module = transformers.AutoModel.from_pretrained(str(packaged_folder()))
    writer = ArtifactWriter(tmp_path / "root")
    writer.write_bytes("text_encoder.safetensors", safetensors.torch.save(
        {k: v.contiguous() for k, v in module.state_dict().items()}))  # fmt: skip
    writer.write_text("text_encoder.config.json", json.dumps(module.config.to_dict()))
    writer.write_text("text_encoder.tokenizer.json", encoder.tokenizer.to_str())
    writer.finish()
    writer.publish(tmp_path / "v1")
    settings = {"pooling": "mean", "max_length": 256, "dim": 384, "pad_id": 0}
    meta = {"id": "old-id", "source": "old", "weights": "text_encoder.safetensors",
            "config": "text_encoder.config.json", "tokenizer": "text_encoder.tokenizer.json",
            "settings": settings}  # fmt: skip
    old = from_artifacts(meta, ArtifactReader(tmp_path / "v1", label="old v1"), cache=False)
    np.testing.assert_allclose(old.encode(texts()), encoder.encode(texts()), atol=1e-6)
    assert old.id == "old-id"
    again, files = old.artifacts("text_encoder")  # re-saved as it was read
    assert again["weights"] == "text_encoder.safetensors" and "files" not in again
    assert set(files) == {"text_encoder.safetensors", "text_encoder.config.json",
                          "text_encoder.tokenizer.json"}  # fmt: skip


def test_a_plain_transformers_folder_is_mean_pooled_and_normalized(encoder, tmp_path):
    """No modules.json: sentence-transformers' default (mean pooling, no Normalize module);
    shipml's vectors are unit length all the same, as they were before (its default
    encoder's, on texts inside both windows)."""
    from sentence_transformers import SentenceTransformer

    from shipml.encoders import load_encoder
    from shipml.encoders.loading import packaged_folder

    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "vocab.txt"]:  # fmt: skip
        shutil.copy(packaged_folder() / name, plain / name)
    short = texts()[:-1]
    vectors = load_encoder(str(plain), cache=False).encode(short)
    model = SentenceTransformer(str(plain), device="cpu", local_files_only=True)
    expected = model.encode(short, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    np.testing.assert_allclose(vectors, encoder.encode(short), atol=1e-5)
