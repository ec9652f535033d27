"""Fast text inference: the sentence encoder exported to ONNX and quantized to int8, picked when
it keeps the validation accuracy, stored with the model and served without PyTorch.

Data: 20 banking77 intents (tests/data/banking77_*slice.csv, CC BY 4.0). Throughput is measured
in benchmarks/text.py, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import BANKING, BANKING_TEST

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_registry(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-registry")


@pytest.fixture(scope="module")
def model(onnx_registry, tmp_path_factory):
    import shipml

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPML_HOME", str(tmp_path_factory.mktemp("onnx-home")))
        # n_trials=1 ends the search early; the budget leaves the int8 check (export,
        # quantization, scoring) the time it needs even on a busy machine
        return shipml.train(BANKING, target="category", name="fast", time_budget=300, n_trials=1,
                            mode="embed", registry_uri=str(onnx_registry), progress=False,
                            report=False)  # fmt: skip


def test_int8_vectors_stay_close_to_pytorch(encoder):
    from shipml.encoders.onnx import export_onnx, quantize_int8

    texts = pd.read_csv(BANKING_TEST)["text"].tolist()
    reference = encoder.encode(texts)
    fp32 = encoder.with_onnx(export_onnx(encoder), kind="onnx")
    np.testing.assert_allclose(fp32.encode(texts), reference, atol=1e-4)
    int8 = encoder.with_onnx(quantize_int8(export_onnx(encoder)))
    assert int8.runtime_kind == "onnx-int8" and int8.id not in (encoder.id, fp32.id)
    batch = int8.encode(texts)
    cosine = (batch * reference).sum(axis=1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98  # measured: min 0.98, mean 0.99
    # a single text runs on one thread, a batch on two: the same vectors, bit for bit
    alone = np.concatenate([int8.encode([t]) for t in texts[:20]])
    assert sorted(int8.runtime._sessions) == [1, 2]
    assert np.array_equal(alone, batch[:20])
    int8.runtime.threads = 2
    assert np.array_equal(int8.encode(texts[:1]), batch[:1])


def test_training_picks_int8_and_says_so(model):
    runtime = model.info["text_runtime"]
    assert runtime["runtime"] == "onnx-int8"
    assert runtime["score_pytorch"] - runtime["score_onnx_int8"] <= 0.005
    assert runtime["texts_per_s_onnx_int8"] > 0 and runtime["texts_per_s_pytorch"] > 0
    assert model.encoder.text_encoder.runtime_kind == "onnx-int8"
    assert any(n.startswith("runtime: ONNX int8") for n in model.info["notes"])
    assert model.describe()["text runtime"] == "onnx-int8"


def test_int8_model_round_trip(model, onnx_registry):
    import shipml

    folder = shipml.Registry(str(onnx_registry)).resolve("fast").artifact_dir
    files = json.loads((folder / "manifest.json").read_text())["files"]
    assert {"text_encoder.onnx", "text_encoder.st.model.safetensors"} <= set(files)
    loaded = shipml.load("fast", registry_uri=str(onnx_registry))
    assert loaded.encoder.text_encoder.runtime_kind == "onnx-int8"
    test = pd.read_csv(BANKING_TEST)
    np.testing.assert_allclose(
        loaded.predict_proba(test).to_numpy(), model.predict_proba(test).to_numpy(), atol=1e-5
    )
    assert float(np.mean(loaded.predict(test) == test["category"].to_numpy())) >= 0.9


def test_stored_int8_model_predicts_without_torch(model, onnx_registry, tmp_path):
    code = (
        "import sys, shipml\n"
        f"m = shipml.load('fast', registry_uri={str(onnx_registry)!r})\n"
        "print(m.predict([{'text': 'my card was stolen'}])[0])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    env = {"SHIPML_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    label, imported = out.stdout.strip().splitlines()[-2:]
    assert label == "lost_or_stolen_card"
    assert imported == "False False"


def test_export_failure_keeps_pytorch(monkeypatch, encoder):
    import shipml
    import shipml.encoders.onnx as onnx
    from shipml.learners.runtime import pick_runtime

    def broken(_encoder):
        raise RuntimeError("exporter exploded")

    trained = shipml.train(BANKING, target="category", time_budget=20, n_trials=1, mode="embed",
                           progress=False, report=False)  # fmt: skip
    torch_encoder = encoder.with_weights(encoder.module, source="pytorch")
    trained.encoder.text_encoder = torch_encoder
    monkeypatch.setattr(onnx, "export_onnx", broken)
    rows = pd.read_csv(BANKING_TEST)
    result = pick_runtime(trained, rows, rows["category"].to_numpy())
    assert result["runtime"] == "pytorch" and "exporter exploded" in result["note"]
    assert trained.encoder.text_encoder is torch_encoder
    assert len(trained.predict(rows.head(3))) == 3
