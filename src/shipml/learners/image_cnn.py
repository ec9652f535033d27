"""`scratch` image mode: a small CNN trained from scratch on the CPU within a deadline.

For small, grayscale-ish images (digits, defect maps, sensor heat maps) that ImageNet features
fit badly: the pixels themselves are learned from. Images are decoded once
(shipml.images.decode), squashed to size x size (default: the median side, clipped to 16-64;
squashed, not cropped, so a defect at the border stays in), kept as one grey channel when every
image is grey-like (else RGB) and scaled to [0, 1]. The network standardizes its input with the
training rows' per-channel mean and std (kept in its settings), then runs 2-3 blocks of
conv 3x3 - BatchNorm - ReLU - max-pool (widths 32/64/128), global average and max pools side by
side (a small scratch anywhere counts by its strongest response), dropout and a linear layer:
~100k weights, about a millisecond per 32-px image on the CPU.

Training reuses the text fine-tuning loop (learners.tuning.fit_loop): the first steps are timed
on the injected clock, the steps that fit the deadline are planned, validation accuracy is
scored ~6 times, training stops early when it stops improving and the best weights are kept.
The learning rate warms up linearly (10%) then follows a cosine to zero over the planned steps
(AdamW). Each batch is augmented by one random affine resample: a shift of up to 10% of the
side and a rotation of up to 10 degrees (borders replicated); horizontal flips only when the
settings say so (a flipped digit is another digit, or none).

Weights are stored as safetensors, settings as JSON: nothing executable. Torch is imported only
inside functions.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shipml.errors import DataError, SchemaError, TargetError, UsageError

__all__ = [
    "SETTINGS",
    "FittedCNN",
    "CosineTrainer",
    "prepare_pixels",
    "fit_cnn",
    "cnn_from_artifacts",
]

SETTINGS = {
    "widths": [32, 64, 128],  # one conv block per width; each halves the side
    "pool": "avgmax",  # global pooling: "avg", "max" or both concatenated ("avgmax")
    "dropout": 0.2,
    "batch": 64,  # at most; smaller for small sets so an epoch has >= 4 steps
    "lr": 3e-3,
    "weight_decay": 0.05,  # AdamW's (decoupled); not on BatchNorm or biases
    "warmup": 0.1,  # share of the planned steps
    "label_smoothing": 0.05,
    "max_epochs": 60,
    "patience": 3,  # checkpoints without gain before stopping; None: never early
    "shift": 0.1,  # random shift, share of the side
    "rotate": 10.0,  # random rotation, degrees
    "flip": False,  # random horizontal flips (off: digits and text are not symmetric)
}
_SIDE_RANGE = (16, 64)
_GREY_TOLERANCE = 2.0  # mean |channel - grey| (0-255) under which an image counts as grey
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_MAX_GRAD_NORM = 5.0
_PREDICT_BATCH = 256


def prepare_pixels(cells: list, size: int | None = None, channels: int | None = None) -> np.ndarray:
    """(n, channels, size, size) float32 in [0, 1] of image cells (paths or bytes), each decoded
    once. `size` None: the median side of the images, clipped to [16, 64]; `channels` None: 1
    when every image is grey-like, else 3. Not standardized: fit_cnn learns the training rows'
    mean and std into the network. A cell that is not a readable image is a DataError naming
    it (paths by their path, bytes and empty cells as "image <position>")."""
    from shipml.images.decode import image_size, load_image

    cells = list(cells)
    if not cells:
        raise DataError("no images to prepare (the image column is empty)")
    if channels not in (None, 1, 3):
        raise UsageError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    labels = [_label(cell, i) for i, cell in enumerate(cells)]
    if size is None:
        sides = [min(image_size(c, label=lb)) for c, lb in zip(cells, labels)]
        size = int(np.clip(np.median(sides), *_SIDE_RANGE))
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise UsageError(f"size must be a whole number of pixels >= 8, got {size!r}")
    size = int(size)
    rgb = np.empty((len(cells), size, size, 3), dtype=np.uint8)
    for i, (cell, label) in enumerate(zip(cells, labels)):
        rgb[i] = np.asarray(_squashed(load_image(cell, label=label, max_side=4 * size), size))
    if channels is None:
        channels = 1 if _grey_like(rgb) else 3
    if channels == 1:
        return (rgb.astype(np.float32) @ _LUMA / 255.0)[:, None, :, :]
    return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def _label(cell, i: int) -> str | None:
    """Paths name themselves in errors; bytes by their position."""
    return None if isinstance(cell, (str, os.PathLike)) else f"image {i}"


def _squashed(image, size: int):
    from PIL import Image

    if image.size == (size, size):
        return image
    return image.resize((size, size), Image.Resampling.BICUBIC)


def _grey_like(rgb: np.ndarray) -> bool:
    """Every image's channels within _GREY_TOLERANCE of their mean, on average (JPEG chroma
    noise on a grey picture stays well under it)."""
    for image in rgb:
        values = image.astype(np.float32)
        if np.abs(values - values.mean(axis=2, keepdims=True)).mean() > _GREY_TOLERANCE:
            return False
    return True


def _network(settings: dict):
    """conv-BN-ReLU-maxpool blocks, global average and/or max pool, dropout, linear; the input
    is standardized inside (fixed buffers from the settings' training mean and std)."""
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers, width = [], int(settings["channels"])
            for out in settings["widths"]:
                layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                           nn.ReLU(inplace=True), nn.MaxPool2d(2)]  # fmt: skip
                width = out
            self.features = nn.Sequential(*layers)
            self.dropout = nn.Dropout(float(settings["dropout"]))
            self.pool = settings.get("pool", "avg")
            width *= 2 if self.pool == "avgmax" else 1
            self.head = nn.Linear(width, int(settings["n_classes"]))
            mean = torch.tensor(settings["mean"], dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.tensor(settings["std"], dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer("mean", mean, persistent=False)
            self.register_buffer("std", std, persistent=False)

        def forward(self, x):
            x = self.features((x - self.mean) / self.std)
            pooled = [x.mean(dim=(2, 3))] if self.pool != "max" else []
            if self.pool != "avg":  # a small defect anywhere: its strongest response counts
                pooled.append(x.amax(dim=(2, 3)))
            return self.head(self.dropout(torch.cat(pooled, 1)))

    return SmallCNN()


@dataclass
class FittedCNN:
    """A trained small CNN: `predict_proba` of prepared pixels, `artifacts` to store it."""

    module: object  # SmallCNN, in eval mode
    settings: dict  # SETTINGS plus size, channels, n_classes, mean, std
    summary: dict = field(default_factory=dict)  # steps, epochs, stop reason, history

    @property
    def size(self) -> int:
        return int(self.settings["size"])

    @property
    def channels(self) -> int:
        return int(self.settings["channels"])

    def pixels(self, cells: list) -> np.ndarray:
        """The network's input for image cells, prepared as at training."""
        return prepare_pixels(cells, self.size, self.channels)

    def predict_proba(self, pixels: np.ndarray, *, batch_size: int = _PREDICT_BATCH) -> np.ndarray:
        """(n, n_classes) float64 class probabilities of (n, channels, size, size) pixels."""
        from shipml.learners.fold_networks import batched_proba

        pixels = _checked_pixels(pixels, self.channels, self.size)
        return batched_proba(self.module, pixels, int(self.settings["n_classes"]), batch_size)

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        """(meta JSON, {file: bytes}): the weights (BatchNorm statistics included) as
        safetensors, the settings as JSON."""
        from shipml.learners.fold_networks import network_artifacts

        return network_artifacts("image_cnn", self.module, self.settings, self.summary, prefix)


def cnn_from_artifacts(meta: dict, reader) -> FittedCNN:
    """The network a model stored (FittedCNN.artifacts), read through the ArtifactReader."""
    from shipml.learners.fold_networks import network_state

    module = network_state(meta, reader, _network)
    return FittedCNN(module, dict(meta["settings"]), dict(meta.get("summary") or {}))


def _checked_pixels(pixels, channels: int, size: int) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[1:] != (channels, size, size):
        raise SchemaError(
            f"image pixels: expected shape (n, {channels}, {size}, {size}) (prepare_pixels with "
            f"size={size}, channels={channels}), got {pixels.shape}"
        )
    return np.ascontiguousarray(pixels, dtype=np.float32)


class CosineTrainer:
    """What tuning.fit_loop drives (`step`, `snapshot`, `tuned_encoder`, `total`, `step_no`):
    AdamW on the CNN with linear warmup then a cosine decay over the planned steps."""

    def __init__(self, module, settings: dict) -> None:
        import torch

        self.torch, self.module, self.settings = torch, module, settings
        decay, no_decay = [], []
        for p in module.parameters():
            (decay if p.ndim > 1 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": float(settings["weight_decay"])},
                  {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip
        self.optimizer = torch.optim.AdamW(groups, lr=float(settings["lr"]))
        self.total, self.step_no = 1, 0

    def factor(self) -> float:
        warmup = max(1, int(float(self.settings["warmup"]) * self.total))
        k = self.step_no
        if k < warmup:
            return (k + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (k - warmup) / max(1, self.total - warmup))))

    def step(self, loss) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.settings["lr"]) * self.factor()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.module.parameters(), _MAX_GRAD_NORM)
        self.optimizer.step()
        self.step_no += 1
        return float(loss.detach())

    def snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def tuned_encoder(self, state: dict | None, source: str):
        if state is not None:
            self.module.load_state_dict(state)
        return self.module.eval()


