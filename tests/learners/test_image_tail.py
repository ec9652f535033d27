"""The `finetune` image mode's network: the pretrained last block and head, trained (LP-FT) on
the activation maps of the committed defect images, within an injected clock's deadline; stored
and reloaded as safetensors; bad input refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import Tick

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from shipml.errors import SchemaError, UsageError  # noqa: E402
from shipml.learners.image_tail import FittedTail, fit_tail, tail_from_artifacts  # noqa: E402

DEFECTS = Path(__file__).resolve().parents[1] / "data" / "images" / "defects"
CLASSES = ("ok", "scratch", "spot")


@pytest.fixture(scope="module")
def maps():
    """(maps (144, 192, 7, 7), class index, layout, train rows, valid rows): 108 / 36, seed 0."""
    from shipml.encoders.image import load_image_encoder

    files = sorted(p for p in DEFECTS.glob("*/*") if p.suffix in (".png", ".jpg"))
    y = np.array([CLASSES.index(p.parent.name) for p in files])
    encoder = load_image_encoder().maps()
    channels, side, _ = encoder.settings["map"]
    X = encoder.encode([str(f) for f in files]).reshape(len(files), channels, side, side)
    perm = np.random.default_rng(0).permutation(len(files))
    return X, y, encoder.layout, perm[36:], perm[:36]


def test_the_probe_alone_already_separates_the_classes(maps):
    X, y, layout, train, valid = maps
    # a deadline already past: no fine-tuning step, the linear probe's weights are kept
    fitted = fit_tail(X, y, train, valid, layout=layout, n_classes=3, deadline=0.0, clock=Tick())
    assert fitted.summary["steps"] == 0 and fitted.summary["kept"].startswith("probe")
    accuracy = np.mean(fitted.predict_proba(X[valid]).argmax(1) == y[valid])
    assert accuracy == pytest.approx(fitted.summary["probe_valid_score"])
    assert accuracy >= 0.6  # chance is 1/3; measured 0.78 (28 of 36)


def test_fine_tuning_keeps_the_better_of_probe_and_tuned_weights(maps):
    X, y, layout, train, valid = maps
    fitted = fit_tail(X, y, train, valid, layout=layout, n_classes=3,
                      deadline=time.monotonic() + 600,
                      settings={"max_epochs": 4, "patience": None})  # fmt: skip
    summary = fitted.summary
    assert summary["steps"] == 4 * 2 and summary["stopped"] == "planned steps done"  # 108 / 64
    accuracy = float(np.mean(fitted.predict_proba(X[valid]).argmax(1) == y[valid]))
    assert accuracy >= summary["probe_valid_score"]
    best = summary["best_valid_score"]
    assert accuracy == pytest.approx(max(best, summary["probe_valid_score"]), abs=1e-4)


def test_the_injected_clock_fixes_the_run(maps):
    X, y, layout, train, valid = maps
    one = fit_tail(X, y, train, valid, layout=layout, n_classes=3, deadline=40.0, clock=Tick())
    two = fit_tail(X, y, train, valid, layout=layout, n_classes=3, deadline=40.0, clock=Tick())
    assert one.summary["steps"] == two.summary["steps"] > 0
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


def test_artifacts_read_back_into_the_same_probabilities(maps, tmp_path):
    from shipml.registry.artifacts import ArtifactWriter
    from shipml.registry.formats import ArtifactReader

    X, y, layout, train, valid = maps
    fitted = fit_tail(X, y, train, valid, layout=layout, n_classes=3, deadline=0.0, clock=Tick())
    meta, files = fitted.artifacts("member0")
    assert list(files) == ["member0.safetensors"]
    writer = ArtifactWriter(tmp_path / "w")
    writer.write_json("meta.json", meta)
    for name, content in files.items():
        writer.write_bytes(name, content)
    writer.finish()
    reader = ArtifactReader(writer.publish(tmp_path / "v1"))
    loaded = tail_from_artifacts(reader.parse("meta.json", "JSON", json.loads), reader)
    assert isinstance(loaded, FittedTail) and loaded.settings == fitted.settings
    np.testing.assert_allclose(loaded.predict_proba(X, batch_size=50), fitted.predict_proba(X),
                               rtol=0, atol=1e-6)  # fmt: skip
    with pytest.raises(SchemaError, match=r"\(n, 192, 7, 7\)"):
        loaded.predict_proba(X[:, :10])


def test_bad_settings_and_single_class_are_refused(maps):
    X, y, layout, train, valid = maps
    with pytest.raises(UsageError, match="unknown finetune settings"):
        fit_tail(X, y, train, valid, layout=layout, n_classes=3, deadline=0.0,
                 settings={"learning_rate": 1})  # fmt: skip
    with pytest.raises(UsageError, match="classifiers"):
        fit_tail(X, y * 0, train, valid, layout=layout, n_classes=1, deadline=0.0)


def test_importing_the_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, shipml.learners.image_tail, shipml.learners.image_finetune; " \
           "print('torch' in sys.modules)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
