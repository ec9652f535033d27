"""Prediction input for a model with image columns: a folder, a zip or one image file becomes a
table of the model's image column; a table file's relative image paths resolve against the
table's folder (as at training)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shipml.errors import DataError

__all__ = ["image_input_frame"]


def image_input_frame(schema, data) -> pd.DataFrame | None:
    """The input table for `data`, or None when `data` needs no image handling (not a path,
    or a model without image columns): then the usual reading applies."""
    columns = [c.name for c in schema.features if c.kind == "image"]
    if not columns or not isinstance(data, (str, Path)):
        return None
    from shipml.data.io import read_table
    from shipml.images.decode import IMAGE_SUFFIXES
    from shipml.images.sources import read_image_inputs, resolve_image_paths

    path = Path(data).expanduser()
    if path.is_dir() or path.suffix.lower() in (".zip", *IMAGE_SUFFIXES):
        if len(schema.features) != 1:
            needs = ", ".join(f"'{c.name}'" for c in schema.features)
            raise DataError(f"{path}: this model reads the columns {needs}; give a table with "
                            "them (image columns as file paths)")  # fmt: skip
        frame = read_image_inputs(path).frame
        renamed = {"image": columns[0]}
        if "label" in frame.columns and schema.target != "label":
            renamed["label"] = schema.target
        return frame.rename(columns=renamed)
    frame = read_table(path).frame
    for column in columns:
        if column in frame.columns:
            frame = resolve_image_paths(frame, column, path.parent)
    return frame
