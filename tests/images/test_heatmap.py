"""Occlusion heat maps: where hiding part of a photo changes the model's answer most."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tests.conftest import DEFECTS

from shipml.errors import DataError, UsageError
from shipml.images.heatmap import (
    hottest_region,
    occlusion_map,
    overlay_png,
    patch_boxes,
    pixel_heat,
)


def _surface(size: int = 64, square=(40, 8, 56, 24)) -> Image.Image:
    """Mid-grey noise with one dark square (left, top, right, bottom)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(110, 150, (size, size, 3)).astype(np.uint8)
    left, top, right, bottom = square
    pixels[top:bottom, left:right] = 10
    return Image.fromarray(pixels)


def _darkness_scorer(calls: list):
    """P(defect) grows with the share of dark pixels: a 'model' that looks at the square."""

    def score(cells):
        calls.append(len(cells))
        dark = [(np.asarray(Image.open(io.BytesIO(c)).convert("L")) < 50).mean() for c in cells]
        p = np.clip(np.array(dark) * 20, 0, 1)
        return np.column_stack([1 - p, p])

    return score


def test_patches_are_a_quarter_of_the_side_at_half_a_patch_stride_and_cover_the_image():
    boxes = patch_boxes((64, 48))
    assert len(boxes) == 49
    assert {(r - left, b - t) for left, t, r, b in boxes} == {(16, 12)}
    assert sorted({left for left, *_ in boxes}) == list(range(0, 49, 8))
    assert sorted({t for _, t, *_ in boxes}) == list(range(0, 37, 6))
    covered = np.zeros((48, 64), dtype=int)
    for left, t, r, b in boxes:
        covered[t:b, left:r] += 1
    assert covered.min() >= 1


def test_one_batch_of_occluded_copies_finds_the_dark_square():
    calls: list[int] = []
    image = _surface()
    heat = occlusion_map(image, _darkness_scorer(calls), grid=7)
    assert calls == [50]  # the image and its 49 occluded copies, in one call
    assert heat.shape == (7, 7)
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    left, top, right, bottom = patch_boxes(image.size)[row * 7 + col]
    assert (left, top, right, bottom) == (40, 8, 56, 24)  # the patch that hides it all
    assert heat[row, col] > 0.9 and np.abs(heat[4:, :4]).max() == 0  # far away: no effect
    assert hottest_region(heat) == "top-right"
    again = occlusion_map(image, _darkness_scorer([]), grid=7)
    np.testing.assert_array_equal(heat, again)  # deterministic


def test_pixel_heat_is_the_mean_of_the_covering_patches():
    heat = np.zeros((3, 3))
    heat[0, 0] = 1.0
    pixels = pixel_heat(heat, (8, 8))  # patches 4 x 4 at 0, 2, 4
    assert pixels.shape == (8, 8)
    assert pixels[0, 0] == 1.0 and pixels[3, 3] == pytest.approx(1 / 4) and pixels[7, 7] == 0


def test_the_overlay_is_a_png_of_the_image_size_red_where_the_heat_is():
    image = _surface(square=(4, 40, 20, 56))
    heat = occlusion_map(image, _darkness_scorer([]))
    overlay = Image.open(io.BytesIO(overlay_png(image, heat)))
    assert overlay.format == "PNG" and overlay.size == image.size and overlay.mode == "RGB"
    hot = np.asarray(overlay, dtype=int)[48, 12]  # in the square
    cold = np.asarray(overlay, dtype=int)[8, 56]
    assert hot[0] > hot[2] + 40  # red over the square
    assert cold[2] > cold[0]  # a blue tint where nothing mattered
    wide = Image.new("RGB", (90, 30), (120, 120, 120))
    assert Image.open(io.BytesIO(overlay_png(wide, np.zeros((7, 7))))).size == (90, 30)


@pytest.mark.parametrize(
    ("cell", "name"),
    [((0, 0), "top-left"), ((0, 3), "top"), ((3, 3), "centre"), ((3, 6), "right"),
     ((6, 0), "bottom-left"), ((6, 6), "bottom-right")],
)  # fmt: skip
def test_the_hottest_region_in_words(cell, name):
    heat = np.zeros((7, 7))
    heat[cell] = 0.5
    assert hottest_region(heat) == name


def test_bad_grids_and_scorers_are_clear_errors():
    image = _surface()
    with pytest.raises(UsageError, match="grid must be between 2 and 16"):
        occlusion_map(image, _darkness_scorer([]), grid=40)
    with pytest.raises(UsageError, match="whole number"):
        occlusion_map(image, _darkness_scorer([]), grid=7.5)
    with pytest.raises(DataError, match="one row of class probabilities per image"):
        occlusion_map(image, lambda cells: np.ones((3, 2)), grid=3)


def _strongest_spots(n: int):
    """The `n` spot images whose blob stands out most, and where it is (x, y): the darkest
    point of the image once smoothed, against its local background (lighting removed)."""
    from scipy.ndimage import gaussian_filter

    from shipml.images.decode import load_image

    found = []
    for path in sorted((DEFECTS / "spot").iterdir()):
        grey = np.asarray(load_image(path).convert("L"), dtype=float)
        contrast = gaussian_filter(grey, 2) - gaussian_filter(grey, 12)
        y, x = np.unravel_index(np.argmin(contrast), contrast.shape)
        found.append((contrast.min(), path, (x, y)))
    return [(path, xy) for _, path, xy in sorted(found)[:n]]


def test_the_model_looks_at_the_spot(defects_model):
    for path, (x, y) in _strongest_spots(4):
        (item,) = defects_model.explain_image(path)
        assert item.prediction == "spot" and item.probability > 0.5
        assert item.name == path.name and item.heat.shape == (7, 7)
        left, top, right, bottom = patch_boxes(item.image.size)[int(np.argmax(item.heat))]
        distance = np.hypot((left + right) / 2 - x, (top + bottom) / 2 - y)
        assert distance <= 12, (path.name, (x, y), (left, top, right, bottom))
        # the spot stands out of the map (not an argmax of noise): the Lite2 embeddings' model
        # is near certain (p ~0.998), so one covered patch moves it by a few points, not 20
        assert item.heat.max() > 0.02 and item.heat.max() > 10 * np.median(np.abs(item.heat))


def test_explain_of_an_image_model_is_a_line_per_image(defects_model, tmp_path):
    import shutil

    for name in ("spot_000.png", "spot_001.jpg"):
        shutil.copy(DEFECTS / "spot" / name, tmp_path / name)
    frame = defects_model.explain(tmp_path, top=3)
    assert list(frame.columns) == ["image", "prediction", "probability", "region", "heat"]
    assert list(frame["image"]) == ["spot_000.png", "spot_001.jpg"]
    assert frame["heat"].iloc[0].shape == (7, 7)
    with pytest.raises(DataError, match="not_an_image.jpg: not an image"):
        defects_model.explain_image(DEFECTS.parent / "bad" / "not_an_image.jpg")
    with pytest.raises(UsageError, match="not an image column"):
        defects_model.explain_image(tmp_path, column="photo")
