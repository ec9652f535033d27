"""A model file that matches its manifest but is not its declared format (a pickle put in its
place with manifest.json rewritten to match, random bytes, a truncated copy) is an
ArtifactIntegrityError naming the artifact inside the model, exit 2 in the CLI, never an
"internal error", never a server path, and the pickle is never unpickled (issue 13, item 10).

Data: the session's German-credit model (conftest credit_model), copied into a throw-away
registry per test; the text encoder's formats (ONNX, tokenizer, safetensors) on a stored
encoder's files."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import shipml
from conftest import GERMAN, run_cli
from shipml.errors import ArtifactIntegrityError
from shipml.registry.store import Registry

MODES = ["pickle", "random", "truncated"]


class Trap:
    """Unpickling this creates a marker file: the proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture()
def copy(credit_model, registry_dir, tmp_path):
    """(registry, version) holding a copy of credit v1's files."""
    source = Registry(registry_dir)
    info = source.resolve("credit/1")
    reg = Registry(tmp_path / "reg")
    writer = reg.writer()
    for name in source.open(info).files:
        writer.write_bytes(name, (info.artifact_dir / name).read_bytes())
    writer.finish()
    version = reg.register("credit", writer, task=info.task, metrics=info.metrics,
                           lineage=info.lineage, schema=info.schema)  # fmt: skip
    return reg, version


def replace(folder: Path, name: str, mode: str, marker: Path) -> None:
    """Put other bytes in `name` and rewrite manifest.json to match (a tamperer's move)."""
    path = folder / name
    if mode == "pickle":
        data = pickle.dumps(Trap(marker))
    elif mode == "random":
        data = hashlib.sha256(name.encode()).digest() * 200
    else:
        data = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def kinds(folder: Path) -> list[str]:
    """One file of each kind the model loads: its JSON files, a LightGBM model, a .npy."""
    spec = json.loads((folder / "model.json").read_text())
    boosters = [f for m in spec["members"] if m["kind"] == "lightgbm" for f in m["files"]]
    arrays = [f for m in spec["members"] if m["kind"] == "linear" for f in m["files"]]
    assert boosters, "the credit model has LightGBM members"
    return ["model.json", "schema.json", "encoder.json", boosters[0], *arrays[:1]]


def assert_refused(message: str, name: str, folder: Path) -> None:
    assert f"artifact {name!r} of credit v1 is not a valid" in message, message
    assert str(folder) not in message  # the folder's path is not for clients to see
    assert "internal error" not in message and "Traceback" not in message


@pytest.mark.parametrize("mode", MODES)
def test_predict_refuses_a_file_that_is_not_its_format(copy, tmp_path, capsys, mode):
    reg, version = copy
    marker = tmp_path / "UNPICKLED"
    folder = version.artifact_dir
    manifest = (folder / "manifest.json").read_bytes()
    for name in kinds(folder):
        original = (folder / name).read_bytes()
        if mode == "truncated" and name.endswith(".txt"):
            continue  # in a child process (below): LightGBM crashes on one without the check
        replace(version.artifact_dir, name, mode, marker)
        with pytest.raises(ArtifactIntegrityError) as exc:
            shipml.load("credit", registry=reg)
        assert_refused(str(exc.value), name, version.artifact_dir)
        assert exc.value.path == str(version.artifact_dir / name)  # kept for logs and --debug
        args = ["predict", "credit", GERMAN, "--registry-uri", tmp_path / "reg"]
        code, out, err = run_cli([*args, "-o", tmp_path / "out.csv"], capsys)
        assert code == 2, err
        assert_refused(err, name, version.artifact_dir)
        (folder / name).write_bytes(original)  # back as it was, for the next kind
        (folder / "manifest.json").write_bytes(manifest)
    assert not marker.exists()


def test_a_truncated_lightgbm_model_does_not_crash_the_process(copy, tmp_path):
    """LightGBM reads a cut-short model text past its end (SIGSEGV/SIGABRT on today's main)."""
    reg, version = copy
    spec = json.loads((version.artifact_dir / "model.json").read_text())
    name = next(m["files"][0] for m in spec["members"] if m["kind"] == "lightgbm")
    replace(version.artifact_dir, name, "truncated", tmp_path / "unused")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-m", "shipml", "evaluate", "credit", "--data", str(GERMAN),
         "--registry-uri", str(tmp_path / "reg"), "-o", str(tmp_path / "report.html")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "is not a valid LightGBM model file" in out.stderr
    assert_refused(" ".join(out.stderr.split()), name, version.artifact_dir)


