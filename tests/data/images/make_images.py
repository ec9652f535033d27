"""Generate shipml's synthetic "defect inspection" images (CC0 1.0; see LICENSE here).

    python tests/data/images/make_images.py

writes, next to this script:

- defects/{ok,scratch,spot}/: 48 images per class, 64 x 64, a third PNG, the rest JPEG. A
  brushed-metal surface (grain direction, grain length, base grey, tint, lighting gradient and
  noise all vary); `scratch` adds a thin line (any angle, length, width, brighter or darker),
  `spot` a soft blob (size, shape, darker or rusty). Some `ok` surfaces carry a faint speck or a
  grain streak, and some defects are faint, so the classes are learnable but not trivially.
- labels.csv: path (relative to this folder), defect (the class), line_speed (m/min; scratches
  come a little more often at high speed): the table-of-paths case.
- bad/: one file per awkward input the reader must handle (a truncated JPEG, a text file named
  .jpg, an empty file, CMYK, 16-bit, palette with transparency, RGBA, TIFF, WebP, BMP, an EXIF
  orientation, an animated GIF, a 1 x 1 image, a PNG header claiming 10 gigapixels).

Deterministic (NumPy seed 17, no timestamps in the files), Pillow + NumPy only.
"""

from __future__ import annotations

import csv
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = 64
WORK = 2 * SIZE  # drawn at twice the size, then downscaled: smooth edges
PER_CLASS = 48
CLASSES = ("ok", "scratch", "spot")


def box_blur_rows(values: np.ndarray, length: int) -> np.ndarray:
    """A moving average along each row (the grain of brushed metal)."""
    padded = np.pad(values, ((0, 0), (length, length)), mode="wrap")
    csum = np.cumsum(padded, axis=1)
    out = (csum[:, length:] - csum[:, :-length]) / length
    return out[:, length // 2 : length // 2 + values.shape[1]]


def surface(rng: np.random.Generator) -> np.ndarray:
    """A brushed-metal surface, float RGB (WORK, WORK, 3) around 0-255."""
    big = int(WORK * 1.5)
    grain = box_blur_rows(rng.normal(0, 1, (big, big)), int(rng.integers(6, 30)))
    grain = grain / (grain.std() + 1e-9) * rng.uniform(5, 16)
    angle = rng.choice([0.0, 90.0]) + rng.uniform(-15, 15)
    turned = Image.fromarray(grain.astype(np.float32), mode="F").rotate(angle, Image.BILINEAR)
    off = (big - WORK) // 2
    grain = np.asarray(turned)[off : off + WORK, off : off + WORK]
    yy, xx = np.mgrid[0:WORK, 0:WORK] / WORK - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    light = (np.cos(theta) * xx + np.sin(theta) * yy) * rng.uniform(0, 60)
    grey = rng.uniform(85, 185) + grain + light + rng.normal(0, rng.uniform(1.5, 4), grain.shape)
    tint = 1 + rng.normal(0, 0.03, 3)
    return grey[..., None] * tint[None, None, :]


def soft_mask(draw_shape, blur: float) -> np.ndarray:
    """A 0-1 mask drawn by `draw_shape(ImageDraw)` on a WORK x WORK canvas, blurred."""
    mask = Image.new("L", (WORK, WORK), 0)
    draw_shape(ImageDraw.Draw(mask))
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(blur)), dtype=np.float64) / 255


def scratch(rng: np.random.Generator, faint: bool) -> tuple[np.ndarray, np.ndarray]:
    """A thin line: its mask and its colour change per channel."""
    length = rng.uniform(28, 80)
    angle = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(0.25, 0.75, 2) * WORK
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    width = int(rng.integers(2, 5))
    mask = soft_mask(lambda d: d.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], 255, width), 0.8)
    strength = rng.uniform(18, 30) if faint else rng.uniform(35, 75)
    sign = 1.0 if rng.random() < 0.7 else -1.0  # most scratches catch the light
    return mask, np.full(3, sign * strength)


def spot(rng: np.random.Generator, faint: bool) -> tuple[np.ndarray, np.ndarray]:
    """A soft blob (a stain, a pit, rust): its mask and its colour change per channel."""
    rx = rng.uniform(5, 14)
    ry = rx * rng.uniform(0.55, 1.0)
    cx, cy = rng.uniform(0.2, 0.8, 2) * WORK
    mask = soft_mask(lambda d: d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], 255), rx / 4)
    strength = rng.uniform(18, 30) if faint else rng.uniform(35, 80)
    colour = np.array([-0.6, -1.0, -1.3]) if rng.random() < 0.4 else -np.ones(3)  # rust or dark
    return mask, colour * strength


