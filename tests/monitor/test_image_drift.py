"""Drift of an image column: the training reference keeps statistics of the images (never the
images); live images, or what the prediction log kept of them, are tested against it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA

DEFECTS = DATA / "images" / "defects"


def _schema_and_frame():
    from shipml.data.schema import infer_schema

    paths = sorted(str(p) for p in DEFECTS.glob("*/*.*"))
    frame = pd.DataFrame({"image": paths, "label": [p.split("/")[-2] for p in paths]})
    return infer_schema(frame, "label"), frame


def _darker(paths, factor: float) -> list[bytes]:
    from PIL import Image

    out = []
    for p in paths:
        image = Image.open(p).convert("RGB")
        pixels = (np.asarray(image, dtype=np.float64) * factor).clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def test_the_reference_keeps_statistics_never_images():
    from shipml.monitor.reference import build_reference

    schema, frame = _schema_and_frame()
    assert schema.column("image").kind == "image"
    ref = build_reference(schema.coerce(frame, strict=False), schema)
    summary = ref["columns"]["image"]
    assert summary["kind"] == "image" and summary["missing"] == 0.0
    assert set(summary["stats"]) == {"width", "height", "brightness", "contrast", "saturation"}
    assert len(summary["stats"]["brightness"]) == len(frame)
    text = json.dumps(ref, allow_nan=False)
    assert "defects" not in text and ".png" not in text  # no path, no pixels


def test_darker_live_images_drift_on_brightness_similar_ones_do_not():
    from shipml.monitor.drift import column_drift, dataset_drift
    from shipml.monitor.reference import build_reference
    from shipml.serve.images import log_cell

    schema, frame = _schema_and_frame()
    rng = np.random.default_rng(0)
    train = rng.permutation(len(frame))
    ref = build_reference(schema.coerce(frame.iloc[train[:100]], strict=False), schema)
    held = frame["image"].iloc[train[100:]].tolist()
    same = pd.Series([log_cell(Path(p).read_bytes()) for p in held], name="image")
    result = column_drift(ref["columns"]["image"], same, "image")
    assert result["drift"] is False and result["method"].startswith("image ")
    assert set(result["stats"]) >= {"brightness", "contrast"}
    dark = pd.Series([log_cell(b) for b in _darker(held, 0.5)], name="image")
    result = column_drift(ref["columns"]["image"], dark, "image")
    assert result["drift"] is True and "brightness" in result["method"]
    assert result["stats"]["brightness"]["drift"] is True
    # raw images (a Python caller's frame) are measured the same way as logged statistics
    raw = pd.Series(_darker(held, 0.5), name="image")
    assert column_drift(ref["columns"]["image"], raw, "image")["drift"] is True
    whole = dataset_drift(ref, pd.DataFrame({"image": dark}), schema)
    assert whole["n_drifted"] == 1 and whole["dataset_drift"] is True


def test_too_few_images_is_said_not_guessed():
    from shipml.monitor.drift import column_drift
    from shipml.monitor.reference import build_reference

    schema, frame = _schema_and_frame()
    ref = build_reference(schema.coerce(frame, strict=False), schema)
    result = column_drift(ref["columns"]["image"], pd.Series([None, None], name="image"), "image")
    assert result["method"] == "too few values" and result["drift"] is False
    assert result["current_missing"] == 1.0


@pytest.mark.parametrize("kind", ["image"])
def test_the_plot_shows_the_most_drifted_statistic(kind):
    from PIL import Image

    from shipml.monitor.drift import drift_png
    from shipml.monitor.reference import build_reference
    from shipml.serve.images import log_cell

    schema, frame = _schema_and_frame()
    ref = build_reference(schema.coerce(frame, strict=False), schema)
    dark = pd.Series([log_cell(b) for b in _darker(frame["image"][:30], 0.4)], name="image")
    png = drift_png(ref["columns"]["image"], dark, kind)
    assert Image.open(io.BytesIO(png)).size[0] > 100