def test_debug_shows_where_the_file_is(copy, tmp_path, capsys):
    reg, version = copy
    replace(version.artifact_dir, "schema.json", "pickle", tmp_path / "UNPICKLED")
    args = ["predict", "credit", GERMAN, "--registry-uri", tmp_path / "reg", "--debug"]
    code, _out, err = run_cli([*args, "-o", tmp_path / "out.csv"], capsys)
    assert code == 2
    assert str(version.artifact_dir / "schema.json") in " ".join(err.split()).replace(" ", "")
    assert not (tmp_path / "UNPICKLED").exists()


def test_report_and_drift_reference_are_checked_too(copy, tmp_path, capsys):
    reg, version = copy
    marker = tmp_path / "UNPICKLED"
    replace(version.artifact_dir, "drift_reference.json", "pickle", marker)
    with pytest.raises(ArtifactIntegrityError, match="'drift_reference.json' of credit v1"):
        reg.open(version).read_json("drift_reference.json")
    if "report.html" in reg.open(version).files:
        replace(version.artifact_dir, "report.html", "random", marker)
        code, _out, err = run_cli(["report", "credit", "--registry-uri", tmp_path / "reg"], capsys)
        assert code == 2, err
        assert_refused(err, "report.html", version.artifact_dir)
    assert not marker.exists()


def test_json_that_is_not_a_model_is_an_integrity_error(copy):
    reg, version = copy
    folder = version.artifact_dir
    (folder / "model.json").write_text("[1, 2, 3]")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.json"] = hashlib.sha256(b"[1, 2, 3]").hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match="does not describe a shipml model"):
        shipml.load("credit", registry=reg)


@pytest.mark.parametrize("mode", MODES)
def test_text_encoder_files_that_are_not_their_format(tmp_path, mode):
    """The sentence encoder's files: ONNX graph and tokenizer (parsed at load), safetensors
    weights (parsed when PyTorch is first needed)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    from shipml.encoders import from_artifacts
    from shipml.registry.artifacts import ArtifactWriter
    from shipml.registry.formats import ArtifactReader

    marker = tmp_path / "UNPICKLED"
    good = _encoder_files()
    meta = {"id": "x", "source": "test", "settings": {"dim": 8, "max_length": 16, "pad_id": 0},
            "weights": "enc.safetensors", "tokenizer": "enc.tokenizer.json",
            "config": "enc.config.json", "onnx": "enc.onnx", "runtime": "onnx"}  # fmt: skip
    for name, kind in [("enc.onnx", "ONNX model"), ("enc.tokenizer.json", "tokenizer file")]:
        folder = tmp_path / f"{mode}-{name}"
        writer = ArtifactWriter(tmp_path / "root")
        for fname, content in good.items():
            writer.write_bytes(fname, content)
        writer.finish()
        writer.publish(folder)
        replace(folder, name, mode, marker)
        with pytest.raises(ArtifactIntegrityError) as exc:
            from_artifacts(meta, ArtifactReader(folder, label="intents v3"))
        assert f"artifact {name!r} of intents v3 is not a valid {kind}" in str(exc.value)
        assert str(folder) not in str(exc.value)
    pytest.importorskip("torch")
    folder = tmp_path / f"{mode}-weights"
    writer = ArtifactWriter(tmp_path / "root")
    for fname, content in good.items():
        writer.write_bytes(fname, content)
    writer.finish()
    writer.publish(folder)
    replace(folder, "enc.safetensors", mode, marker)
    encoder = from_artifacts({**meta, "onnx": None}, ArtifactReader(folder, label="intents v3"))
    with pytest.raises(ArtifactIntegrityError, match="'enc.safetensors' of intents v3 is not a"):
        encoder.module  # noqa: B018 - the PyTorch module loads on first use
    assert not marker.exists()


def _encoder_files() -> dict[str, bytes]:
    """A tiny valid ONNX graph, a tokenizer and safetensors weights, built in memory."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    weight = numpy_helper.from_array(np.ones((4, 8), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])], [weight],
    )  # fmt: skip
    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "card": 1}, unk_token="[UNK]"))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    weights = len(header).to_bytes(8, "little") + header + np.ones(2, np.float32).tobytes()
    return {
        "enc.onnx": helper.make_model(graph).SerializeToString(),
        "enc.tokenizer.json": tokenizer.to_str().encode(),
        "enc.config.json": json.dumps({"model_type": "bert"}).encode(),
        "enc.safetensors": weights,
    }
