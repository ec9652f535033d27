"""One image cell (a path or the file's bytes) to an RGB Pillow image, or to its size.

Every cell goes through `load_image`, at training, prediction and monitoring time, so a photo
looks the same to the model wherever it comes from: EXIF orientation applied (phones store
portraits sideways), transparency composited on white (a product cut-out on black would look
like another product), 16-bit images scaled to 8 bits (Pillow's own `convert("RGB")` clips them
to white), CMYK through its ICC profile when the file has one.

Only the formats in `FORMATS` are opened (no EPS, which would run Ghostscript, nor the dozens of
other Pillow plugins). A file whose header says more than `MAX_PIXELS` pixels is refused from its
header, before any pixel is decoded (a decompression bomb: a 40 kB PNG can say 50,000 x 50,000).
Pillow's own process-wide limit (`PIL.Image.MAX_IMAGE_PIXELS`, which raises
`DecompressionBombError` in `Image.open` at twice its value) stays as a backstop; we do not
change process-wide state.
"""

from __future__ import annotations

import io
import logging
import math
import struct
from contextlib import contextmanager
from pathlib import Path

from shipml.errors import DataError

__all__ = ["FORMATS", "IMAGE_SUFFIXES", "MAX_PIXELS", "image_size", "load_image", "load_sized"]

log = logging.getLogger(__name__)

MAX_PIXELS = 64_000_000  # 64 MP: above any phone or DSLR photo (~50 MP), far below a bomb
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG also opens MPO (some cameras)
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
_SUPPORTED = "JPEG, PNG, WebP, BMP, GIF or TIFF"
# What Pillow's decoders raise on damaged input besides OSError: a broken PNG chunk is a
# SyntaxError, a short header a struct.error or an EOFError, a bad table an IndexError...
_BROKEN = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError)
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def load_image(cell, *, label: str | None = None, max_side: int | None = None):
    """The image as an RGB `PIL.Image.Image` (EXIF orientation applied, alpha on white).

    `cell` is a path (str or Path) or the file's bytes; `label` names it in errors (a file name,
    "row 3 of column 'photo'"). With `max_side`, the image is downscaled (aspect kept) so its
    longer side is at most `max_side`; JPEGs are then decoded at 1/2, 1/4 or 1/8 scale, which is
    several times faster on camera photos. A missing file, an empty one, one that is not an image
    in a supported format, a truncated one, or one over `MAX_PIXELS` is a DataError naming it.
    """
    return load_sized(cell, label=label, max_side=max_side)[0]


def load_sized(cell, *, label: str | None = None, max_side: int | None = None):
    """(`load_image`'s RGB image, the image's displayed (width, height) before any downscaling)."""
    with _opened(cell, label) as (image, name):
        size = _displayed_size(image)
        try:
            if max_side:
                _draft(image, max_side)
            rgb = _to_rgb(_oriented(image))
        except _BROKEN as exc:
            raise DataError(f"{name}: damaged or truncated image ({exc})") from None
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side))
    return rgb, size


def image_size(cell, *, label: str | None = None) -> tuple[int, int]:
    """(width, height) as displayed (after EXIF orientation), read from the header only: no
    pixel is decoded. Errors as `load_image` (a damaged file body is not noticed here)."""
    with _opened(cell, label) as (image, _):
        return _displayed_size(image)


def _displayed_size(image) -> tuple[int, int]:
    width, height = image.size
    return (height, width) if _orientation(image) in _ROTATED else (width, height)


def _orientation(image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except _BROKEN:  # a damaged EXIF block: the pixels may still be fine
        return None


def describe_cell(cell, label: str | None = None) -> str:
    """How errors name a cell: its label, else its path, else "the uploaded image"."""
    if label:
        return label
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return "the uploaded image"
    return str(cell)


@contextmanager
def _opened(cell, label):
    """The cell opened lazily by Pillow (header read, pixels not) after the checks that need no
    decoding: the file exists, is not empty, is a supported format, is not over MAX_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    name = describe_cell(cell, label)
    source = _source(cell, name)
    try:
        # Over Pillow's limit it warns (over twice it, raises); ours, lower, is checked below.
        # (No warnings.catch_warnings: it changes process-wide state, unsafe in a server.)
        image = Image.open(source, formats=FORMATS)
    except PermissionError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: too large to decode safely (a bomb?): {exc}") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image (expected {_SUPPORTED})") from None
    except _BROKEN as exc:
        raise DataError(f"{name}: damaged image header ({exc})") from None
    with image:
        _check_pixels(image, name)
        yield image, name


def _source(cell, name):
    """A file object for Pillow, after the checks a plain read can make."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or _is_na(cell):
        raise DataError(f"{name}: no image (the cell is empty)")
    if isinstance(cell, (bytes, bytearray, memoryview)):
        if not len(cell):
            raise DataError(f"{name}: empty (0 bytes), not an image")
        return io.BytesIO(bytes(cell))
    if not isinstance(cell, (str, Path)):
        kind = type(cell).__name__
        raise DataError(f"{name}: expected a file path or the file's bytes, got a {kind}")
    path = Path(cell).expanduser()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{name}: no such file ({path})") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise DataError(f"{name}: is a folder, not an image file")
    if size == 0:
        raise DataError(f"{name}: empty file (0 bytes), not an image")
    return path


def _is_na(cell) -> bool:
    """pandas.NA, without importing pandas."""
    return type(cell).__name__ == "NAType"


def _check_pixels(image, name):
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{name}: {width} x {height} = {width * height:,} pixels, over the limit of "
            f"{MAX_PIXELS:,} (shipml.images.decode.MAX_PIXELS); resize it (or it may be a "
            "decompression bomb)"
        )
    if width < 1 or height < 1:
        raise DataError(f"{name}: {width} x {height} pixels, an image with no pixels")


def _draft(image, max_side):
    """Let the JPEG decoder scale down by 2, 4 or 8 while decoding (no-op for other formats)."""
    if image.format in ("JPEG", "MPO") and image.mode in ("RGB", "L", "CMYK"):
        width, height = image.size
        scale = max_side / max(width, height)
        if scale < 1:
            image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))


def _oriented(image):
    from PIL import ImageOps

    if _orientation(image) in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def _to_rgb(image):
    """Any Pillow mode to 8-bit RGB, the way a person would see the picture."""
    from PIL import Image

    image.load()
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _scaled_to_8_bits(image).convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _scaled_to_8_bits(image):
    """16-bit (and 32-bit integer) grey to 8 bits by its bit depth, floats by 0-1 or 0-255."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image)
    if image.mode == "F":
        top = 1.0 if np.nanmax(values, initial=0.0) <= 1.0 else 255.0
    else:
        # "I" comes from 16-bit PNGs/TIFFs too: scale by 16 bits unless the values need more.
        top = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
    scaled = np.clip(np.nan_to_num(values / top * 255.0), 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def _cmyk_to_rgb(image):
    """Through the file's ICC profile to sRGB when it has one (print CMYK is far from the
    naive inversion), else Pillow's plain conversion."""
    profile = image.info.get("icc_profile")
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without littlecms
        profile = None
    if profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (OSError, ImageCms.PyCMSError) as exc:
            log.debug("CMYK ICC profile not usable (%s): plain conversion", exc)
    return image.convert("RGB")
