"""Heat maps of a model's image predictions: for each image, the class the model answers, its
probability and the occlusion map (shipml.images.heatmap) of that class.

Each image is decoded once at most `WORK_SIDE` pixels on its longer side (the encoder itself
looks at 224 x 224, so a larger copy only costs time); the heat map and its overlay are at that
size. The other columns of a row (a model may read a photo and a table) stay as they are while
the photo is occluded, so the map shows what the photo adds to this row's answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.errors import UsageError
from shipml.images.heatmap import (
    DEFAULT_GRID,
    hottest_region,
    occlusion_drops,
    occlusion_scores,
    overlay_png,
)

__all__ = [
    "WORK_SIDE",
    "ImageExplanation",
    "explain_images",
    "explanations_frame",
    "image_feature_columns",
    "image_names",
]

log = logging.getLogger(__name__)
WORK_SIDE = 512


@dataclass
class ImageExplanation:
    """One image's answer and why: `heat` is the (grid, grid) drop of `probability` when each
    region is hidden (row 0 at the top); `region` names where the largest drop is."""

    name: str
    column: str
    prediction: object
    probability: float
    heat: np.ndarray
    region: str
    image: object = field(repr=False)  # the decoded RGB PIL image the map was made on

    def overlay_png(self) -> bytes:
        """The image with the heat map blended over it (PNG bytes, the image's size)."""
        return overlay_png(self.image, self.heat)

    def to_dict(self) -> dict:
        """JSON-ready: the heat rounded to 4 decimals, as rows of numbers."""
        return {
            "image": self.name,
            "column": self.column,
            "prediction": _plain(self.prediction),
            "probability": round(float(self.probability), 6),
            "region": self.region,
            "heat": np.round(self.heat, 4).tolist(),
        }


def image_feature_columns(schema) -> list[str]:
    return [c.name for c in schema.features if c.kind == "image"]


def explain_images(model, data, *, column: str | None = None, grid: int = DEFAULT_GRID,
                   on_image=None) -> list[ImageExplanation]:  # fmt: skip
    """An ImageExplanation per row of `data` (a folder, a zip, an image file or a table: as
    `Model.input_frame`) for the image `column` (default: the model's first image column).
    Costs grid² + 1 encodes per image; `on_image(done, total)` is called after each."""
    from shipml.images.decode import load_image

    column = image_column(model, column)
    frame = model.input_frame(data).reset_index(drop=True)
    names = image_names(model, frame, column)
    out = []
    for i in range(len(frame)):
        image = load_image(frame[column].iloc[i], label=names[i], max_side=WORK_SIDE)
        proba = occlusion_scores(image, _scorer(model, frame.iloc[[i]], column), grid=grid)
        label = model.labels_from_proba(proba[:1])[0]
        k = _class_index(model, label, proba[0])
        heat = occlusion_drops(proba, target=k)
        out.append(ImageExplanation(names[i], column, label, float(proba[0, k]), heat,
                                    hottest_region(heat), image))  # fmt: skip
        log.info("explained %s (%d of %d)", names[i], i + 1, len(frame))
        if on_image is not None:
            on_image(i + 1, len(frame))
    return out


def image_column(model, column: str | None) -> str:
    if model.task == "regression":
        raise UsageError("heat maps explain class probabilities; this model predicts numbers")
    columns = image_feature_columns(model.schema)
    if not columns:
        who = model.name or "this model"
        raise UsageError(f"{who} reads no image column: heat maps are for image models "
                         "(Model.explain gives a table model's reasons)")  # fmt: skip
    if column is None:
        return columns[0]
    if column not in columns:
        raise UsageError(f"column {column!r} is not an image column of the model; its image "
                         f"columns: {', '.join(map(repr, columns))}")  # fmt: skip
    return column


def image_names(model, frame: pd.DataFrame, column: str) -> list[str]:
    """How outputs name each image: its name in the folder or zip, else its file name, else the
    row (bytes have no name)."""
    from pathlib import Path

    features = {c.name for c in model.schema.features}
    listed = "name" in frame.columns and "name" not in features  # read_image_inputs' names
    names = []
    for i in range(len(frame)):
        given = frame["name"].iloc[i] if listed else None
        cell = frame[column].iloc[i]
        if isinstance(given, str) and given:
            names.append(given)
        elif isinstance(cell, (str, Path)):
            names.append(Path(cell).name)
        else:
            names.append(f"row {i + 1}")
    return names


def _scorer(model, row: pd.DataFrame, column: str):
    """score(cells): the model's probabilities for `row` with its image replaced by each cell."""

    def score(cells: list) -> np.ndarray:
        frame = row.loc[row.index.repeat(len(cells))].reset_index(drop=True)
        frame[column] = pd.Series(cells, dtype=object)
        return model.predict_proba(frame).to_numpy()

    return score


def _class_index(model, label, proba: np.ndarray) -> int:
    """The column of the answered class (the most likely one when the answer is out of scope)."""
    classes = list(model.classes)
    return classes.index(label) if label in classes else int(np.argmax(proba))


def explanations_frame(items: list[ImageExplanation]) -> pd.DataFrame:
    """One row per image: image, prediction, probability, region, heat (the grid array)."""
    columns = ["image", "prediction", "probability", "region", "heat"]
    rows = [[e.name, e.prediction, e.probability, e.region, e.heat] for e in items]
    return pd.DataFrame(rows, columns=columns)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
