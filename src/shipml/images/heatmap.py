"""Which part of a photo made the model answer what it did: occlusion sensitivity.

A grey patch (the image's mean colour) slides over a grid of positions, each patch a quarter of
the image's side and the stride half a patch (7 x 7 positions by default: 49 occluded copies).
All the copies are scored in one call, with the untouched image first; the heat of a position
is how much the predicted class's probability drops when that part is hidden. It needs nothing
from the model but its probabilities, so it works for any head on any image encoder, and it is
deterministic. Its cost is one encode per position: keep the grid small (grid² + 1 images).

`overlay_png` blends a jet-like colour map (blue: no effect, red: the region that mattered
most) over the photo, with Pillow and NumPy only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np

from shipml.errors import DataError, UsageError

__all__ = [
    "DEFAULT_GRID",
    "occlusion_map",
    "occlusion_scores",
    "occlusion_drops",
    "occluded_cells",
    "patch_boxes",
    "pixel_heat",
    "overlay_png",
    "hottest_region",
]

DEFAULT_GRID = 7  # 7 x 7 positions: 49 occluded copies + the image itself per explanation
_MAX_GRID = 16
_BASE_ALPHA, _HEAT_ALPHA = 0.2, 0.5  # colour weight where nothing mattered / added at the peak


def patch_boxes(size: tuple[int, int], grid: int = DEFAULT_GRID) -> list[tuple[int, int, int, int]]:
    """The occluding patches (left, top, right, bottom) of an image of `size` (width, height),
    row by row: `grid` positions per axis, a patch 2 / (grid + 1) of the side, stride half a
    patch, the first and last positions touching the borders."""
    grid = _checked_grid(grid)
    width, height = size
    xs, pw = _positions(width, grid)
    ys, ph = _positions(height, grid)
    return [(x, y, x + pw, y + ph) for y in ys for x in xs]


def _positions(side: int, grid: int) -> tuple[list[int], int]:
    patch = max(1, round(2 * side / (grid + 1)))
    starts = np.linspace(0, max(side - patch, 0), grid).round().astype(int)
    return [int(s) for s in starts], patch


def _checked_grid(grid) -> int:
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)):
        raise UsageError(f"grid must be a whole number of positions per side, got {grid!r}")
    if not 2 <= grid <= _MAX_GRID:
        raise UsageError(f"grid must be between 2 and {_MAX_GRID} positions per side, got {grid}")
    return int(grid)


def occluded_cells(image, grid: int = DEFAULT_GRID) -> list[bytes]:
    """PNG bytes of `image` (RGB PIL image) followed by one copy per patch of `patch_boxes`,
    that patch filled with the image's mean colour."""
    from PIL import Image

    pixels = np.asarray(image.convert("RGB"))
    fill = pixels.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    cells = [_png(image)]
    for left, top, right, bottom in patch_boxes(image.size, grid):
        hidden = pixels.copy()
        hidden[top:bottom, left:right] = fill
        cells.append(_png(Image.fromarray(hidden)))
    return cells


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # lossless: only the patch differs
    return buffer.getvalue()


def occlusion_map(
    image,
    score: Callable[[list], np.ndarray],
    *,
    grid: int = DEFAULT_GRID,
    target: int | None = None,
) -> np.ndarray:
    """(grid, grid) drops of a class's probability when each patch is hidden (row 0: the top).

    `score(cells)` returns (len(cells), n_classes) probabilities for image cells (here PNG
    bytes); it is called once, for the image and its grid² occluded copies. `target`: the
    class column to explain (default: the one the image scores highest). Positive heat: the
    region supports the class; negative: hiding it makes the class more likely."""
    return occlusion_drops(occlusion_scores(image, score, grid=grid), target=target)


