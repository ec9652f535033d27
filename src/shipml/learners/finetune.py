"""`finetune` text mode: the whole encoder and a classification (or regression) head trained
together on the labelled texts, on the CPU, within the time budget.

AdamW (encoder 1e-4, head 3e-3), 6% warmup then linear decay to zero over the steps that fit
the budget (measured on the first steps), batches of 32 texts of similar length, the head on
the normalized sentence vector (a cosine classifier with a fixed scale, so the tuned geometry
is the one the downstream heads and ONNX export see). The validation rows are scored every
~1/6 of the run; training stops when the score has not improved twice in a row, and the best
weights are kept. Only the training rows of the validation plan are learned from: the
validation score stays honest (early stopping picks among at most a handful of checkpoints).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from shipml.encoders import deps
from shipml.learners.tuning import Texts, Trainer, TuneResult, fit_loop

__all__ = ["finetune_encoder"]

_BATCH = 32
_LR = 1e-4
_HEAD_LR = 3e-3
_SCALE = 20.0  # logits = scale * head(normalized vector)
_MAX_EPOCHS = 8
_PATIENCE = 2


def finetune_encoder(
    encoder,
    texts: list[str],
    y: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    *,
    task: str,
    n_classes: int,
    deadline: float,
    seed: int = 0,
    max_epochs: float = _MAX_EPOCHS,
    progress=None,
    clock: Callable[[], float] = time.monotonic,
) -> TuneResult:
    """Fine-tune `encoder` on texts[train_rows] -> y (class index, or float for regression),
    early-stopped on valid_rows; returns the tuned encoder (best validation weights)."""
    torch = deps.torch()
    tokens = Texts(encoder, texts)
    out = n_classes if task == "multiclass" else 1
    head = torch.nn.Linear(encoder.dim, out)
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    trainer = Trainer(encoder, seed=seed, lr=_LR, head=head, head_lr=_HEAD_LR)
    target = np.asarray(y, dtype=np.float64)
    if task == "regression":  # learn the standardized target
        mean, std = float(target[train_rows].mean()), float(target[train_rows].std() or 1.0)
        target = (target - mean) / std
    if task == "binary":
        prior = float(np.clip(target[train_rows].mean(), 1e-3, 1 - 1e-3))
        torch.nn.init.constant_(head.bias, float(np.log(prior / (1 - prior))))

    def logits(rows: np.ndarray, vectors=None):
        if vectors is None:
            vectors = trainer.pooled(*tokens.tensors(rows))
        return head(vectors * _SCALE)

    def loss_fn(rows: np.ndarray):
        z = logits(rows)
        if task == "multiclass":
            labels = torch.from_numpy(target[rows].astype(np.int64))
            return torch.nn.functional.cross_entropy(z, labels)
        labels = torch.from_numpy(target[rows].astype(np.float32))
        if task == "binary":
            return torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], labels)
        return torch.nn.functional.mse_loss(z[:, 0], labels)

    def evaluate() -> float:
        vectors = torch.from_numpy(trainer.embed(tokens, valid_rows))
        head.eval()
        with torch.inference_mode():
            z = logits(valid_rows, vectors).numpy()
        head.train()
        return _valid_score(task, target[valid_rows], z)

    return fit_loop(
        trainer,
        mode="finetune",
        batches=lambda rng: tokens.batches(train_rows, _BATCH, rng),
        loss_fn=loss_fn,
        evaluate=evaluate,
        deadline=deadline,
        max_epochs=max_epochs,
        patience=_PATIENCE,
        seed=seed,
        source=f"{encoder.source}, fine-tuned on {len(train_rows):,} labelled texts",
        progress=progress,
        clock=clock,
    )


def _valid_score(task: str, y: np.ndarray, z: np.ndarray) -> float:
    """Higher is better: accuracy (classification) or minus RMSE of the standardized target."""
    if task == "multiclass":
        return float(np.mean(z.argmax(axis=1) == y.astype(int)))
    if task == "binary":
        return float(np.mean((z[:, 0] > 0) == (y > 0.5)))
    return -float(np.sqrt(np.mean((z[:, 0] - y) ** 2)))
