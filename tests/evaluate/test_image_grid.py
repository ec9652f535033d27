"""The report's grid of scored images: thumbnails as data URIs, mistakes first."""

from __future__ import annotations

import base64
import io
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from tests.conftest import DATA, DEFECTS

from shipml.evaluate.image_grid import image_grid, thumbnail_uri

BAD = DATA / "images" / "bad"


def _decoded(uri: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :])))


def test_a_thumbnail_is_a_small_jpeg_data_uri(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(big)
    uri, width, height = thumbnail_uri(str(big))
    thumb = _decoded(uri)
    assert thumb.format == "JPEG" and thumb.size == (width, height) == (96, 64)
    uri, *_ = thumbnail_uri(big.read_bytes(), side=32)  # bytes (a zip member) too
    assert _decoded(uri).size == (32, 21)


def test_mistakes_come_first_most_confident_first_then_each_class_in_turn():
    cells = [str(DEFECTS / "ok" / "ok_000.png")] * 8
    y_true = ["ok", "ok", "spot", "spot", "ok", "spot", "scratch", "ok"]
    y_pred = ["ok", "spot", "spot", "ok", "ok", "spot", "scratch", "scratch"]
    classes = ["ok", "scratch", "spot"]
    proba = np.full((8, 3), 0.1)
    for i, (label, p) in enumerate(zip(y_pred, [0.8, 0.6, 0.8, 0.9, 0.8, 0.7, 0.8, 0.7])):
        proba[i, classes.index(label)] = p
    grid = image_grid(cells, y_true, y_pred, proba, classes, limit=6)
    order = [(t["predicted"], t["real"], t["probability"]) for t in grid["tiles"]]
    assert order == [
        ("ok", "spot", 0.9), ("scratch", "ok", 0.7), ("spot", "ok", 0.6),  # mistakes
        ("ok", "ok", 0.8), ("scratch", "scratch", 0.8), ("spot", "spot", 0.8),  # a class each
    ]  # fmt: skip
    assert [t["wrong"] for t in grid["tiles"]] == [True] * 3 + [False] * 3
    assert grid["n_wrong"] == grid["n_wrong_shown"] == 3 and grid["n_scored"] == 8
    assert all(_decoded(t["uri"]).size == (64, 64) for t in grid["tiles"])
    no_proba = image_grid(cells, y_true, y_pred)
    assert not no_proba["by_confidence"] and no_proba["tiles"][0]["probability"] is None
    assert len(no_proba["tiles"]) == 8  # under the 48 limit: all


def test_an_unreadable_image_keeps_its_tile_without_a_picture():
    cells = [str(BAD / "not_an_image.jpg"), str(BAD / "truncated.jpg"), str(BAD / "rgba.png")]
    grid = image_grid(cells, ["a", "a", "b"], ["b", "a", "b"])
    tiles = grid["tiles"]
    assert tiles[0]["wrong"] and tiles[0]["uri"] is None
    assert tiles[-1]["uri"].startswith("data:image/jpeg;base64,")


def _mislabelled_folder(root):
    """Defect photos for evaluation, three spot photos filed under ok (mistakes for sure), and
    one large photo (its thumbnail must be shrunk)."""
    for label, names in {
        "ok": ["ok_000.png", "ok_001.jpg", "ok_002.jpg"],
        "scratch": ["scratch_000.png", "scratch_001.jpg"],
        "spot": ["spot_000.png", "spot_001.jpg", "spot_002.jpg"],
    }.items():
        (root / label).mkdir(parents=True)
        for name in names:
            shutil.copy(DEFECTS / label / name, root / label / name)
    for name in ("spot_007.jpg", "spot_029.jpg", "spot_030.png"):
        shutil.copy(DEFECTS / "spot" / name, root / "ok" / f"filed_{name}")
    Image.open(DEFECTS / "spot" / "spot_037.jpg").resize((400, 400)).save(root / "spot" / "big.jpg")
    return root


def test_the_evaluation_report_shows_the_images_mistakes_first(defects_model, tmp_path):
    root = _mislabelled_folder(tmp_path / "photos")
    metrics = defects_model.evaluate(root, report=tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert metrics["accuracy"] < 1.0
    section = html[html.index('<section id="images">') :]
    section = section[: section.index("</section>")]
    figures = re.findall(r'<figure class="thumb( wrong)?"><img src="([^"]+)"[^>]*>'
                         r"<figcaption>([^<]+)<", section)  # fmt: skip
    assert len(figures) == 12
    wrong = [bool(w) for w, _, _ in figures]
    assert wrong == sorted(wrong, reverse=True) and sum(wrong) >= 3  # mistakes first
    assert "spot / ok" in [caption.strip() for _, _, caption in figures]
    assert all(uri.startswith("data:image/jpeg;base64,") for _, uri, _ in figures)
    assert max(max(_decoded(uri).size) for _, uri, _ in figures) == 96  # big.jpg, shrunk
    assert "Most confused classes" in html  # ok -> spot
    # self-contained, and where the photos are stored is nobody's business
    assert str(tmp_path) not in html and "filed_" not in html and "big.jpg" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)


def test_the_training_report_has_the_grid(defects_model):
    html = defects_model.report_path.read_text()
    assert '<section id="images">' in html and html.count("data:image/jpeg;base64,") >= 40
    assert str(DEFECTS) not in html


@pytest.mark.parametrize("task", ["regression"])
def test_no_grid_for_regression(tmp_path, task):
    from shipml.evaluate.report import write_report

    cells = [str(DEFECTS / "ok" / "ok_000.png")] * 3
    path = write_report(tmp_path / "r.html", title="t", task=task, metrics={"mae": 1.0},
                        y_true=[1.0, 2.0, 3.0], y_pred=[1.0, 2.0, 2.0], images=cells)  # fmt: skip
    assert '<section id="images">' not in path.read_text()