def occlusion_scores(image, score: Callable[[list], np.ndarray], *,
                     grid: int = DEFAULT_GRID) -> np.ndarray:  # fmt: skip
    """(grid² + 1, n_classes) probabilities: the untouched image's, then each occluded copy's
    (in the order of `patch_boxes`), from one call of `score`."""
    cells = occluded_cells(image, _checked_grid(grid))
    proba = np.asarray(score(cells), dtype=float)
    if proba.ndim != 2 or proba.shape[0] != len(cells):
        raise DataError(
            f"the score function returned shape {proba.shape} for {len(cells)} images; "
            "expected one row of class probabilities per image"
        )
    return proba


def occlusion_drops(proba: np.ndarray, *, target: int | None = None) -> np.ndarray:
    """The (grid, grid) drops of class `target` (default: the untouched image's most likely)
    from `occlusion_scores`' probabilities."""
    grid = round(np.sqrt(len(proba) - 1))
    if grid * grid != len(proba) - 1:
        raise UsageError(f"expected grid² + 1 rows of probabilities, got {len(proba)}")
    k = int(np.argmax(proba[0])) if target is None else int(target)
    if not 0 <= k < proba.shape[1]:
        raise UsageError(f"target class index {target} is not one of the {proba.shape[1]} columns")
    return (proba[0, k] - proba[1:, k]).reshape(grid, grid)


def pixel_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (height, width) map of an occlusion grid: each pixel the mean drop of the patches
    that covered it (every pixel is covered at least once)."""
    heat = np.asarray(heat, dtype=float)
    if heat.ndim != 2 or heat.shape[0] != heat.shape[1]:
        raise UsageError(f"heat must be a square (grid, grid) array, got shape {heat.shape}")
    width, height = size
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for value, (left, top, right, bottom) in zip(heat.ravel(), patch_boxes(size, heat.shape[0])):
        total[top:bottom, left:right] += value
        count[top:bottom, left:right] += 1
    return total / np.maximum(count, 1)


def jet(values: np.ndarray) -> np.ndarray:
    """RGB uint8 colours of values in [0, 1]: blue, cyan, yellow, red (matplotlib's "jet")."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peaks at 3/4, 1/2, 1/4
    rgb = np.clip(1.5 - np.abs(4.0 * v - centres), 0.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def overlay_png(image, heat: np.ndarray) -> bytes:
    """PNG bytes of `image` (RGB PIL image) with the heat map blended over it, same size.

    The colour scale runs from no drop (blue, faint) to the largest drop (red, strongest);
    regions whose hiding made the class more likely count as no drop. The patch edges are
    smoothed (Gaussian, sigma half a stride)."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    photo = np.asarray(image.convert("RGB"), dtype=float)
    h = np.clip(pixel_heat(heat, image.size), 0.0, None)
    stride = min(image.size) / (np.shape(heat)[0] + 1)
    h = gaussian_filter(h, sigma=max(1.0, stride / 2))  # the map is as coarse as its grid
    peak = h.max()
    h = h / peak if peak > 0 else h
    alpha = (_BASE_ALPHA + _HEAT_ALPHA * h)[..., None]
    blended = photo * (1 - alpha) + jet(h).astype(float) * alpha
    return _png(Image.fromarray(blended.round().astype(np.uint8)))


_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "centre", "right")


def hottest_region(heat: np.ndarray) -> str:
    """Where the largest drop is, in words: "top-left", "top", ..., "centre", "bottom-right"."""
    heat = np.asarray(heat, dtype=float)
    row, column = np.unravel_index(int(np.argmax(heat)), heat.shape)
    r = _ROWS[min(2, row * 3 // heat.shape[0])]
    c = _COLUMNS[min(2, column * 3 // heat.shape[1])]
    if r == "middle":
        return "centre" if c == "centre" else c
    return r if c == "centre" else f"{r}-{c}"


def region_names() -> Sequence[str]:
    """Every name `hottest_region` can answer."""
    names = []
    for r in _ROWS:
        for c in _COLUMNS:
            names.append(("centre" if c == "centre" else c) if r == "middle" else
                         (r if c == "centre" else f"{r}-{c}"))  # fmt: skip
    return names
