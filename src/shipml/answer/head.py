"""A linear head over the entries: multinomial logistic regression (scikit-learn) on the
vectors of each entry's texts — question, paraphrases and answer — the entry as the class: what
a few-shot text classifier learns, used as one more score of the fusion (its share chosen on
validation, among `validation.HEAD_SHARES`).

The answer is one more example of what the entry is about (as a class's name is for a
classifier). Measured on BANKING77 as an FAQ (frozen all-MiniLM-L6-v2, folds of held-out
paraphrases choosing the share; 3,080 test questions): with 3 paraphrases per entry, test Hit@1
0.745 without a head, 0.761 with a head on questions and paraphrases only (validation did not
choose it: 2 texts per entry in its folds), 0.782 with the answers too (chosen, share 1.0);
with 10, 0.849 / 0.858 / 0.863. Fitted only when the FAQ has between `MIN_ENTRIES` and
`MAX_ENTRIES` entries and some entry has a paraphrase. Stored as two .npy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Head", "fit_head", "MIN_ENTRIES", "MAX_ENTRIES"]

MIN_ENTRIES = 3
MAX_ENTRIES = 2000  # the fit grows with entries x texts; above, retrieval alone
_C = 10.0


@dataclass
class Head:
    coef: np.ndarray  # (n_entries, dim) float32
    intercept: np.ndarray  # (n_entries,) float32

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_head(vectors: np.ndarray, texts, seed: int = 0) -> Head | None:
    """The head on the vectors of every text of `texts` (FieldTexts), or None."""
    from sklearn.linear_model import LogisticRegression

    n = texts.n_entries
    if not MIN_ENTRIES <= n <= MAX_ENTRIES or not (texts.field == 1).any():
        return None
    lr = LogisticRegression(C=_C, max_iter=2000, random_state=seed)
    lr.fit(vectors, texts.entry)
    if len(lr.classes_) != n:  # pragma: no cover - every entry has its question
        return None
    return Head(lr.coef_.astype(np.float32), lr.intercept_.astype(np.float32))