def distractor(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What an `ok` surface may carry: a faint speck of dust or a short grain streak."""
    cx, cy = rng.uniform(0.15, 0.85, 2) * WORK
    if rng.random() < 0.5:
        r = rng.uniform(1.5, 3)
        mask = soft_mask(lambda d: d.ellipse([cx - r, cy - r, cx + r, cy + r], 255), 1.0)
    else:
        mask = soft_mask(lambda d: d.line([(cx - 8, cy), (cx + 8, cy)], 255, 2), 1.0)
    return mask, np.full(3, rng.choice([-1.0, 1.0]) * rng.uniform(8, 16))


def sample(label: str, rng: np.random.Generator) -> Image.Image:
    pixels = surface(rng)
    if label == "ok":
        marks = [distractor(rng)] if rng.random() < 0.35 else []
    else:
        draw = scratch if label == "scratch" else spot
        marks = [draw(rng, faint=rng.random() < 0.2)]
    for mask, change in marks:
        pixels = pixels + mask[..., None] * change[None, None, :]
    image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="RGB")
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def write_classes(rng: np.random.Generator) -> list[tuple[str, str, float]]:
    rows = []
    for label in CLASSES:
        folder = HERE / "defects" / label
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for i in range(PER_CLASS):
            image = sample(label, rng)
            if i % 3 == 0:
                name = f"{label}_{i:03d}.png"
                image.save(folder / name, "PNG", optimize=True)
            else:
                name = f"{label}_{i:03d}.jpg"
                image.save(folder / name, "JPEG", quality=int(rng.integers(80, 95)))
            speed = rng.normal(62 if label == "scratch" else 55, 8)
            rows.append((f"defects/{label}/{name}", label, round(float(speed), 1)))
    return rows


def write_labels(rows: list[tuple[str, str, float]]) -> None:
    with open(HERE / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "defect", "line_speed"])
        writer.writerows(rows)


def halves(left, right, size=(32, 16), mode="RGB") -> Image.Image:
    """An image whose left half is `left` and right half `right`."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def png_bomb() -> bytes:
    """A valid PNG header claiming 100,000 x 100,000 RGB pixels (10 gigapixels) in ~60 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def write_bad() -> None:
    bad = HERE / "bad"
    bad.mkdir(exist_ok=True)
    jpeg = io.BytesIO()
    sample("scratch", np.random.default_rng(1)).save(jpeg, "JPEG", quality=90)
    (bad / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (bad / "not_an_image.jpg").write_text("This is a note about the photos, not a photo.\n")
    (bad / "empty.png").write_bytes(b"")
    # CMYK: left half pure cyan, right half pure black (no ICC profile: the plain conversion).
    halves((255, 0, 0, 0), (0, 0, 0, 255), mode="CMYK").save(bad / "cmyk.jpg", quality=95)
    # 16-bit grey: a ramp 0 .. 32767 left to right, mean ~16384 -> ~64 in 8 bits (not 255).
    ramp = np.tile(np.linspace(0, 32767, 32).round().astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(bad / "gray16.png")  # mode I;16
    # Palette with transparency: index 0 transparent (left), index 1 red (right).
    palette = halves(0, 1, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    palette.save(bad / "palette_transparent.gif", transparency=0)
    # RGBA: left half transparent *black* (must come out white), right half opaque blue.
    halves((0, 0, 0, 0), (0, 0, 255, 255), mode="RGBA").save(bad / "rgba.png")
    halves((0, 0), (0, 255), mode="LA").save(bad / "gray_alpha.png")
    halves((255, 0, 0), (0, 255, 0)).save(bad / "photo.tiff", compression="tiff_lzw")
    halves((255, 0, 0), (0, 0, 255)).save(bad / "photo.webp", lossless=True)
    halves((0, 255, 0), (0, 0, 255)).save(bad / "photo.bmp")
    # EXIF orientation 6 (rotate 90 degrees clockwise to display): stored 32 wide x 16 high,
    # red left / blue right; displayed 16 wide x 32 high, red on top, blue below.
    exif = Image.Exif()
    exif[0x0112] = 6
    halves((255, 0, 0), (0, 0, 255)).save(bad / "exif_rotated.jpg", quality=95, exif=exif)
    frames = [Image.new("RGB", (16, 16), c) for c in ((0, 255, 0), (255, 0, 255))]
    frames[0].save(bad / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (1, 1), (10, 20, 30)).save(bad / "tiny.png")
    (bad / "bomb.png").write_bytes(png_bomb())


def main() -> None:
    rng = np.random.default_rng(17)
    write_labels(write_classes(rng))
    write_bad()


if __name__ == "__main__":
    main()
