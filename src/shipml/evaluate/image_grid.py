"""The report's grid of scored images: small thumbnails with what the model answered.

Up to `MAX_TILES` images, the misclassified ones first (the most confident mistakes first, as
the text examples), then correctly classified ones taken in turn from each real class (so every
class shows). Each thumbnail is at most `SIDE` pixels, a JPEG embedded as a base64 data URI:
the report stays one self-contained file and never shows where the images are stored.
"""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from shipml.errors import DataError

__all__ = ["MAX_TILES", "SIDE", "image_grid", "thumbnail_uri"]

MAX_TILES = 48
SIDE = 96
_QUALITY = 85


def thumbnail_uri(cell, *, side: int = SIDE, label: str | None = None) -> tuple[str, int, int]:
    """(data URI of a JPEG thumbnail at most `side` pixels, its width, its height) of an image
    cell (a path or the file's bytes); DataError as `load_image` for an unreadable one."""
    from shipml.images.decode import load_image

    image = load_image(cell, label=label, max_side=side)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_QUALITY)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/jpeg;base64,{data}", image.width, image.height


def image_grid(
    cells: Sequence[Any],
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
    *,
    limit: int = MAX_TILES,
    side: int = SIDE,
) -> dict[str, Any]:
    """The grid section's data: `tiles` (uri, width, height, real, predicted, probability of
    the predicted class or None, wrong), the counts, and whether mistakes are by confidence.
    `proba` has a column per class of `classes`; an unreadable image gets a tile without uri."""
    cells = list(cells)
    yt = [str(v) for v in np.asarray(y_true, dtype=object).ravel()]
    yp = [str(v) for v in np.asarray(y_pred, dtype=object).ravel()]
    if not len(cells) == len(yt) == len(yp):
        raise DataError(f"{len(cells)} images but {len(yt)} real and {len(yp)} predicted labels: "
                        "give the images of the scored rows, in the same order")  # fmt: skip
    confidence = _confidence(proba, classes, yp)
    wrong = [i for i in range(len(yt)) if yt[i] != yp[i]]
    if confidence is not None:
        wrong.sort(key=lambda i: -(confidence[i] or 0.0))
    right = _round_robin([i for i in range(len(yt)) if yt[i] == yp[i]], yt)
    chosen = (wrong + right)[:limit]
    tiles = [_tile(cells[i], i, yt[i], yp[i], confidence, side) for i in chosen]
    return {
        "tiles": tiles,
        "n_scored": len(yt),
        "n_wrong": len(wrong),
        "n_wrong_shown": sum(t["wrong"] for t in tiles),
        "by_confidence": confidence is not None,
        "side": side,
    }


def _tile(cell, i: int, real: str, predicted: str, confidence, side: int) -> dict[str, Any]:
    tile = {"real": real, "predicted": predicted, "wrong": real != predicted, "uri": None,
            "width": side, "height": side,
            "probability": confidence[i] if confidence is not None else None}  # fmt: skip
    with contextlib.suppress(DataError):  # the tile stays, without a picture: it was scored
        tile["uri"], tile["width"], tile["height"] = thumbnail_uri(cell, side=side)
    return tile


def _confidence(proba, classes, yp: list[str]) -> list[float | None] | None:
    """The predicted class's probability per row (None for an answer outside `classes`, e.g.
    out of scope), or None without usable probabilities."""
    if proba is None or classes is None:
        return None
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1:  # binary: the positive class's probability
        p = np.column_stack([1.0 - p, p])
    names = [str(c) for c in classes]
    if p.ndim != 2 or p.shape != (len(yp), len(names)):
        return None
    column = {c: j for j, c in enumerate(names)}
    return [float(p[i, column[c]]) if c in column else None for i, c in enumerate(yp)]


def _round_robin(rows: list[int], labels: list[str]) -> list[int]:
    """`rows` reordered to take one of each real class in turn (classes sorted, rows in order)."""
    by_class: dict[str, list[int]] = {}
    for i in rows:
        by_class.setdefault(labels[i], []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    out = []
    for k in range(max((len(q) for q in queues), default=0)):
        out.extend(q[k] for q in queues if k < len(q))
    return out
