"""`shipml train` on images from the command line: a table of paths with --image-column and
other columns (a mixed model), --mode, and the plain errors of a wrong column or mode."""

from __future__ import annotations

import pytest

from conftest import DATA, run_cli

pytest.importorskip("efficientnet_lite_pytorch")

LABELS = DATA / "images" / "labels.csv"


def test_a_table_of_paths_with_another_column(tmp_path, capsys):
    import pandas as pd

    import shipml

    table = pd.read_csv(LABELS)
    code, out, err = run_cli(["train", LABELS, "--target", "defect", "--image-column", "path",
                              "--name", "lines", "--time-budget", "40", "--trials", "2",
                              "--no-report", "--mode", "embed"], capsys)  # fmt: skip
    assert code == 0, err
    model = shipml.load("lines")
    kinds = {c.name: c.kind for c in model.schema.features}
    assert kinds == {"path": "image", "line_speed": "numeric"}
    assert "efficientnet" in out.lower() or "images" in out.lower()
    code, out, err = run_cli(["predict", "lines", LABELS, "-o", tmp_path / "scored.csv"], capsys)
    assert code == 0, err
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == len(table) and (scored["prediction"] == table["defect"]).mean() > 0.6


def test_wrong_image_column_and_text_mode_are_plain_errors(capsys):
    code, out, err = run_cli(["train", LABELS, "--target", "defect", "--image-column",
                              "line_speed", "--time-budget", "20"], capsys)  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert "line_speed" in err
    code, out, err = run_cli(["train", LABELS, "--target", "defect", "--mode", "fewshot",
                              "--time-budget", "20"], capsys)  # fmt: skip
    assert code == 2 and "for images use one of: auto, embed" in err


def test_a_folder_needs_no_target_and_its_notes_are_shown(tmp_path, capsys):
    import shutil

    root = tmp_path / "parts"
    for label in ("ok", "scratch"):
        shutil.copytree(DATA / "images" / "defects" / label, root / label)
    (root / "spot").mkdir()
    shutil.copy(DATA / "images" / "defects" / "spot" / "spot_000.png", root / "spot")
    shutil.copy(DATA / "images" / "bad" / "not_an_image.jpg", root / "ok")
    code, out, err = run_cli(["train", root, "--time-budget", "30", "--trials", "2",
                              "--no-report"], capsys)  # fmt: skip
    assert code == 0, err
    said = out + err
    assert "single image" in said and "spot" in said
    assert "not_an_image.jpg" in said
    import shipml

    assert sorted(shipml.load("parts").classes) == ["ok", "scratch", "spot"]
