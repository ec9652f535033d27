"""Folders, zips, single files and tables of paths to image tables (shipml.images.sources)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from conftest import DATA
from shipml.errors import DataError, InflateLimit, TargetError
from shipml.images import listing
from shipml.images.sources import (
    looks_like_image_paths,
    read_image_folder,
    read_image_inputs,
    resolve_image_paths,
)

IMAGES = DATA / "images"
DEFECTS = IMAGES / "defects"


@pytest.fixture
def photos(tmp_path) -> Path:
    """A small copy of the defect set: 3 images per class."""
    root = tmp_path / "photos"
    for label in ("ok", "scratch", "spot"):
        (root / label).mkdir(parents=True)
        for source in sorted((DEFECTS / label).iterdir())[:3]:
            shutil.copy(source, root / label / source.name)
    return root


def zipped(folder: Path, dest: Path, prefix: str = "", extra: dict | None = None) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


def test_the_defect_folder_is_three_classes_of_48():
    table = read_image_folder(DEFECTS)
    frame = table.frame
    assert list(frame.columns) == ["image", "name", "label"] and len(table) == 144
    assert table.labels == ["ok", "scratch", "spot"] and table.notes == ()
    assert frame["label"].value_counts().to_dict() == {"ok": 48, "scratch": 48, "spot": 48}
    assert list(frame["name"]) == sorted(frame["name"])
    assert frame["name"][0] == "ok/ok_000.png"
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in frame["image"])
    assert frame["image"].dtype == object  # as for bytes cells (a zip, an upload)
    assert table.source == DEFECTS
    pd.testing.assert_frame_equal(read_image_folder(str(DEFECTS)).frame, frame)


def test_noise_is_skipped_silently_other_files_with_a_note(photos):
    (photos / ".DS_Store").write_bytes(b"\0\0")
    (photos / "ok" / "._ok_000.png").write_bytes(b"appledouble")
    (photos / "__MACOSX" / "ok").mkdir(parents=True)
    (photos / "__MACOSX" / "ok" / "ok_000.png").write_bytes(b"resource fork")
    (photos / ".git").mkdir()
    (photos / ".git" / "x.png").write_bytes(b"")
    (photos / "ok" / "notes.txt").write_text("shot on line 2")
    (photos / "README.md").write_text("defect photos")
    table = read_image_folder(photos)
    assert len(table) == 9 and table.labels == ["ok", "scratch", "spot"]
    assert table.notes == ("left out 2 files that are not images: README.md, ok/notes.txt",)


def test_deeper_files_belong_to_their_top_folder_and_extensions_any_case(photos):
    deep = photos / "scratch" / "2024-05" / "line2"
    deep.mkdir(parents=True)
    shutil.copy(DEFECTS / "scratch" / "scratch_010.jpg", deep / "SCRATCH_010.JPG")
    frame = read_image_folder(photos).frame
    row = frame[frame["name"] == "scratch/2024-05/line2/SCRATCH_010.JPG"]
    assert row["label"].tolist() == ["scratch"]
    assert frame["label"].value_counts()["scratch"] == 4


def test_images_beside_the_class_folders_are_left_out_with_a_note(photos):
    shutil.copy(DEFECTS / "ok" / "ok_040.jpg", photos / "cover.jpg")
    table = read_image_folder(photos)
    assert len(table) == 9 and "cover.jpg" not in set(table.frame["name"])
    assert table.notes == ("left out 1 image outside the class folders: cover.jpg",)


def test_a_wrapping_folder_is_looked_through(tmp_path, photos):
    outer = tmp_path / "export"
    shutil.move(photos, outer / "2024" / "photos")
    table = read_image_folder(outer)
    assert table.labels == ["ok", "scratch", "spot"] and len(table) == 9
    assert table.notes == ("read the class folders inside '2024/photos'",)
    assert table.frame["name"][0] == "2024/photos/ok/ok_000.png"


def test_a_class_with_one_image_is_a_note(photos):
    for extra in sorted((photos / "spot").iterdir())[1:]:
        extra.unlink()
    table = read_image_folder(photos)
    assert table.frame["label"].value_counts()["spot"] == 1
    assert table.notes == ("class 'spot' has a single image; a class is learned from several",)


def test_folder_errors_say_what_was_looked_for(tmp_path, photos):
    with pytest.raises(DataError, match="no such file or folder"):
        read_image_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no images found \(looked for .*\.jpg.*\.png"):
        read_image_folder(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    for source in sorted((DEFECTS / "ok").iterdir())[:2]:
        shutil.copy(source, flat / source.name)
    with pytest.raises(DataError, match="no class folders, the 2 images lie directly in it"):
        read_image_folder(flat)
    (photos / "dent").mkdir()
    (photos / "dent" / "todo.txt").write_text("photos to come")
    with pytest.raises(DataError, match="class folder 'dent' holds no image"):
        read_image_folder(photos)
    shutil.rmtree(photos / "dent")
    for label in ("scratch", "spot"):
        shutil.rmtree(photos / label)
    with pytest.raises(TargetError, match=r"only one class folder \('ok'\)"):
        read_image_folder(photos)
    with pytest.raises(DataError, match="expected a folder of images, a .zip"):
        read_image_folder(IMAGES / "labels.csv")


def test_a_zip_gives_the_same_table_with_bytes(tmp_path, photos):
    noise = {"__MACOSX/photos/ok/._ok_000.png": b"fork", "photos/.DS_Store": b"\0"}
    archive = zipped(photos, tmp_path / "photos.zip", prefix="photos/", extra=noise)
    table = read_image_folder(archive)
    folder = read_image_folder(photos)
    assert table.notes == ("read the class folders inside 'photos'",)
    assert table.frame["label"].tolist() == folder.frame["label"].tolist()
    assert table.frame["name"].tolist() == ["photos/" + n for n in folder.frame["name"]]
    for cell, path in zip(table.frame["image"], folder.frame["image"]):
        assert isinstance(cell, bytes) and cell == Path(path).read_bytes()
    assert table.source == archive


def test_zip_errors(tmp_path, photos, monkeypatch):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(DataError, match="broken.zip: not a readable zip"):
        read_image_folder(tmp_path / "broken.zip")
    archive = zipped(photos, tmp_path / "photos.zip")
    monkeypatch.setattr(listing, "MAX_ZIP_BYTES", 1000)
    with pytest.raises(InflateLimit, match="photos.zip: its images inflate to .* unzip it"):
        read_image_folder(archive)


def test_inputs_to_score_keep_labels_when_the_layout_has_them(tmp_path, photos):
    table = read_image_inputs(photos)
    assert list(table.frame.columns) == ["image", "name", "label"] and len(table) == 9
    shutil.copy(DEFECTS / "ok" / "ok_040.jpg", photos / "cover.jpg")  # loose: no labels
    table = read_image_inputs(photos)
    assert list(table.frame.columns) == ["image", "name"] and len(table) == 10
    assert table.frame["name"].tolist()[0] == "cover.jpg"
    one = read_image_inputs(photos / "ok" / "ok_000.png")
    assert one.frame.to_dict("records") == [
        {"image": str(photos / "ok" / "ok_000.png"), "name": "ok_000.png"}
    ]
    flat = read_image_inputs(photos / "ok")
    assert flat.frame["name"].tolist() == ["ok_000.png", "ok_001.jpg", "ok_002.jpg"]
    assert "label" not in flat.frame
    archive = read_image_inputs(zipped(photos / "scratch", tmp_path / "s.zip"))
    assert archive.frame["name"].tolist() == sorted(p.name for p in (photos / "scratch").iterdir())
    assert isinstance(archive.frame["image"][0], bytes)


def test_input_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        read_image_inputs(tmp_path / "new_photos")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="docs: no images found"):
        read_image_inputs(tmp_path / "docs")
    with pytest.raises(DataError, match="a table of image paths is read with its image column"):
        read_image_inputs(tmp_path / "docs" / "a.txt")


def test_a_table_of_paths_resolves_against_its_folder():
    table = pd.read_csv(IMAGES / "labels.csv")
    assert list(table.columns) == ["path", "defect", "line_speed"] and len(table) == 144
    resolved = resolve_image_paths(table, "path", IMAGES)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in resolved["path"])
    assert resolved["path"][0] == str(IMAGES / "defects" / "ok" / "ok_000.png")
    assert table["path"][0] == "defects/ok/ok_000.png"  # the input is not changed
    pd.testing.assert_frame_equal(resolved.drop(columns="path"), table.drop(columns="path"))


def test_absolute_empty_windows_and_bytes_cells(tmp_path):
    data = (DEFECTS / "ok" / "ok_000.png").read_bytes()
    frame = pd.DataFrame(
        {
            "photo": [
                str(DEFECTS / "spot" / "spot_000.png"),
                None,
                "  ",
                float("nan"),
                "defects\\ok\\ok_001.jpg",
                data,
            ]
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    out = resolve_image_paths(frame, "photo", IMAGES)
    assert out["photo"].tolist() == [
        str(DEFECTS / "spot" / "spot_000.png"),
        None,
        None,
        None,
        str(DEFECTS / "ok" / "ok_001.jpg"),
        data,
    ]
    assert list(out.index) == [10, 11, 12, 13, 14, 15]


def test_missing_files_name_the_row_and_the_path(tmp_path):
    frame = pd.DataFrame({"photo": ["defects/ok/ok_000.png", "gone.jpg", "also_gone.png"]})
    with pytest.raises(DataError) as caught:
        resolve_image_paths(frame, "photo", IMAGES)
    message = str(caught.value)
    assert "column 'photo': 2 of 3 image files not found, first in row 2: 'gone.jpg'" in message
    assert str(IMAGES / "gone.jpg") in message
    with pytest.raises(DataError, match=r"row 1: 'defects' "):
        resolve_image_paths(pd.DataFrame({"p": ["defects"]}), "p", IMAGES)  # a folder
    with pytest.raises(DataError, match="row 2: 'https://example.com/a.jpg' is a URL"):
        resolve_image_paths(pd.DataFrame({"p": [None, "https://example.com/a.jpg"]}), "p", IMAGES)
    with pytest.raises(DataError, match="row 1: expected an image path, got 3"):
        resolve_image_paths(pd.DataFrame({"p": [3]}), "p", IMAGES)
    with pytest.raises(DataError, match="no column 'image'"):
        resolve_image_paths(frame, "image", IMAGES)


def test_looks_like_image_paths():
    table = pd.read_csv(IMAGES / "labels.csv")
    assert looks_like_image_paths(table["path"])
    assert not looks_like_image_paths(table["defect"])
    assert not looks_like_image_paths(table["line_speed"])
    assert looks_like_image_paths(pd.Series(["A.JPG", None, "", "b.Png", "c.webp", "d.tif"]))
    assert looks_like_image_paths(pd.Series([b"\x89PNG...", None]))
    mostly_text = ["a.jpg", "b.jpg", "c.jpg", "no", "none yet"]
    assert not looks_like_image_paths(pd.Series(mostly_text))
    assert looks_like_image_paths(pd.Series(mostly_text), share=0.6)
    assert not looks_like_image_paths(pd.Series([None, float("nan"), " "]))
    assert not looks_like_image_paths(pd.Series(["report.pdf", "jpg", "photo"]))


def test_reading_is_deterministic_and_sorted(tmp_path):
    root = tmp_path / "p"
    for label in ("b", "a"):
        (root / label).mkdir(parents=True)
        for name in ("z.png", "m.png", "a.png"):
            Image.new("RGB", (2, 2)).save(root / label / name)
    names = read_image_folder(root).frame["name"].tolist()
    assert names == ["a/a.png", "a/m.png", "a/z.png", "b/a.png", "b/m.png", "b/z.png"]
