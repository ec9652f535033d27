"""Answering metrics: ranking quality (Hit@1, Hit@3, MRR) on questions with an expected entry,
and what the hand-over threshold leaves (answer rate, precision of the answered, share of
"none" questions handed over)."""

from __future__ import annotations

import numpy as np

__all__ = ["answer_metrics", "ranks"]


def ranks(fused: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1-based rank of each row's target entry (ties count against it); 0 where target < 0."""
    rows = np.arange(len(target))
    own = fused[rows, np.maximum(target, 0)]
    out = (fused > own[:, None]).sum(axis=1) + 1
    return np.where(target >= 0, out, 0)


def answer_metrics(fused: np.ndarray, confidence: np.ndarray, target: np.ndarray,
                   threshold: float) -> dict:  # fmt: skip
    """`fused`: (n, n_entries) scores; `confidence`: of each top answer; `target`: the expected
    entry's index, -1 for "none"."""
    target = np.asarray(target)
    scoped = target >= 0
    r = ranks(fused, target)[scoped]
    top = np.argmax(fused, axis=1)
    answered = np.asarray(confidence) >= threshold
    right = answered & scoped & (top == target)
    none = ~scoped

    def share(a, b):
        return round(float(a.sum() / b.sum()), 4) if b.sum() else None

    return {
        "hit@1": round(float(np.mean(r == 1)), 4) if len(r) else None,
        "hit@3": round(float(np.mean(r <= 3)), 4) if len(r) else None,
        "mrr": round(float(np.mean(1.0 / r)), 4) if len(r) else None,
        "answer_rate": round(float(answered.mean()), 4) if len(answered) else None,
        "precision": share(right, answered),
        "handover_recall": share(none & ~answered, none),
        "n": int(len(target)),
        "n_none": int(none.sum()),
    }
