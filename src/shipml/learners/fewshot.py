"""`fewshot` text mode: contrastive fine-tuning of the encoder on pairs of labelled texts
(SetFit's recipe), for a handful of examples per class; the usual heads are then fitted on the
tuned embeddings.

Each training text, `_ITERATIONS` times, is paired with a random text of its class (target
cosine 1) and one of another class (target 0); the class names, when they are words, take part
as texts of their class. The cosine of each pair is regressed to its target (mean squared
error), batches of 16 pairs, AdamW with warmup then linear decay over one pass — or over the
steps the time budget allows. The last weights are kept: validation rows (a few per class) are
scored for the progress bar, not to choose weights (on three rows a choice is a coin toss).

Measured (benchmarks/text.py, 8 rows per class, 3 samples): +1.9 points over the frozen encoder
on financial_phrasebank, +1.6 on sst2; SetFit's pairs without the class names gained nothing
(benchmarks/text_fewshot.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from shipml.encoders import deps
from shipml.learners.tuning import Texts, Trainer, TuneResult, fit_loop

__all__ = ["fewshot_encoder", "pair_texts", "FEWSHOT_MAX_PER_CLASS"]

FEWSHOT_MAX_PER_CLASS = 20  # few-shot data: the median class has at most this many rows
_PAIRS_PER_BATCH = 16
_ITERATIONS = 20  # positive + negative pairs drawn per text (SetFit's default)
_LR = 2e-5


def pair_texts(anchors: int, iterations: int = _ITERATIONS) -> int:
    """Texts one pass runs through the encoder: a positive and a negative pair per anchor and
    iteration, two texts each."""
    return anchors * iterations * 4


def fewshot_encoder(
    encoder,
    texts: list[str],
    y: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    *,
    deadline: float,
    seed: int = 0,
    names: list[str] | None = None,
    iterations: int = _ITERATIONS,
    progress=None,
    clock: Callable[[], float] = time.monotonic,
) -> TuneResult:
    """Contrastive tuning on texts[train_rows] (class indices y) and the class `names` (by
    class index, optional); valid_rows are scored by nearest class centroid for progress."""
    torch = deps.torch()
    y = np.asarray(y, dtype=np.int64)
    names = list(names or [])
    tokens = Texts(encoder, list(texts) + names)
    labels = np.concatenate([y, np.arange(len(names), dtype=np.int64)])
    anchors = np.concatenate([train_rows, len(texts) + np.arange(len(names))]).astype(np.int64)
    by_class = {c: anchors[labels[anchors] == c] for c in np.unique(labels[anchors])}
    trainer = Trainer(encoder, seed=seed, lr=_LR)

    def pairs(rng: np.random.Generator) -> list[np.ndarray]:
        """One pass: batches of (text, partner, target) rows."""
        out = []
        for _ in range(iterations):
            for a in anchors:
                same, other = by_class[labels[a]], anchors[labels[anchors] != labels[a]]
                out.append((a, rng.choice(same), 1))
                if len(other):
                    out.append((a, rng.choice(other), 0))
        table = np.asarray(out, dtype=np.int64)[rng.permutation(len(out))]
        return [table[i : i + _PAIRS_PER_BATCH] for i in range(0, len(table), _PAIRS_PER_BATCH)]

    def loss_fn(batch: np.ndarray):
        vectors = trainer.pooled(*tokens.tensors(np.concatenate([batch[:, 0], batch[:, 1]])))
        cosine = (vectors[: len(batch)] * vectors[len(batch) :]).sum(dim=1)
        target = torch.from_numpy(batch[:, 2].astype(np.float32))
        return torch.nn.functional.mse_loss(cosine, target)

    def evaluate() -> float:
        rows = np.concatenate([train_rows, valid_rows])
        vectors = trainer.embed(tokens, rows)
        train_v, valid_v = vectors[: len(train_rows)], vectors[len(train_rows) :]
        classes = np.unique(y[train_rows])
        centroids = np.stack([train_v[y[train_rows] == c].mean(axis=0) for c in classes])
        guess = classes[(valid_v @ centroids.T).argmax(axis=1)]
        return float(np.mean(guess == y[valid_rows]))

    named = f" and {len(names)} class names" if names else ""
    return fit_loop(
        trainer,
        mode="fewshot",
        batches=pairs,
        loss_fn=loss_fn,
        evaluate=evaluate,
        deadline=deadline,
        max_epochs=1,
        patience=None,
        seed=seed,
        source=(
            f"{encoder.source}, contrastively tuned on {len(train_rows):,} labelled texts{named}"
        ),
        progress=progress,
        clock=clock,
        keep="last",
    )
