"""image_stats: size, brightness, contrast, saturation per image, measured on a small copy."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import DATA
from shipml.errors import DataError
from shipml.images.sources import read_image_folder
from shipml.images.stats import STATS, image_stats

BAD = DATA / "images" / "bad"


def stats_of(name: str) -> dict:
    return image_stats([BAD / name]).iloc[0].to_dict()


def test_known_images_give_known_numbers():
    grey = stats_of("gray16.png")  # a 16-bit ramp to half scale
    assert grey["brightness"] == pytest.approx(63.7, abs=0.6) and grey["saturation"] == 0
    rgba = stats_of("rgba.png")  # left white (transparent), right pure blue
    assert rgba["brightness"] == pytest.approx((255 + 0.114 * 255) / 2, abs=0.5)
    assert rgba["saturation"] == pytest.approx(255 / 2, abs=0.5)
    tiny = stats_of("tiny.png")  # one pixel (10, 20, 30)
    assert tiny == pytest.approx(
        {"width": 1, "height": 1, "brightness": 18.15, "contrast": 0, "saturation": 170}, abs=0.1
    )
    turned = stats_of("exif_rotated.jpg")
    assert (turned["width"], turned["height"]) == (16, 32)  # as displayed


def test_a_large_photo_is_measured_on_a_small_copy_with_its_full_size():
    ramp = np.tile(np.linspace(0, 255, 3000), (2000, 1)).astype(np.uint8)
    data = io.BytesIO()
    Image.fromarray(ramp).convert("RGB").save(data, "JPEG", quality=85)
    row = image_stats([data.getvalue()]).iloc[0]
    assert (row["width"], row["height"]) == (3000, 2000)
    assert row["brightness"] == pytest.approx(ramp.mean(), abs=1.5)
    assert row["contrast"] == pytest.approx(ramp.std(), rel=0.03)


def test_missing_and_unreadable_cells():
    cells = pd.Series([str(BAD / "tiny.png"), None, str(BAD / "truncated.jpg")], index=[7, 8, 9])
    with pytest.raises(DataError, match="truncated.jpg"):
        image_stats(cells)
    with pytest.raises(DataError, match="row 3"):
        image_stats(cells, labels=["row 1", "row 2", "row 3"])
    frame = image_stats(cells, errors="nan")
    assert list(frame.columns) == list(STATS) and list(frame.index) == [7, 8, 9]
    assert frame.loc[7, "width"] == 1 and frame.loc[[8, 9]].isna().all().all()
    with pytest.raises(ValueError, match="errors must be"):
        image_stats(cells, errors="skip")
    assert image_stats([]).shape == (0, len(STATS))


def test_the_defect_set_has_varied_surfaces():
    """The generator varies brightness and texture: the monitor's numbers must see it."""
    table = read_image_folder(DATA / "images" / "defects")
    stats = image_stats(table.frame["image"], labels=table.frame["name"])
    assert len(stats) == 144 and (stats[["width", "height"]] == 64).all().all()
    assert stats["brightness"].min() < 100 and stats["brightness"].max() > 170
    assert stats["contrast"].std() > 2 and stats.notna().all().all()
