"""The confidence of an answer and the hand-over threshold.

Features of a candidate entry, from the query's score list: its fused score, its margin to the
best other entry (for the top one: the gap to the second), its best cosine and log(1 + its best
raw BM25). A logistic regression on those (scikit-learn, standardized features) is fitted on
the validation queries: the top answer right (1) or not (0); questions with no answer in the
FAQ are negatives. Its coefficients are stored as JSON.

The threshold is the smallest confidence whose answered questions (confidence >= it) reach
`min_precision` on validation, one standard error below the precision measured (the Wilson
lower bound with z = 1: a few dozen validation questions prove less than a thousand): the
most questions answered at that precision. The whole
answer-rate / precision curve is kept for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Calibrator", "candidate_features", "rank", "choose_threshold", "wilson_lower",
           "DEFAULT_CALIBRATOR", "N_FEATURES", "Z"]  # fmt: skip

N_FEATURES = 4
# The hand-over threshold keeps `min_precision` one standard error below the precision
# validation measured (the Wilson score bound with z = 1): a few dozen validation questions
# prove less than a thousand do. z = 0 is the plain rule, 1.645 a one-sided 95 % bound.
Z = 1.0


def rank(fused: np.ndarray, k: int) -> np.ndarray:
    """(n, k) entry indices by descending score (ties: lower index first)."""
    k = min(k, fused.shape[1])
    if fused.shape[1] > 4 * k:
        part = np.argpartition(-fused, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(fused, part, axis=1), axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)
    return np.argsort(-fused, axis=1, kind="stable")[:, :k]


def candidate_features(fused: np.ndarray, dense_top: np.ndarray, lexical_top: np.ndarray,
                       idx: np.ndarray) -> np.ndarray:  # fmt: skip
    """(n, k, N_FEATURES) features of the candidates `idx` (n, k) of each query; `dense_top`
    and `lexical_top` (n, k): their best cosine and best raw BM25 (Scores.candidates)."""
    s = np.take_along_axis(fused, idx, axis=1)
    finite = np.where(np.isfinite(fused), fused, -np.inf)
    top1, top2 = _top_two(finite)
    top2 = np.where(np.isfinite(top2), top2, 0.0)
    best_other = np.where(s >= top1, top2, top1)
    margin = s - best_other
    lex = np.log1p(lexical_top)
    out = np.stack([s, margin, dense_top, lex], axis=2).astype(np.float64)
    return np.where(np.isfinite(out), out, 0.0)


def _top_two(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1) best and (n, 1) second best of each row (second: 0 with a single column)."""
    n = scores.shape[1]
    if n == 1:
        return scores[:, :1], np.zeros_like(scores[:, :1])
    two = np.partition(scores, n - 2, axis=1)[:, n - 2 :]  # O(n), not a sort
    return two[:, 1:2], two[:, 0:1]


@dataclass
class Calibrator:
    """P(the answer is right | features): a logistic regression on standardized features."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    fitted_on: int = 0  # validation queries (0: the defaults)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = z @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -40, 40)))

    @classmethod
    def fit(cls, features: np.ndarray, correct: np.ndarray, seed: int = 0,
            weights: np.ndarray | None = None) -> Calibrator | None:  # fmt: skip
        """Fitted on (n, N_FEATURES) features of top answers and whether each was right
        (`weights`: per query); None when the validation queries hold only one outcome."""
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(correct, dtype=int)
        if len(np.unique(y)) < 2:
            return None
        mean, scale = features.mean(axis=0), features.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        lr = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
        lr.fit((features - mean) / scale, y, sample_weight=weights)
        return cls(mean.tolist(), scale.tolist(), lr.coef_[0].tolist(),
                   float(lr.intercept_[0]), len(y))  # fmt: skip

    def to_dict(self) -> dict:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                "intercept": self.intercept, "fitted_on": self.fitted_on}  # fmt: skip

    @classmethod
    def from_dict(cls, spec: dict) -> Calibrator:
        c = cls([float(v) for v in spec["mean"]], [float(v) for v in spec["scale"]],
                [float(v) for v in spec["coef"]], float(spec["intercept"]),
                int(spec.get("fitted_on", 0)))  # fmt: skip
        if not len(c.mean) == len(c.scale) == len(c.coef) == N_FEATURES:
            raise ValueError(f"the calibration has {len(c.coef)} features, not {N_FEATURES}")
        return c


# Without validation queries (an FAQ with no paraphrases and no labelled questions): the
# calibration fitted on the shop FAQ of the tests (tests/data/faq, 40 held-out paraphrases and
# 40 questions without their entry; all-MiniLM-L6-v2), a real FAQ's, not a guess. With the
# default threshold (training.py), BANKING77 as an FAQ of one question per intent answered
# 24% of its test questions at precision 0.90 (1,000 test questions, seed 0).
DEFAULT_CALIBRATOR = Calibrator([0.5588, 0.1078, 0.5765, 0.9016], [0.1353, 0.1094, 0.1438, 0.438],
                                [-0.3316, 1.0149, 0.6917, 0.3786], 0.3833, 0)  # fmt: skip


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, min_precision: float,
                     weights: np.ndarray | None = None, z: float = Z):  # fmt: skip
    """(threshold, curve, reached): the smallest confidence at which the answered validation
    questions reach `min_precision` — their precision's Wilson lower bound (`z` standard
    errors; 0: the precision itself) does; when none does, the one of the highest bound.
    `curve`: [{"threshold", "answer_rate", "precision"}] from the most to the fewest answered.
    `weights`: what each question counts for (default 1)."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    w = np.ones(len(conf)) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(-conf, kind="stable")
    conf, ok, w = conf[order], ok[order], w[order]
    n = w.sum()
    last = np.r_[conf[1:] != conf[:-1], True]  # the last of each run of equal confidences
    answered = np.cumsum(w)[last]
    precision = np.cumsum(w * ok)[last] / answered
    bound = wilson_lower(precision, answered, z)
    cuts = conf[last]
    curve = [
        {
            "threshold": round(float(t), 4),
            "answer_rate": round(float(a / n), 4),
            "precision": round(float(p), 4),
        }
        for t, a, p in zip(cuts, answered, precision)
    ]
    curve.reverse()  # from the lowest threshold (most answered) up
    good = np.flatnonzero(bound >= min_precision)
    if len(good):
        return float(cuts[good[-1]]), curve, True
    return float(cuts[int(np.argmax(bound))]), curve, False


def wilson_lower(precision: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """The Wilson score interval's lower end of a proportion `precision` over `n` (weighted)
    trials."""
    if z <= 0:
        return precision
    z2 = z * z
    centre = precision + z2 / (2 * n)
    spread = z * np.sqrt(precision * (1 - precision) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)
