"""load_image / image_size on every awkward input of tests/data/images/bad (make_images.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import DATA
from shipml.errors import DataError
from shipml.images import decode
from shipml.images.decode import IMAGE_SUFFIXES, image_size, load_image, load_sized

BAD = DATA / "images" / "bad"
DEFECTS = DATA / "images" / "defects"


def pixels(cell, **kw) -> np.ndarray:
    image = load_image(cell, **kw)
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


@pytest.mark.parametrize(
    "name, why",
    [
        ("truncated.jpg", "truncated"),
        ("not_an_image.jpg", "not an image"),
        ("empty.png", "empty"),
        ("bomb.png", "too large"),
        ("no_such_file.jpg", "no such file"),
    ],
)
def test_a_bad_input_is_a_data_error_naming_the_file(name, why):
    with pytest.raises(DataError, match=why) as caught:
        load_image(BAD / name)
    assert name in str(caught.value)
    with pytest.raises(DataError, match=why):  # the same from the file's bytes, with a label
        path = BAD / name
        load_image(path.read_bytes() if path.exists() else str(path), label=f"photos/{name}")


# (file, size as displayed, left/top pixel, right/bottom pixel), RGB, lossy formats within 8
FORMATS = [
    ("photo.tiff", (32, 16), (255, 0, 0), (0, 255, 0)),
    ("photo.webp", (32, 16), (255, 0, 0), (0, 0, 255)),
    ("photo.bmp", (32, 16), (0, 255, 0), (0, 0, 255)),
    ("cmyk.jpg", (32, 16), (0, 255, 255), (0, 0, 0)),  # cyan | black
    ("rgba.png", (32, 16), (255, 255, 255), (0, 0, 255)),  # transparent black is white
    ("gray_alpha.png", (32, 16), (255, 255, 255), (0, 0, 0)),
    ("palette_transparent.gif", (32, 16), (255, 255, 255), (255, 0, 0)),
    ("animated.gif", (16, 16), (0, 255, 0), (0, 255, 0)),  # the first frame, green
    ("exif_rotated.jpg", (16, 32), (255, 0, 0), (0, 0, 255)),  # red on top once turned
    ("tiny.png", (1, 1), (10, 20, 30), (10, 20, 30)),
]


@pytest.mark.parametrize("name, size, first, last", FORMATS)
def test_each_format_decodes_to_the_rgb_a_person_sees(name, size, first, last):
    rgb = pixels(BAD / name)
    assert (rgb.shape[1], rgb.shape[0]) == size
    assert image_size(BAD / name) == size
    assert np.abs(rgb[0, 0] - first).max() <= 8
    assert np.abs(rgb[-1, -1] - last).max() <= 8
    np.testing.assert_array_equal(pixels((BAD / name).read_bytes()), rgb)  # bytes == path


def test_exif_orientation_turns_the_stored_pixels():
    with Image.open(BAD / "exif_rotated.jpg") as stored:
        assert stored.size == (32, 16) and stored.getexif()[0x0112] == 6
    rgb = pixels(BAD / "exif_rotated.jpg")
    assert rgb.shape[:2] == (32, 16)  # 16 wide, 32 high
    assert rgb[:16, :, 0].mean() > 240 and rgb[16:, :, 2].mean() > 240


def test_16_bit_grey_is_scaled_not_clipped():
    with Image.open(BAD / "gray16.png") as raw:
        assert raw.mode == "I;16"
        assert np.asarray(raw.convert("RGB")).mean() > 240  # a plain convert clips to white
    rgb = pixels(BAD / "gray16.png")  # a ramp 0 .. 32767 of 65535
    assert rgb.mean() == pytest.approx(32767 / 2 / 257, abs=0.6)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == round(32767 / 257)


def test_32_bit_integer_and_float_grey(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 16), (8, 1))
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "i.tiff")  # mode "I"
    Image.fromarray((ramp / 65535).astype(np.float32)).save(tmp_path / "f.tiff")  # mode "F"
    for name in ("i.tiff", "f.tiff"):
        rgb = pixels(tmp_path / name)
        assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
        assert rgb.mean() == pytest.approx(127.5, abs=1)


def test_the_pixel_limit_refuses_from_the_header_before_decoding(monkeypatch):
    monkeypatch.setattr(decode, "MAX_PIXELS", 100)
    with pytest.raises(DataError, match=r"32 x 16 = 512 pixels, over the limit of 100"):
        load_image(BAD / "photo.bmp")
    # truncated.jpg's pixels are damaged: refused by size means nothing was decoded
    with pytest.raises(DataError, match="over the limit") as caught:
        load_image(BAD / "truncated.jpg")
    assert "truncated" in str(caught.value)  # the file's name, not the decoder's complaint
    with pytest.raises(DataError, match="over the limit"):
        image_size(BAD / "photo.bmp")
    monkeypatch.setattr(decode, "MAX_PIXELS", 512)  # exactly at the limit is allowed
    assert load_image(BAD / "photo.bmp").size == (32, 16)


def test_a_large_allowed_photo_and_its_fast_downscaled_decode():
    big = Image.radial_gradient("L").resize((4000, 3000)).convert("RGB")
    data = io.BytesIO()
    big.save(data, "JPEG", quality=80)
    cell = data.getvalue()
    assert load_image(cell).size == (4000, 3000)  # 12 MP, under the 64 MP limit
    small, size = load_sized(cell, max_side=256)
    assert size == (4000, 3000) and max(small.size) == 256 and small.size == (256, 192)
    full = np.asarray(big.convert("L"), dtype=float).mean()
    assert np.asarray(small.convert("L"), dtype=float).mean() == pytest.approx(full, abs=2)


def test_cells_that_are_not_images(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_image(None, label="row 2 of column 'photo'")
    import pandas as pd

    with pytest.raises(DataError, match="row 2: no image"):
        load_image(pd.NA, label="row 2")
    with pytest.raises(DataError, match="the uploaded image: empty"):
        load_image(b"")
    with pytest.raises(DataError, match="expected a file path or the file's bytes, got a int"):
        load_image(3)
    with pytest.raises(DataError, match="is a folder"):
        load_image(DEFECTS)
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.ppm")  # Pillow reads PPM; shipml does not
    with pytest.raises(DataError, match="photo.ppm: not an image .expected JPEG, PNG"):
        load_image(tmp_path / "photo.ppm")
    (tmp_path / "label.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="label.jpg"):
        load_image(tmp_path / "label.jpg")


@pytest.mark.parametrize("name", ["ok/ok_000.png", "scratch/scratch_001.jpg", "spot/spot_002.jpg"])
def test_damaged_bytes_give_an_image_or_a_data_error_never_another_exception(name):
    """Seeded corruption (flipped bytes, cut tails, shuffled chunks) of real files."""
    data = (DEFECTS / name).read_bytes()
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(60):
        broken = bytearray(data)
        for at in rng.integers(0, len(broken), int(rng.integers(1, 8))):
            broken[at] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            broken = broken[: int(rng.integers(8, len(broken)))]
        try:
            outcomes.add(load_image(bytes(broken), label=name).mode)
        except DataError as exc:
            assert name in str(exc)
            outcomes.add("DataError")
    assert outcomes <= {"RGB", "DataError"} and "DataError" in outcomes


def test_suffixes_are_lower_case_extensions():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"} <= IMAGE_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)


def test_the_defect_set_decodes_at_64_pixels():
    names = sorted(p.name for p in (DEFECTS / "spot").iterdir())
    assert len(names) == 48 and sum(n.endswith(".png") for n in names) == 16
    for name in names[:6]:
        assert load_image(DEFECTS / "spot" / name).size == (64, 64)
