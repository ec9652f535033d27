"""`shipml explain` for an image model: heat-map PNGs, the answer and its region on screen."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image
from tests.conftest import DATA, DEFECTS, GERMAN, run_cli

SPOT = DEFECTS / "spot" / "spot_007.jpg"
BAD = DATA / "images" / "bad"
REGIONS = {"top-left", "top", "top-right", "left", "centre", "right", "bottom-left", "bottom",
           "bottom-right"}  # fmt: skip


@pytest.fixture
def reg(defects_model, image_registry):
    return ["--registry-uri", str(image_registry)]


def test_one_photo_to_a_heat_map_png(reg, tmp_path, capsys):
    out_png = tmp_path / "out" / "why.png"
    code, out, err = run_cli(["explain", "defects", "--data", SPOT, "-o", out_png, *reg], capsys)
    assert code == 0, err
    assert "wrote the heat map of spot_007.jpg" in out
    image = Image.open(io.BytesIO(out_png.read_bytes()))
    assert image.format == "PNG" and image.size == Image.open(SPOT).size


def test_on_screen_the_answer_and_the_region_that_mattered(reg, capsys):
    code, out, _ = run_cli(["explain", "defects", "--data", SPOT, *reg], capsys)
    assert code == 0 and "spot_007.jpg" in out and "spot" in out
    assert any(region in out for region in REGIONS)
    code, out, _ = run_cli(["explain", "defects", "--data", SPOT, "--json", "--grid", "4",
                            *reg], capsys)  # fmt: skip
    (item,) = json.loads(out)
    assert item["prediction"] == "spot" and item["region"] in REGIONS
    assert len(item["heat"]) == 4 and len(item["heat"][0]) == 4


def test_a_folder_to_one_png_per_image(reg, tmp_path, capsys):
    photos = tmp_path / "photos"
    for sub, name in (("a", "spot_000.png"), ("b", "spot_000.png"), ("b", "spot_001.jpg")):
        (photos / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(DEFECTS / "spot" / name, photos / sub / name)
    out_dir = tmp_path / "why"
    code, out, err = run_cli(["explain", "defects", "--data", photos, "-o", out_dir, "--grid",
                              "3", *reg], capsys)  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "spot_000-2.png", "spot_000.png", "spot_001.png"]  # fmt: skip
    assert "wrote 3 heat maps" in out
    assert all(Image.open(p).size == (64, 64) for p in out_dir.iterdir())
    csv = tmp_path / "why.csv"
    code, _, _ = run_cli(["explain", "defects", "--data", photos, "-o", csv, "--grid", "2",
                          *reg], capsys)  # fmt: skip
    assert code == 0 and csv.read_text().splitlines()[0] == "image,prediction,probability,region"
    # several photos and one .png: a folder is needed; never over the photos themselves
    code, _, err = run_cli(["explain", "defects", "--data", photos, "-o", tmp_path / "x.png",
                            *reg], capsys)  # fmt: skip
    assert code == 2 and "holds 3 images: give a folder" in err and "Traceback" not in err
    code, _, err = run_cli(["explain", "defects", "--data", photos / "a", "-o", photos / "a",
                            "--grid", "2", *reg], capsys)  # fmt: skip
    assert code == 2 and "would replace the image itself" in err


@pytest.mark.parametrize(
    ("data", "message"),
    [(BAD / "not_an_image.jpg", "not_an_image.jpg: not an image"),
     (BAD / "truncated.jpg", "truncated.jpg: damaged or truncated"),
     (BAD / "empty.png", "empty"),
     (DEFECTS / "nothing_here.png", "no such file")],
)  # fmt: skip
def test_unreadable_photos_exit_2_with_a_clear_line(reg, tmp_path, capsys, data, message):
    code, _, err = run_cli(["explain", "defects", "--data", data, "-o", tmp_path / "w.png", *reg],
                           capsys)  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "w.png").exists()


def test_a_png_for_a_table_model_is_a_usage_error(image_registry, tmp_path, capsys):
    import shipml

    shipml.train(GERMAN, target="credit_risk", name="table", time_budget=10, n_trials=1,
                 families=["linear"], registry_uri=str(image_registry), report=False,
                 progress=False)  # fmt: skip
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(GERMAN.read_text().splitlines()[:3]) + "\n")
    code, _, err = run_cli(["explain", "table", "--data", rows, "-o", tmp_path / "why.png",
                            "--registry-uri", image_registry], capsys)  # fmt: skip
    assert code == 2 and "reads no image column" in err and "-o" in err and "why.csv" in err
    assert "Traceback" not in err


def test_a_bad_output_suffix_is_a_usage_error(reg, tmp_path, capsys):
    code, _, err = run_cli(["explain", "defects", "--data", SPOT, "-o", tmp_path / "w.jpg", *reg],
                           capsys)  # fmt: skip
    assert code == 2 and "give a .png file" in err
