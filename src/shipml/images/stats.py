"""Cheap numbers about images, for drift monitoring and reports: size, brightness, contrast,
saturation. Each image is measured on a copy downscaled to `SIDE` pixels (JPEGs decoded at
reduced scale), so a 12 MP photo costs a few milliseconds, not a full decode."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shipml.images.decode import load_sized

__all__ = ["SIDE", "STATS", "image_stats"]

SIDE = 64  # longer side measured: enough for means and spreads, ~1,000x fewer pixels than 12 MP
STATS = ("width", "height", "brightness", "contrast", "saturation")
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as Pillow's "L"


def image_stats(cells, *, labels=None, errors: str = "raise", side: int = SIDE) -> pd.DataFrame:
    """One row per cell (same index when `cells` is a Series), columns `STATS`:

    - width, height: the image as displayed (EXIF orientation applied), in pixels;
    - brightness: mean luma, 0 (black) to 255 (white), transparency on white as the model sees it;
    - contrast: standard deviation of luma (0 for a flat image);
    - saturation: mean HSV saturation, 0 (grey) to 255.

    A missing cell (None) is a row of NaN. An unreadable image raises its DataError, or with
    ``errors="nan"`` is a row of NaN (a monitor reading a log keeps going). `labels` name the
    cells in errors (e.g. the `name` column of an ImageTable)."""
    from shipml.errors import DataError

    if errors not in ("raise", "nan"):
        raise ValueError(f"errors must be 'raise' or 'nan', got {errors!r}")
    index = cells.index if isinstance(cells, pd.Series) else None
    values = list(cells)
    names = list(labels) if labels is not None else [None] * len(values)
    rows = []
    for cell, name in zip(values, names):
        if cell is None or (isinstance(cell, float) and cell != cell):
            rows.append((np.nan,) * len(STATS))
            continue
        try:
            rows.append(_measure(cell, name, side))
        except DataError:
            if errors == "raise":
                raise
            rows.append((np.nan,) * len(STATS))
    frame = pd.DataFrame(rows, columns=list(STATS), index=index, dtype=float)
    return frame


def _measure(cell, name, side) -> tuple[float, ...]:
    image, (width, height) = load_sized(cell, label=name, max_side=side)
    rgb = np.asarray(image, dtype=np.float64)
    luma = rgb @ _LUMA
    top = rgb.max(axis=2)
    spread = top - rgb.min(axis=2)
    saturation = np.divide(spread, top, out=np.zeros_like(top), where=top > 0) * 255
    return width, height, luma.mean(), luma.std(), saturation.mean()
