"""Contrastive tuning of the sentence encoder on the FAQ's own texts: two texts of one entry
(question, paraphrases, answer) should be nearer each other than any text of another entry.

The loss is sentence-transformers' MultipleNegativesRankingLoss, symmetric: a batch of
(text, other text of its entry) pairs, cosine x `_SCALE`, cross-entropy of each text against
every partner in the batch (the partners of other entries are its negatives; texts of its own
entry are masked out). AdamW with warmup and linear decay (learners/tuning.py), planned to fit
the time given. Validation: the mean reciprocal rank of the held-out paraphrases among the
entries (max over each entry's texts), after every few steps; the best weights are kept, and
training.py keeps the tuned encoder only when that rank beats the frozen encoder's.
"""

from __future__ import annotations

import time

import numpy as np

from shipml.encoders import deps
from shipml.learners.tuning import Texts, Trainer, TuneResult, fit_loop

__all__ = ["tune_encoder", "entry_mrr"]

_SCALE = 20.0
_BATCH = 32
_LR = 3e-5
_MAX_EPOCHS = 4.0


def entry_mrr(queries: np.ndarray, vectors: np.ndarray, entry: np.ndarray, target: np.ndarray,
              n_entries: int) -> float:  # fmt: skip
    """MRR of each query's target entry, entries scored by their best text's cosine."""
    from shipml.answer.metrics import ranks

    starts = np.searchsorted(entry, np.arange(n_entries))
    fused = np.maximum.reduceat(queries @ vectors.T, starts, axis=1)
    return float(np.mean(1.0 / ranks(fused, target)))


def tune_encoder(encoder, texts: list[str], entry: np.ndarray, queries: list[str],
                 target: np.ndarray, *, deadline: float, seed: int = 0, progress=None,
                 clock=time.monotonic) -> TuneResult | None:  # fmt: skip
    """Tune on `texts` (grouped by `entry`, non-decreasing); `queries` with their `target`
    entries validate. None when no entry has two texts (no pair to learn from)."""
    torch = deps.torch()
    entry = np.asarray(entry, dtype=np.int64)
    n_entries = int(entry.max()) + 1
    tokens = Texts(encoder, list(texts) + list(queries))
    by_entry = {e: np.flatnonzero(entry == e) for e in range(n_entries)}
    anchors = np.array([i for i in range(len(texts)) if len(by_entry[int(entry[i])]) > 1])
    if not len(anchors):
        return None
    trainer = Trainer(encoder, seed=seed, lr=_LR)
    query_rows = len(texts) + np.arange(len(queries))

    def batches(rng: np.random.Generator) -> list[np.ndarray]:
        pairs = []
        for a in rng.permutation(anchors):
            own = by_entry[int(entry[a])]
            partner = rng.choice(own[own != a])
            pairs.append((a, partner))
        table = np.asarray(pairs, dtype=np.int64)
        return [table[i : i + _BATCH] for i in range(0, len(table), _BATCH)]

    def loss_fn(batch: np.ndarray):
        vectors = trainer.pooled(*tokens.tensors(np.concatenate([batch[:, 0], batch[:, 1]])))
        left, right = vectors[: len(batch)], vectors[len(batch) :]
        sims = _SCALE * left @ right.T
        labels = entry[batch[:, 0]]
        same = torch.from_numpy(
            (labels[:, None] == labels[None, :]) & ~np.eye(len(batch), dtype=bool)
        )
        sims = sims.masked_fill(same, float("-inf"))
        goal = torch.arange(len(batch))
        ce = torch.nn.functional.cross_entropy
        return (ce(sims, goal) + ce(sims.T, goal)) / 2

    def evaluate() -> float:
        vectors = trainer.embed(tokens, np.arange(len(texts)))
        asked = trainer.embed(tokens, query_rows)
        return entry_mrr(asked, vectors, entry, np.asarray(target), n_entries)

    return fit_loop(trainer, mode="answer-contrastive", batches=batches, loss_fn=loss_fn,
                    evaluate=evaluate, deadline=deadline, max_epochs=_MAX_EPOCHS,
                    patience=None, seed=seed, progress=progress, keep="best", clock=clock,
                    source=f"{encoder.source}, contrastively tuned on {len(texts):,} FAQ "
                           f"texts of {n_entries:,} entries")  # fmt: skip
