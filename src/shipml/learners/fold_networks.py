"""What the image network families share (learners/cnn.py, learners/image_finetune.py): one
network per validation fold on an image block of the encoded matrix, averaged in raw-score
space, stored as the fold networks' own artifacts.

The block is `TrainData.images`: {"start", "channels", "size", "kind"} (pixels for the cnn,
maps for finetune), reshaped back into (n, channels, size, size). Raw scores are
log-probabilities (per class; log-odds for binary), so that they average with the other
families' raw scores. There are no per-feature reasons: the whole score is in the bias column
of `contributions` (`shipml explain` draws an occlusion heat map instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Budget, TrainData

__all__ = ["images_of", "raw_scores", "FoldNetworks", "fit_on_folds", "network_artifacts",
           "network_state", "batched_proba"]  # fmt: skip

_EPS = 1e-7


def images_of(X: np.ndarray, images: dict) -> np.ndarray:
    """The (n, channels, size, size) float32 block of the feature matrix that `images` says."""
    c, s, start = int(images["channels"]), int(images["size"]), int(images["start"])
    block = np.asarray(X[:, start : start + c * s * s], dtype=np.float32)
    return np.ascontiguousarray(block.reshape(len(X), c, s, s))


def raw_scores(proba: np.ndarray, task: str) -> np.ndarray:
    """Probabilities as raw scores: log-odds (binary) or log-probabilities (multiclass)."""
    logp = np.log(np.clip(proba, _EPS, 1.0))
    if task == "binary":
        return logp[:, 1] - logp[:, 0]
    return logp


@dataclass
class FoldNetworks:
    """The fold networks (each with `predict_proba(images)`), averaged in raw-score space."""

    folds: list
    images: dict  # where the block is in X
    task: str
    kind: str

    def raw(self, X: np.ndarray) -> np.ndarray:
        if not self.folds:
            raise RuntimeError(f"this {self.kind} model has no trained network: the deadline "
                               "came first")  # fmt: skip
        block = images_of(X, self.images)
        return np.mean([raw_scores(f.predict_proba(block), self.task) for f in self.folds],
                       axis=0)  # fmt: skip

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, p + 1), or (n, k, p + 1): no per-feature share, the whole score as the bias."""
        raw = self.raw(X).reshape(len(X), -1)
        out = np.zeros((len(X), raw.shape[1], X.shape[1] + 1))
        out[:, :, -1] = raw
        return out if self.task == "multiclass" else out[:, 0, :]

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        from shipml.registry.artifacts import artifacts_of_parts

        metas, files = artifacts_of_parts(self.folds, prefix)
        return {"kind": self.kind, "images": self.images, "folds": metas}, files

    @classmethod
    def read(cls, meta: dict, reader, task: str, read_fold: Callable) -> FoldNetworks:
        folds = [read_fold(m, reader) for m in meta["folds"]]
        return cls(folds, dict(meta["images"]), task, meta["kind"])


def fit_on_folds(data: TrainData, plan, seed: int, budget: Budget, kind: str,
                 fit_fold: Callable) -> tuple[np.ndarray, FoldNetworks, bool]:  # fmt: skip
    """One network per fold of `plan`, `fit_fold(images, y, train_rows, valid_rows, n_classes=,
    deadline=, clock=, seed=)` early-stopping it on the fold's validation rows, each in an equal
    share of the time left when it starts. (out-of-fold raw scores, 0 where no fold validates;
    the networks; every fold trained)."""
    block = images_of(data.X, data.images)
    n_classes = max(2, int(data.n_classes))
    y = data.y.astype(int)
    shape = (len(y), n_classes) if data.task == "multiclass" else len(y)
    oof, folds = np.zeros(shape), []
    for i, (train_rows, valid_rows) in enumerate(plan.folds):
        if budget.remaining <= 1.0:
            break
        share_end = budget.clock() + budget.remaining / (len(plan.folds) - i)
        fold = fit_fold(block, y, np.asarray(train_rows), np.asarray(valid_rows),
                        n_classes=n_classes, deadline=share_end, clock=budget.clock,
                        seed=seed * 1009 + i)  # fmt: skip
        oof[valid_rows] = raw_scores(fold.predict_proba(block[valid_rows]), data.task)
        folds.append(fold)
    fitted = FoldNetworks(folds, dict(data.images), data.task, kind)
    return oof, fitted, len(folds) == len(plan.folds)


def batched_proba(module, inputs: np.ndarray, n_classes: int, batch_size: int) -> np.ndarray:
    """(n, n_classes) float64 softmax of a torch module over `inputs`, in eval mode, batched."""
    import torch

    out = np.empty((len(inputs), n_classes), dtype=np.float64)
    module.eval()
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(inputs[start : start + batch_size])
            out[start : start + len(batch)] = torch.softmax(module(batch), 1).numpy()
    return out


def network_artifacts(kind: str, module, settings: dict, summary: dict,
                      prefix: str) -> tuple[dict, dict]:  # fmt: skip
    """(meta JSON, {file: bytes}) of one fold network: its weights (BatchNorm statistics
    included) as safetensors, its settings as JSON."""
    from safetensors.torch import save

    weights = f"{prefix}.safetensors"
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    meta = {"kind": kind, "settings": settings, "weights": weights, "summary": summary}
    return meta, {weights: save(state)}


def network_state(meta: dict, reader, build: Callable):
    """The module `build(settings)` with the weights a fold network stored (network_artifacts),
    read through the ArtifactReader, in eval mode; weights that do not fit the settings are an
    ArtifactIntegrityError."""
    from safetensors.torch import load

    from shipml.errors import ArtifactIntegrityError

    state = reader.parse(meta["weights"], "safetensors weights", load)
    module = build(meta["settings"])
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ArtifactIntegrityError(
            f"{meta['weights']} does not match its network settings ({first}): restore the "
            "version's files from a backup or train it again"
        ) from None
    return module.eval()