def fit_cnn(
    pixels: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    *,
    n_classes: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    seed: int = 0,
    settings: dict | None = None,
    progress: Callable[[dict], None] | None = None,
) -> FittedCNN:
    """Train a small CNN on pixels[train_rows] -> y (class index 0..n_classes-1) until
    `deadline` (seconds of `clock`), early-stopped on the accuracy of valid_rows (none: the
    last weights are kept). `settings` overrides SETTINGS."""
    from shipml.encoders import deps
    from shipml.learners.tuning import fit_loop

    pixels, y, train_rows, valid_rows = _checked_inputs(pixels, y, train_rows, valid_rows,
                                                        n_classes)  # fmt: skip
    conf = _settings(settings, pixels, train_rows, n_classes)
    torch = deps.torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        torch.manual_seed(seed)
        module = _network(conf)
        trainer = CosineTrainer(module, conf)
        batch = _batch_size(conf, len(train_rows))
        # No validation rows: training accuracy, for progress only (the last weights are kept).
        scored = valid_rows if len(valid_rows) else train_rows[:512]
        loss_fn, evaluate = _objective(module, conf, pixels, y, scored, seed)
        result = fit_loop(
            trainer,
            mode="scratch",
            batches=lambda rng: np.array_split(rng.permutation(train_rows),
                                               math.ceil(len(train_rows) / batch)),
            loss_fn=loss_fn,
            evaluate=evaluate,
            deadline=deadline,
            max_epochs=float(conf["max_epochs"]),
            patience=conf["patience"] if len(valid_rows) else None,
            seed=seed,
            source="scratch",
            progress=progress,
            keep="best" if len(valid_rows) else "last",
            clock=clock,
            every_epoch=False,  # many short epochs: score ~6 times in all
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return FittedCNN(result.encoder, conf, {**result.summary(), "batch": batch})


def _checked_inputs(pixels, y, train_rows, valid_rows, n_classes):
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[1] not in (1, 3) or pixels.shape[2] != pixels.shape[3]:
        raise DataError(
            f"image pixels: expected shape (n, 1 or 3, size, size) from prepare_pixels, got "
            f"{pixels.shape}"
        )
    y = np.asarray(y)
    if len(y) != len(pixels):
        raise DataError(f"image labels: {len(y):,} labels for {len(pixels):,} images")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"image labels: expected class indices (integers), got {y.dtype}")
    if n_classes < 2 or (len(y) and (y.min() < 0 or y.max() >= n_classes)):
        raise TargetError(
            f"image labels: expected class indices 0..{n_classes - 1} of at least 2 classes, "
            f"got values {np.unique(y)[:10].tolist()}"
        )
    rows = [np.asarray(r, dtype=np.int64).reshape(-1) for r in (train_rows, valid_rows)]
    for name, r in zip(("train_rows", "valid_rows"), rows):
        if len(r) and (r.min() < 0 or r.max() >= len(pixels)):
            raise DataError(f"{name}: row numbers must be in 0..{len(pixels) - 1}")
    if len(np.unique(y[rows[0]])) < 2:
        raise TargetError(
            f"image labels: the {len(rows[0]):,} training images need at least 2 classes, "
            f"got {np.unique(y[rows[0]]).tolist()}"
        )
    return np.ascontiguousarray(pixels, dtype=np.float32), y.astype(np.int64), *rows


