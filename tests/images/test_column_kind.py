"""The image column kind: detected from paths, cells are paths or bytes; tables of scores leave
the bytes out."""

from __future__ import annotations

import pandas as pd
import pytest

from shipml.data.schema import infer_schema
from shipml.errors import SchemaError
from shipml.predictions import predictions_table


def test_a_column_of_image_paths_is_an_image_column_and_only_images_pass():
    frame = pd.DataFrame(
        {"photo": [f"img/{i}.JPG" for i in range(30)], "defect": ["yes", "no"] * 15}
    )
    schema = infer_schema(frame, "defect")
    assert schema.column("photo").kind == "image"
    typed = schema.coerce(pd.DataFrame({"photo": ["a.png", b"\x89PNG", None]}))
    assert typed["photo"].tolist() == ["a.png", b"\x89PNG", None]
    with pytest.raises(SchemaError, match=r"column 'photo' expected an image .* in row 2"):
        schema.coerce(pd.DataFrame({"photo": ["a.png", 3.5]}))


def test_a_table_of_scores_leaves_the_image_bytes_out():
    frame = pd.DataFrame({"image": [b"\x89PNG", b"\xff\xd8"], "name": ["a.png", "b.jpg"]})
    scored = predictions_table(frame, ["ok", "scratch"])
    assert list(scored.columns) == ["name", "prediction"]
