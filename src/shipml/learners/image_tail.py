"""`finetune` image mode: the last block and head of the pretrained network, trained on the CPU.

Fine-tuning a whole EfficientNet on two CPU cores passes over 50,000 photos about once an hour
(forward and backward at 224 px, ~15 images/s). Its early blocks change least in fine-tuning
and cost most, so they stay frozen and run once per image: the features step stores each
image's activation maps before block `cut` (encoders/image.py `ImageEncoder.maps`, 192 x 7 x 7
for Lite0 at 224 px, stopping before the last block). This module trains what follows on
those maps: the last block, the 1 x 1 head convolution, its BatchNorm and a new linear layer,
about 1.1 M weights at ~8x the images/s of the whole network.

Training is LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features"): the linear
layer is first fitted on the frozen network's pooled features (a linear probe, L-BFGS), then
everything trains together, so the pretrained features are not torn up by a random head:

- AdamW with linear warmup then a cosine decay over the steps that fit the deadline
  (learners.tuning.fit_loop, which times the first steps and plans the rest);
- the maps of a batch are flipped left-right at random (the feature-level copy of the flip
  augmentation), drop-connect in the trained block, dropout before the linear layer and label
  smoothing;
- BatchNorm keeps its pretrained statistics (batches of 64 on 7 x 7 maps are too few to
  re-estimate them);
- validation accuracy is scored ~6 times; training stops when it stops improving, the best
  weights are kept, and the probe's weights are kept instead when fine-tuning never beat it.

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

from shipml.errors import ArtifactIntegrityError, SchemaError, UsageError

__all__ = [
    "SETTINGS",
    "FittedTail",
    "fit_tail",
    "tail_from_artifacts",
    "tail_network",
    "load_pretrained",
]

SETTINGS = {
    "lr": 3e-4,
    "weight_decay": 0.01,  # AdamW's (decoupled); not on BatchNorm or biases
    "warmup": 0.1,  # share of the planned steps
    "batch": 64,
    "label_smoothing": 0.1,
    "dropout": 0.2,
    "drop_connect": 0.2,  # of the trained block's residual branch
    "probe_l2": 1e-4,  # the linear probe's penalty (mean over rows of the loss + l2 * |W|^2)
    "max_epochs": 20,
    "patience": 2,
    "flip": True,
}
_PREDICT_BATCH = 256
_PROBE_ITERATIONS = 100


def tail_network(settings: dict):
    """The network after block `cut`: its last blocks, the head convolution with its BatchNorm
    and activation, global average pooling, dropout and a linear layer to the classes."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class Tail(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            net = EfficientNet.from_name(settings["arch"])
            self.blocks = torch.nn.ModuleList(net._blocks[int(settings["cut"]) :])
            self.conv_head, self.bn1, self.swish = net._conv_head, net._bn1, net._swish
            self.dropout = torch.nn.Dropout(float(settings["dropout"]))
            self.fc = torch.nn.Linear(net._conv_head.out_channels, int(settings["n_classes"]))
            self.drop_connect = float(settings["drop_connect"])

        def pooled(self, maps):
            x = maps
            for block in self.blocks:
                x = block(x, drop_connect_rate=self.drop_connect if self.training else None)
            return self.swish(self.bn1(self.conv_head(x))).mean(dim=(2, 3))

        def forward(self, maps):
            return self.fc(self.dropout(self.pooled(maps)))

    return Tail()


def load_pretrained(module, settings: dict) -> None:
    """Load the packaged network's weights for the tail's blocks and head (the fc stays new)."""
    from shipml.encoders.image import load_image_encoder

    state = load_image_encoder().module.net.state_dict()
    cut = int(settings["cut"])
    mine = {}
    for key, value in state.items():
        if key.startswith("_blocks."):
            index, rest = key.split(".", 2)[1:]
            if int(index) >= cut:
                mine[f"blocks.{int(index) - cut}.{rest}"] = value
        elif key.startswith(("_conv_head.", "_bn1.")):
            mine[key[1:]] = value  # "_conv_head.weight" -> "conv_head.weight"
    missing = module.load_state_dict(mine, strict=False).missing_keys
    if any(not k.startswith("fc.") for k in missing):
        raise ArtifactIntegrityError(f"the packaged network has no weights for {missing[:3]}")


@dataclass
class FittedTail:
    """A trained tail: `predict_proba` of maps, `artifacts` to store it."""

    module: object  # Tail, in eval mode
    settings: dict  # SETTINGS plus arch, cut, channels, size, n_classes
    summary: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.settings
        return int(s["channels"]), int(s["size"]), int(s["size"])

    def predict_proba(self, maps: np.ndarray, *, batch_size: int = _PREDICT_BATCH) -> np.ndarray:
        """(n, n_classes) float64 class probabilities of (n, channels, side, side) maps."""
        from shipml.learners.fold_networks import batched_proba

        maps = _checked_maps(maps, self.shape)
        return batched_proba(self.module, maps, int(self.settings["n_classes"]), batch_size)

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        """(meta JSON, {file: bytes}): the tail's weights as safetensors, its settings as JSON."""
        from shipml.learners.fold_networks import network_artifacts

        return network_artifacts("image_tail", self.module, self.settings, self.summary, prefix)


def tail_from_artifacts(meta: dict, reader) -> FittedTail:
    """The tail a model stored (FittedTail.artifacts), read through the ArtifactReader."""
    from shipml.learners.fold_networks import network_state

    module = network_state(meta, reader, tail_network)
    return FittedTail(module, dict(meta["settings"]), dict(meta.get("summary") or {}))


def _checked_maps(maps, shape: tuple[int, int, int]) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 4 or maps.shape[1:] != shape:
        raise SchemaError(f"image maps: expected shape (n, {', '.join(map(str, shape))}), "
                          f"got {maps.shape}")  # fmt: skip
    return np.ascontiguousarray(maps, dtype=np.float32)