def _settings(settings: dict | None, pixels: np.ndarray, train_rows, n_classes: int) -> dict:
    unknown = sorted(set(settings or {}) - set(SETTINGS))
    if unknown:
        raise UsageError(f"unknown scratch CNN settings {unknown}; known: {sorted(SETTINGS)}")
    conf = {**SETTINGS, **(settings or {})}
    train = pixels[train_rows]
    mean = train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = np.maximum(train.std(axis=(0, 2, 3), dtype=np.float64), 1e-3)
    conf.update(size=int(pixels.shape[2]), channels=int(pixels.shape[1]), n_classes=n_classes,
                mean=[round(float(m), 6) for m in mean], std=[round(float(s), 6) for s in std],
                widths=[int(w) for w in conf["widths"]])  # fmt: skip
    if not conf["widths"] or pixels.shape[2] >> len(conf["widths"]) < 1:
        raise UsageError(
            f"widths {conf['widths']}: {len(conf['widths'])} pooling blocks do not fit "
            f"{pixels.shape[2]}-pixel images (each halves the side)"
        )
    return conf


def _batch_size(conf: dict, n_train: int) -> int:
    """The configured batch, smaller for small sets so an epoch has at least 4 steps."""
    return int(max(2, min(int(conf["batch"]), max(16, n_train // 4), n_train)))


def _objective(module, conf: dict, pixels: np.ndarray, y: np.ndarray, scored, seed: int):
    """(loss of a batch of rows, accuracy of the `scored` rows) for fit_loop."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    data, labels = torch.from_numpy(pixels), torch.from_numpy(y)
    smoothing = float(conf["label_smoothing"])

    def loss_fn(rows: np.ndarray):
        index = torch.from_numpy(rows)
        batch = _augmented(data[index], conf, generator)
        return torch.nn.functional.cross_entropy(module(batch), labels[index],
                                                 label_smoothing=smoothing)  # fmt: skip

    def evaluate() -> float:
        fitted = FittedCNN(module, conf)
        accuracy = np.mean(fitted.predict_proba(pixels[scored]).argmax(1) == y[scored])
        module.train()
        return float(accuracy)

    return loss_fn, evaluate


def _augmented(batch, conf: dict, generator):
    """One random affine resample per image (shift, rotation, optional horizontal flip),
    borders replicated: light enough that the class never changes."""
    import torch

    n = batch.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(float(conf["rotate"]))
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 2 * float(conf["shift"])
    flip = torch.ones(n)
    if conf["flip"]:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)  # fmt: skip
    grid = torch.nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    return torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)  # fmt: skip
