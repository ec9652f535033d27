"""`fewshot` text mode: contrastive fine-tuning of the encoder on pairs of labelled texts
(SetFit-style), for a handful of examples per class; the usual heads are then fitted on the
tuned embeddings.

SetFit draws positive and negative pairs and regresses their cosine similarity to 1 or 0. Here
each batch holds P classes x K texts and every pair inside it is used (P*K*(P*K-1)/2 pairs for
P*K forward passes), with positive and negative pairs weighted equally: the same objective,
many more pairs per second on a CPU. Validation: a nearest-centroid classifier of the training
rows' embeddings scored on the validation rows; the best weights are kept, the pretrained ones
included (tuning that does not help is dropped).
"""

from __future__ import annotations

import numpy as np

from shipml.encoders import _deps
from shipml.learners.tuning import Texts, Trainer, TuneResult, fit_loop

__all__ = ["fewshot_encoder", "FEWSHOT_MAX_PER_CLASS"]

FEWSHOT_MAX_PER_CLASS = 20  # few-shot data: the median class has at most this many rows
_BATCH = 32
_LR = 2e-5
_MAX_EPOCHS = 25
_PATIENCE = 3


def fewshot_encoder(
    encoder,
    texts: list[str],
    y: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    *,
    deadline: float,
    seed: int = 0,
    max_epochs: float = _MAX_EPOCHS,
    progress=None,
) -> TuneResult:
    """Contrastive tuning on texts[train_rows] with class indices y; returns the best encoder
    by nearest-centroid accuracy on valid_rows."""
    torch = _deps.torch()
    tokens = Texts(encoder, texts)
    trainer = Trainer(encoder, seed=seed, lr=_LR)
    y = np.asarray(y, dtype=np.int64)
    by_class = {c: train_rows[y[train_rows] == c] for c in np.unique(y[train_rows])}
    usable = [c for c, rows in by_class.items() if len(rows) >= 1]
    per_class = max(2, _BATCH // max(2, min(len(usable), _BATCH // 2)))
    n_classes = max(2, _BATCH // per_class)
    steps_per_epoch = max(1, int(np.ceil(len(train_rows) / _BATCH)))

    def batches(rng: np.random.Generator) -> list[np.ndarray]:
        out = []
        for _ in range(steps_per_epoch):
            picked = rng.choice(usable, size=min(n_classes, len(usable)), replace=False)
            rows = [
                rng.choice(by_class[c], size=min(per_class, len(by_class[c])), replace=False)
                for c in picked
            ]
            out.append(np.concatenate(rows))
        return out

    def loss_fn(rows: np.ndarray):
        vectors = trainer.pooled(*tokens.tensors(rows))
        sim = vectors @ vectors.T
        labels = torch.from_numpy(y[rows])
        same = (labels[:, None] == labels[None, :]).float()
        upper = torch.triu(torch.ones_like(sim), diagonal=1)
        pos, neg = same * upper, (1 - same) * upper
        loss = 0.0
        if pos.sum() > 0:
            loss = loss + (((1 - sim) ** 2) * pos).sum() / pos.sum()
        if neg.sum() > 0:
            loss = loss + ((sim**2) * neg).sum() / neg.sum()
        return loss

    def evaluate() -> float:
        rows = np.concatenate([train_rows, valid_rows])
        vectors = trainer.embed(tokens, rows)
        train_v, valid_v = vectors[: len(train_rows)], vectors[len(train_rows) :]
        classes = np.unique(y[train_rows])
        centroids = np.stack([train_v[y[train_rows] == c].mean(axis=0) for c in classes])
        guess = classes[(valid_v @ centroids.T).argmax(axis=1)]
        return float(np.mean(guess == y[valid_rows]))

    return fit_loop(
        trainer,
        mode="fewshot",
        batches=batches,
        loss_fn=loss_fn,
        evaluate=evaluate,
        deadline=deadline,
        max_epochs=max_epochs,
        patience=_PATIENCE,
        seed=seed,
        source=f"{encoder.source}, contrastively tuned on {len(train_rows):,} labelled texts",
        progress=progress,
        score_start=True,
    )