def fit_tail(
    maps: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    *,
    layout: dict,
    n_classes: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    seed: int = 0,
    settings: dict | None = None,
    progress: Callable[[dict], None] | None = None,
) -> FittedTail:
    """Train the tail on maps[train_rows] -> y (class index 0..n_classes-1) until `deadline`
    (seconds of `clock`), LP-FT, early-stopped on the accuracy of valid_rows (none: the last
    weights). `layout`: where the maps came from (arch, cut, channels, size)."""
    from shipml.encoders import deps

    conf = _settings(settings, layout, n_classes)
    maps = _checked_maps(maps, (int(conf["channels"]), int(conf["size"]), int(conf["size"])))
    y = np.asarray(y, dtype=np.int64)
    train_rows, valid_rows = (np.asarray(r, dtype=np.int64).reshape(-1)
                              for r in (train_rows, valid_rows))  # fmt: skip
    torch = deps.torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        torch.manual_seed(seed)
        module = tail_network(conf)
        load_pretrained(module, conf)
        _probe(module, maps, y, train_rows, conf)
        return _finetune(module, conf, maps, y, train_rows, valid_rows, deadline, clock, seed,
                         progress)  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _settings(settings: dict | None, layout: dict, n_classes: int) -> dict:
    unknown = sorted(set(settings or {}) - set(SETTINGS))
    if unknown:
        raise UsageError(f"unknown finetune settings {unknown}; known: {sorted(SETTINGS)}")
    if n_classes < 2:
        raise UsageError(f"finetune trains classifiers: expected >= 2 classes, got {n_classes}")
    conf = {**SETTINGS, **(settings or {})}
    conf.update(arch=layout["arch"], cut=int(layout["cut"]), channels=int(layout["channels"]),
                size=int(layout["size"]), n_classes=int(n_classes))  # fmt: skip
    return conf


def _pooled(module, maps: np.ndarray, rows: np.ndarray):
    """The frozen network's pooled features (n, 1280) of maps[rows], in eval mode."""
    import torch

    module.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), _PREDICT_BATCH):
            out.append(module.pooled(torch.from_numpy(maps[rows[start : start + _PREDICT_BATCH]])))
    return torch.cat(out)


def _probe(module, maps: np.ndarray, y: np.ndarray, rows: np.ndarray, conf: dict) -> None:
    """Fit the linear layer alone on the frozen features (L-BFGS on the penalized mean
    cross-entropy): the starting point of fine-tuning."""
    import torch

    features = _pooled(module, maps, rows).clone()
    labels = torch.from_numpy(y[rows])
    weight = torch.zeros_like(module.fc.weight, requires_grad=True)
    bias = torch.zeros_like(module.fc.bias, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=_PROBE_ITERATIONS,
                                  line_search_fn="strong_wolfe")  # fmt: skip
    l2 = float(conf["probe_l2"])

    def closure():
        optimizer.zero_grad()
        logits = features @ weight.T + bias
        loss = torch.nn.functional.cross_entropy(logits, labels) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        module.fc.weight.copy_(weight)
        module.fc.bias.copy_(bias)


def _finetune(module, conf, maps, y, train_rows, valid_rows, deadline, clock, seed, progress):
    """The whole tail trained from the probe (fit_loop); the probe kept if it validates better."""
    from shipml.learners.image_cnn import CosineTrainer
    from shipml.learners.tuning import fit_loop

    scored = valid_rows if len(valid_rows) else train_rows[:512]
    loss_fn, evaluate = _objective(module, conf, maps, y, scored, seed)
    probe_state, probe_score = _snapshot(module), evaluate()
    batch = int(max(2, min(int(conf["batch"]), len(train_rows))))
    trainer = CosineTrainer(module, conf)
    result = fit_loop(
        trainer,
        mode="finetune",
        batches=lambda rng: np.array_split(rng.permutation(train_rows),
                                           math.ceil(len(train_rows) / batch)),
        loss_fn=loss_fn,
        evaluate=evaluate,
        deadline=deadline,
        max_epochs=float(conf["max_epochs"]),
        patience=conf["patience"] if len(valid_rows) else None,
        seed=seed,
        source="finetune",
        progress=progress,
        keep="best" if len(valid_rows) else "last",
        clock=clock,
        every_epoch=False,
    )  # fmt: skip
    summary = {**result.summary(), "batch": batch, "probe_valid_score": float(probe_score)}
    tuned = result.encoder
    if len(valid_rows) and (result.best_score is None or result.best_score <= probe_score):
        tuned.load_state_dict(probe_state)
        summary["kept"] = "probe (fine-tuning did not beat it on validation)"
    return FittedTail(tuned.eval(), conf, summary)


def _snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _objective(module, conf: dict, maps: np.ndarray, y: np.ndarray, scored, seed: int):
    """(loss of a batch of rows, accuracy of the `scored` rows) for fit_loop."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    data, labels = torch.from_numpy(maps), torch.from_numpy(y)
    smoothing = float(conf["label_smoothing"])
    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def loss_fn(rows: np.ndarray):
        module.train()
        for norm in norms:  # pretrained statistics kept
            norm.eval()
        index = torch.from_numpy(rows)
        batch = data[index]
        if conf["flip"]:
            flip = torch.rand(len(rows), generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        return torch.nn.functional.cross_entropy(module(batch), labels[index],
                                                 label_smoothing=smoothing)  # fmt: skip

    def evaluate() -> float:
        fitted = FittedTail(module, conf)
        return float(np.mean(fitted.predict_proba(maps[scored]).argmax(1) == y[scored]))

    return loss_fn, evaluate
