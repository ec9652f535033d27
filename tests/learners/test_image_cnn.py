"""The `scratch` image mode: a small CNN learns the committed defect images, keeps to its
deadline on an injected clock, stores and reloads as safetensors, and refuses bad input."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import Tick

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from shipml.errors import DataError, SchemaError, TargetError, UsageError  # noqa: E402
from shipml.learners.image_cnn import cnn_from_artifacts, fit_cnn, prepare_pixels  # noqa: E402

DEFECTS = Path(__file__).resolve().parents[1] / "data" / "images" / "defects"
CLASSES = ("ok", "scratch", "spot")
QUICK = {"max_epochs": 2, "patience": None}


@pytest.fixture(scope="module")
def defects():
    """(files, class index, 32-px pixels, train rows, valid rows): 108 / 36 images, seed 0."""
    files = sorted(p for p in DEFECTS.glob("*/*") if p.suffix in (".png", ".jpg"))
    y = np.array([CLASSES.index(p.parent.name) for p in files])
    perm = np.random.default_rng(0).permutation(len(files))
    return files, y, prepare_pixels(files, 32), perm[36:], perm[:36]


def _grey_png(seed: int, side: int = 8) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(out, format="PNG")
    return out.getvalue()


def test_pixels_size_and_channels_come_from_the_images(defects):
    files = defects[0]
    pixels = prepare_pixels(files[:6])
    # the defect surfaces carry a slight colour tint (and rust spots): RGB, their 64 px side
    assert pixels.shape == (6, 3, 64, 64) and pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    grey = prepare_pixels([_grey_png(0), _grey_png(1, side=10)])
    assert grey.shape == (2, 1, 16, 16)  # grey 8-10 px images: one channel, side clipped to 16
    assert prepare_pixels([_grey_png(0)], 32, 3).shape == (1, 3, 32, 32)
    with pytest.raises(DataError, match="empty.png"):
        prepare_pixels([files[0], DEFECTS.parent / "bad" / "empty.png"], 32)
    with pytest.raises(DataError, match="image 1"):
        prepare_pixels([_grey_png(0), b"not a picture"], 32)


def test_it_learns_the_defect_images(defects):
    files, y, _, train, valid = defects
    pixels = prepare_pixels(files)  # their own 64 px
    # A fixed number of epochs and a far deadline: the result does not depend on the machine
    # (~20 s on a shared 2-core machine). 108 training images: 4 steps of 27 an epoch.
    fitted = fit_cnn(pixels, y, train, valid, n_classes=3, deadline=time.monotonic() + 600,
                     settings={"max_epochs": 20, "patience": None})  # fmt: skip
    summary = fitted.summary
    assert summary["steps"] == 20 * 4 and summary["stopped"] == "planned steps done"
    accuracy = np.mean(fitted.predict_proba(pixels[valid]).argmax(1) == y[valid])
    # chance is 1/3; measured 0.889 (32 of 36; at 32 px and 30 epochs, 0.806)
    assert accuracy >= 0.8, summary["history"]
    assert accuracy == summary["best_valid_score"] or summary["best_step"] < summary["steps"]


def test_the_deadline_of_an_injected_clock_fixes_the_number_of_steps(defects):
    _, y, pixels, train, valid = defects
    clock = Tick()
    fitted = fit_cnn(pixels, y, train, valid, n_classes=3, deadline=60.0, clock=clock)
    # tuning.fit_loop reads the clock 3 times a step (deadline check, start, end) and 5 times a
    # checkpoint (an evaluation's start and end, the elapsed time, the re-plan, the progress
    # event). 4 timed steps end at tick 13; one timed evaluation (1 s); 44 s left: 38 steps
    # after ~6 evaluations' time, scored every 7. At step 7 (tick 29) the plan is trimmed to
    # what fits in 0.95 x (60 - 29 - 5 evaluations) = 24 more: 31; at step 14 (tick 55) to 15.
    assert fitted.summary["steps"] == 15, fitted.summary
    assert fitted.summary["stopped"] == "planned steps done"
    assert clock.now == 65  # the last checkpoint (step 15) runs ticks 60-64, the total time 65
    again = fit_cnn(pixels, y, train, valid, n_classes=3, deadline=60.0, clock=Tick())
    assert again.summary["steps"] == 15  # same seed, same clock: the same run
    np.testing.assert_array_equal(again.predict_proba(pixels), fitted.predict_proba(pixels))


def test_artifacts_read_back_into_the_same_probabilities(defects, tmp_path):
    from shipml.registry.artifacts import ArtifactWriter
    from shipml.registry.formats import ArtifactReader

    _, y, pixels, train, valid = defects
    fitted = fit_cnn(pixels, y, train, valid, n_classes=3, deadline=1e9, settings=QUICK)
    meta, files = fitted.artifacts("member0")
    assert list(files) == ["member0.safetensors"]
    writer = ArtifactWriter(tmp_path / "w")
    writer.write_json("meta.json", meta)  # the meta is plain JSON
    for name, content in files.items():
        writer.write_bytes(name, content)
    writer.finish()
    reader = ArtifactReader(writer.publish(tmp_path / "v1"))
    loaded = cnn_from_artifacts(reader.parse("meta.json", "JSON", _json), reader)
    proba = loaded.predict_proba(pixels, batch_size=50)  # batches do not change the answer
    np.testing.assert_allclose(proba, fitted.predict_proba(pixels), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict_proba(pixels), fitted.predict_proba(pixels))
    assert proba.shape == (144, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert loaded.settings == fitted.settings
    assert loaded.pixels([DEFECTS / "ok" / "ok_000.png"]).shape == (1, 3, 32, 32)
    with pytest.raises(SchemaError, match=r"\(n, 3, 32, 32\)"):
        loaded.predict_proba(pixels[:, :1])


def _json(data: bytes):
    import json

    return json.loads(data)


def test_bad_inputs_are_refused_with_a_named_reason(defects):
    _, y, pixels, train, valid = defects
    kwargs = {"n_classes": 3, "deadline": 1e9, "settings": QUICK}
    with pytest.raises(TargetError, match="at least 2 classes"):
        one = train[y[train] == 0]
        fit_cnn(pixels, y, one, valid, **kwargs)
    with pytest.raises(DataError, match="143 labels for 144 images"):
        fit_cnn(pixels, y[:-1], train, valid, **kwargs)
    with pytest.raises(TargetError, match=r"0\.\.1"):
        fit_cnn(pixels, y, train, valid, **{**kwargs, "n_classes": 2})
    with pytest.raises(DataError, match="valid_rows"):
        fit_cnn(pixels, y, train, np.array([144]), **kwargs)
    with pytest.raises(DataError, match="shape"):
        fit_cnn(pixels[:, 0], y, train, valid, **kwargs)
    with pytest.raises(UsageError, match="widht"):
        fit_cnn(pixels, y, train, valid, **{**kwargs, "settings": {"widht": [8]}})


def test_without_validation_rows_the_last_weights_are_kept(defects):
    import json

    _, y, pixels, train, _ = defects
    fitted = fit_cnn(pixels, y, train, np.array([], dtype=int), n_classes=3, deadline=1e9,
                     settings=QUICK)  # fmt: skip
    assert fitted.summary["best_step"] == fitted.summary["steps"] == 2 * 4
    json.dumps(fitted.artifacts("m")[0], allow_nan=False)  # strict JSON: no NaN, no Infinity


def test_evaluations_need_not_come_every_epoch():
    from shipml.learners.tuning import plan_steps

    # 300 steps of 4-step epochs: ~6 evaluations (every 50), not one every epoch (every 4)
    assert plan_steps(0.1, 0.0, 30.0, 4, 100, every_epoch=False) == (300, 50)
    assert plan_steps(0.1, 0.0, 30.0, 4, 100) == (300, 4)


def test_importing_the_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, shipml.learners.image_cnn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
