"""One image cell (a path or the file's bytes) to an RGB Pillow image."""

from __future__ import annotations

import io
from pathlib import Path

from shipml.errors import DataError

__all__ = ["load_image", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def load_image(cell: str | Path | bytes, *, label: str | None = None):
    """The image as RGB (EXIF orientation applied). `label` names it in errors (a file name,
    "row 3 of column 'photo'"). A file that is not an image, or is truncated, is a DataError."""
    from PIL import Image, ImageOps

    name = label or (str(cell) if not isinstance(cell, bytes) else "the uploaded image")
    try:
        source = io.BytesIO(cell) if isinstance(cell, bytes) else Path(cell)
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image)
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: not a readable image ({exc})") from None
