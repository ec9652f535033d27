"""Image sources: a folder per label, a zip, a table of relative paths; the image column kind."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from shipml.data.schema import infer_schema
from shipml.errors import DataError, SchemaError
from shipml.images.decode import load_image
from shipml.images.sources import (
    is_image_folder,
    read_image_folder,
    read_image_inputs,
    resolve_image_paths,
)
from shipml.predictions import predictions_table


def _photos(root, per_class: int = 3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("ok", "scratch"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    (root / "ok" / ".DS_Store").write_bytes(b"\0")
    (root / "ok" / "notes.txt").write_text("not an image")
    return root


def test_a_folder_per_label_is_a_table_of_paths_and_labels(tmp_path):
    root = _photos(tmp_path / "photos")
    frame = read_image_folder(root)
    assert frame["label"].tolist() == ["ok"] * 3 + ["scratch"] * 3
    assert all(str(root) in p for p in frame["image"])
    assert is_image_folder(root) and not is_image_folder(root / "ok" / "0.png")
    assert load_image(frame["image"][0]).size == (16, 12)


def test_a_zip_gives_the_images_bytes_and_prediction_tables_leave_them_out(tmp_path):
    root = _photos(tmp_path / "photos")
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(root.rglob("*.png")):
            z.write(p, p.relative_to(root).as_posix())
    frame = read_image_inputs(archive)
    assert frame["name"].tolist()[0] == "ok/0.png" and isinstance(frame["image"][0], bytes)
    assert frame["label"].tolist().count("scratch") == 3
    scored = predictions_table(frame, ["ok"] * len(frame))
    assert "image" not in scored.columns and scored["name"][0] == "ok/0.png"


def test_relative_paths_resolve_against_the_table_and_a_missing_file_names_its_row(tmp_path):
    _photos(tmp_path / "photos")
    frame = pd.DataFrame({"path": ["photos/ok/0.png", None, "photos/ok/9.png"]})
    with pytest.raises(DataError, match=r"row 3: no image file at 'photos/ok/9.png'"):
        resolve_image_paths(frame, "path", tmp_path)
    resolved = resolve_image_paths(frame.head(2), "path", tmp_path)
    assert resolved["path"][0] == str((tmp_path / "photos/ok/0.png").resolve())
    assert resolved["path"][1] is None


def test_a_column_of_image_paths_is_an_image_column_and_only_images_pass(tmp_path):
    frame = pd.DataFrame(
        {"photo": [f"img/{i}.JPG" for i in range(30)], "defect": ["yes", "no"] * 15}
    )
    schema = infer_schema(frame, "defect")
    assert schema.column("photo").kind == "image"
    typed = schema.coerce(pd.DataFrame({"photo": ["a.png", b"\x89PNG", None]}))
    assert typed["photo"].tolist() == ["a.png", b"\x89PNG", None]
    with pytest.raises(SchemaError, match=r"column 'photo' expected an image .* in row 2"):
        schema.coerce(pd.DataFrame({"photo": ["a.png", 3.5]}))


def test_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "ok").mkdir(parents=True)
    with pytest.raises(DataError, match="no images in sub-folders"):
        read_image_folder(tmp_path / "empty")
