"""Image features without a pretrained network: the image's own pixels, and stacks of feature
makers (pixels next to a network's embeddings).

`PixelEncoder` turns each image into its pixels at a small fixed size (`size` x `size`, grey or
RGB, in [0, 1]; learners/image_cnn.py's `prepare_pixels`), flattened row by row: the features
the `scratch` mode's CNN (learners/cnn.py) reshapes back into images, and that the other heads
can read as they are (raw pixels + a linear model is the classic digits baseline). It stores
only its settings (no weights).

`ImageStack` puts several image encoders side by side (`auto` mode on small images: pixels for
the CNN, embeddings for the heads; the search compares them on the same folds). Both have the
interface of encoders/image.py's ImageEncoder that data/features.py uses: `dim`, `source`,
`encode(cells, report=...)`, `artifacts(prefix)`, and are read back by
`image_features_from_artifacts`.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["PixelEncoder", "ImageStack", "fit_pixel_encoder", "image_features_from_artifacts"]

PIXELS = "pixels"
STACK = "stack"
_SIZE_SAMPLE = 200  # images whose sizes and colours decide the pixel grid


class PixelEncoder:
    """Images to (n, channels * size * size) pixels in [0, 1]; zero rows for missing images."""

    kind = PIXELS

    def __init__(self, size: int, channels: int) -> None:
        self.size, self.channels = int(size), int(channels)
        self.seconds_per_image: float | None = None
        self.deadline: float | None = None

    @property
    def dim(self) -> int:
        return self.channels * self.size * self.size

    @property
    def source(self) -> str:
        colour = "grey" if self.channels == 1 else "RGB"
        return f"pixels ({self.size} x {self.size} {colour})"

    @property
    def layout(self) -> dict:
        """What a CNN needs to see images in the features: their size and channels."""
        return {"size": self.size, "channels": self.channels}

    def encode(self, cells: list, *, batch_size: int = 256, report=None) -> np.ndarray:
        from shipml.encoders.image import encode_in_batches
        from shipml.learners.image_cnn import prepare_pixels

        def flat(part: list) -> np.ndarray:
            return prepare_pixels(part, self.size, self.channels).reshape(len(part), -1)

        return encode_in_batches(cells, self.dim, flat, batch_size=batch_size, report=report,
                                 deadline=self.deadline)  # fmt: skip

    def estimate_seconds(self, sample: list) -> float:
        if self.seconds_per_image is None:
            cells = [c for c in sample if c is not None][:16]
            t0 = time.monotonic()
            if cells:
                self.encode(cells)
            self.seconds_per_image = (time.monotonic() - t0) / max(1, len(cells))
        return self.seconds_per_image

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        return {"kind": PIXELS, "size": self.size, "channels": self.channels}, {}


def fit_pixel_encoder(cells: list) -> PixelEncoder:
    """The pixel grid for these images: the median shorter side clipped to [16, 64], grey when
    every sampled image is grey-like (learners/image_cnn.py decides both)."""
    from shipml.learners.image_cnn import prepare_pixels

    sample = [c for c in cells if c is not None][:_SIZE_SAMPLE]
    pixels = prepare_pixels(sample)
    return PixelEncoder(size=pixels.shape[-1], channels=pixels.shape[1])


class ImageStack:
    """Several image encoders side by side: features of the first, then of the second, ..."""

    kind = STACK

    def __init__(self, parts: list) -> None:
        self.parts = list(parts)

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self.parts)

    @property
    def source(self) -> str:
        return " + ".join(p.source for p in self.parts)

    @property
    def seconds_per_image(self) -> float | None:
        speeds = [p.seconds_per_image for p in self.parts]
        return None if None in speeds else float(sum(speeds))

    def encode(self, cells: list, *, batch_size: int = 16, report=None) -> np.ndarray:
        blocks = [p.encode(cells, report=report if i == 0 else None)
                  for i, p in enumerate(self.parts)]  # fmt: skip
        return np.hstack(blocks)

    def estimate_seconds(self, sample: list) -> float:
        return float(sum(p.estimate_seconds(sample) for p in self.parts))

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        from shipml.registry.artifacts import artifacts_of_parts

        metas, files = artifacts_of_parts(self.parts, prefix)
        return {"kind": STACK, "parts": metas}, files


def image_features_from_artifacts(meta: dict, reader):
    """The image encoder a model stored: pixels, a stack, or a pretrained network."""
    kind = meta.get("kind")
    if kind == PIXELS:
        return PixelEncoder(meta["size"], meta["channels"])
    if kind == STACK:
        return ImageStack([image_features_from_artifacts(m, reader) for m in meta["parts"]])
    from shipml.encoders.image import image_encoder_from_artifacts

    return image_encoder_from_artifacts(meta, reader)
