"""Heat maps for a model that reads a photo and a table column (labels.csv: path, defect,
line_speed): the other columns stay as they are while the photo is occluded."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.conftest import DATA

pytest.importorskip("efficientnet_lite_pytorch")
LABELS = DATA / "images" / "labels.csv"


@pytest.fixture(scope="module")
def mixed_model():
    import shipml

    return shipml.train(LABELS, target="defect", time_budget=30, n_trials=2,
                        families=["linear"], progress=False)  # fmt: skip


def test_a_photo_and_a_number_explained_per_image(mixed_model, tmp_path):
    rows = pd.read_csv(LABELS)
    rows = rows[rows["defect"] == "spot"].head(2).reset_index(drop=True)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "defects").symlink_to(DATA / "images" / "defects")  # relative paths resolve
    items = mixed_model.explain_image(tmp_path / "rows.csv", grid=4)
    assert [e.name for e in items] == [p.rsplit("/", 1)[1] for p in rows["path"]]
    assert all(e.column == "path" and e.heat.shape == (4, 4) for e in items)
    proba = mixed_model.predict_proba(tmp_path / "rows.csv")
    for item, (_, p) in zip(items, proba.iterrows()):
        assert item.probability == pytest.approx(p.max())  # the untouched row's answer
    overlay = Image.open(io.BytesIO(items[0].overlay_png()))
    assert overlay.size == (64, 64)
    # a mixed model keeps its column reasons in explain
    frame = mixed_model.explain(tmp_path / "rows.csv")
    assert {"path", "line_speed"} <= set(frame["column"])
    metrics = mixed_model.evaluate(tmp_path / "rows.csv", report=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert metrics["n_rows"] == 2 and html.count("data:image/jpeg;base64,") == 2
    assert "spot_" not in html and np.isfinite(items[0].heat).all()
