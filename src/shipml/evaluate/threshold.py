"""The decision threshold of a binary classifier: which metrics depend on it, how each label
metric moves with it, and the threshold the labels use.

A row is labelled positive when P(positive) >= threshold. shipml's probabilities are calibrated
to the real class balance (class weights are undone by a prior offset), so 0.5 is the most
likely class (argmax). Ranking and probability metrics (ROC AUC, log loss, PR AUC) do not
depend on the threshold: for them the labels stay at 0.5 (AutoGluon's rule too, which
calibrates only metrics that score labels). For a label metric (accuracy, F1, balanced
accuracy, MCC) the threshold that maximizes it on the out-of-fold validation predictions is
used. Two guards keep it from fitting the noise of a small validation set: the curve is
smoothed and the middle of its plateau is taken; and where 0.5 is the natural answer
(accuracy, MCC, F1 macro: 0.5 maximizes expected accuracy on calibrated probabilities), the
choice must hold up out of sample, beating 0.5 on the rows a bootstrap resample left out in
90 % of resamples, or 0.5 is kept. F1 and balanced accuracy get no such fallback: on
calibrated probabilities they peak below 0.5 (at half the best F1, Lipton, Elkan and
Naryanaswamy 2014; at the share of positives), so 0.5 is never a neutral choice for them.

Example (the positives are all above 0.3, one negative is at 0.4)::

    >>> import numpy as np
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> p = np.array([0.1, 0.2, 0.4, 0.1, 0.35, 0.45, 0.6, 0.9])
    >>> c = threshold_curve(y, p, np.array([0.3, 0.5]))
    >>> c["f1"].round(3).tolist(), c["accuracy"].tolist()
    ([0.889, 0.667], [0.875, 0.75])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["GRID", "LABEL_METRICS", "Decision", "choose_threshold", "threshold_curve"]

#: Metrics that score labels, so the threshold changes them (binary tasks).
LABEL_METRICS = ("accuracy", "balanced_accuracy", "f1", "f1_macro", "mcc")
#: Candidate thresholds: 0.005 to 0.995 by 0.005 (rare classes need the low end).
GRID = np.round(np.arange(1, 200) / 200, 3)
ARGMAX = 0.5
_SMOOTH = 5  # grid points averaged (±0.01)
_RESAMPLES = 50
_MAX_BAG = 100_000  # rows drawn per resample (the check stays fast on big tables)
# F1 and balanced accuracy peak below 0.5 on calibrated probabilities (at F1*/2 and at the
# share of positives): 0.5 is no neutral fallback for them, the smoothed search is used as is.
_PEAK_BELOW_HALF = ("f1", "balanced_accuracy")
_CONFIDENCE = 0.9  # share of resamples in which a threshold chosen in-bag must win out-of-bag


@dataclass
class Decision:
    """The threshold, why, and the label scores at 0.5 and at the threshold (validation)."""

    threshold: float
    metric: str | None  # the metric it maximizes; None: 0.5 kept
    reason: str
    at_argmax: dict  # {"accuracy", "f1"} at 0.5
    at_threshold: dict  # {"accuracy", "f1"} at `threshold`
    best_f1: dict  # {"threshold", "accuracy", "f1"}: where F1 would peak (a hint)

    def to_dict(self) -> dict:
        return asdict(self)


def threshold_curve(y: np.ndarray, p: np.ndarray, grid: np.ndarray = GRID) -> dict:
    """Label metrics at each threshold of `grid` (positive when p >= t); y is 0/1.

    Keys: threshold, precision, recall, f1 (of the positive class), accuracy,
    balanced_accuracy, f1_macro, mcc; each an array like `grid`.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    pos, neg = np.sort(p[y]), np.sort(p[~y])
    tp = len(pos) - np.searchsorted(pos, grid, side="left")
    fp = len(neg) - np.searchsorted(neg, grid, side="left")
    return {"threshold": np.asarray(grid, dtype=float), **_scores(tp, fp, len(pos), len(neg))}


def _scores(tp, fp, n_pos, n_neg) -> dict:
    """Label metrics from confusion counts (arrays broadcast: thresholds or resamples)."""
    tp, fp = np.asarray(tp, dtype=float), np.asarray(fp, dtype=float)
    n_pos, n_neg = np.asarray(n_pos, dtype=float), np.asarray(n_neg, dtype=float)
    fn, tn = n_pos - tp, n_neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(n_pos > 0, tp / n_pos, 0.0)
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(tn > 0, 2 * tn / (2 * tn + fp + fn), 0.0)
        specificity = np.where(n_neg > 0, tn / n_neg, 0.0)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / denom, 0.0)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / (n_pos + n_neg),
        "balanced_accuracy": (recall + specificity) / 2,
        "f1_macro": (f1 + f1_neg) / 2,
        "mcc": mcc,
    }


def choose_threshold(y: np.ndarray, p: np.ndarray, metric: str, *, seed: int = 0) -> Decision:
    """The threshold for labels when `metric` is what the user optimizes (see module doc)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    curve = threshold_curve(y, p)
    hint = _best_f1(curve)
    if metric not in LABEL_METRICS:
        reason = (
            f"{metric} scores probabilities, not labels: labels are the most likely class "
            f"(P >= 0.5). F1 would peak at {hint['threshold']:g} (accuracy "
            f"{hint['accuracy']:.3f}, F1 {hint['f1']:.3f}): train with --metric f1, or "
            "predict with --threshold, to choose that trade"
        )
        return _decision(y, p, ARGMAX, None, reason, hint)
    t = _plateau_middle(curve[metric], len(y))
    at_t, at_half = (_point(y, p, v)[metric] for v in (t, ARGMAX))
    if metric in _PEAK_BELOW_HALF:
        reason = f"maximizes {metric} on validation: {at_t:.4f} vs {at_half:.4f} at 0.5"
        return _decision(y, p, t, metric, reason, hint)
    share = _out_of_bag_wins(y, p, metric, seed) if at_t > at_half else 0.0
    if share >= _CONFIDENCE:
        reason = (
            f"maximizes {metric} on validation: {at_t:.4f} vs {at_half:.4f} at 0.5 (and "
            f"beats 0.5 out of sample in {share:.0%} of resamples)"
        )
        return _decision(y, p, t, metric, reason, hint)
    found = f"the best on validation ({t:g}: {at_t:.4f} vs {at_half:.4f} at 0.5)"
    found += (
        f" beat it out of sample in only {share:.0%} of resamples"
        if at_t > at_half
        else " does not beat it"
    )
    reason = f"{metric}: no threshold beats 0.5 beyond noise: {found}"
    return _decision(y, p, ARGMAX, None, reason, hint)


def _decision(y, p, t: float, metric, reason: str, hint: dict) -> Decision:
    half, at = _point(y, p, ARGMAX), _point(y, p, t)
    if at["accuracy"] < half["accuracy"] and at["f1"] < half["f1"]:
        reason += (
            f"; accuracy ({at['accuracy']:.3f} vs {half['accuracy']:.3f}) and F1 "
            f"({at['f1']:.3f} vs {half['f1']:.3f}) are both lower than at 0.5"
        )
    return Decision(
        threshold=float(t),
        metric=metric,
        reason=reason,
        at_argmax={k: float(half[k]) for k in ("accuracy", "f1")},
        at_threshold={k: float(at[k]) for k in ("accuracy", "f1")},
        best_f1=hint,
    )


def _point(y, p, t: float) -> dict:
    return {k: float(v[0]) for k, v in threshold_curve(y, p, np.array([t])).items()}


def _best_f1(curve: dict) -> dict:
    i = int(np.searchsorted(GRID, _plateau_middle(curve["f1"], 0)))
    return {k: float(curve[k][i]) for k in ("threshold", "accuracy", "f1")}


def _plateau_middle(values: np.ndarray, n_rows: int) -> float:
    """The middle of the plateau around the smoothed curve's peak (within one row's worth)."""
    smooth = _smooth(values)
    best = int(np.argmax(smooth))
    level = smooth[best] - (1.0 / n_rows if n_rows else 1e-9)
    lo = hi = best
    while lo > 0 and smooth[lo - 1] >= level:
        lo -= 1
    while hi < len(smooth) - 1 and smooth[hi + 1] >= level:
        hi += 1
    return float(GRID[(lo + hi) // 2])


def _smooth(values: np.ndarray) -> np.ndarray:
    padded = np.pad(values, _SMOOTH // 2, mode="edge")
    return np.convolve(padded, np.ones(_SMOOTH) / _SMOOTH, mode="valid")


def _out_of_bag_wins(y, p, metric: str, seed: int) -> float:
    """Share of bootstrap resamples where the threshold chosen on the resample beats 0.5 on
    the rows the resample left out: the choice itself is validated, so
    the best of many thresholds on noise (which always wins on the rows it was picked on) does
    not pass."""
    rng = np.random.default_rng(seed)
    n = len(y)
    wins = 0
    for _ in range(_RESAMPLES):
        bag = rng.integers(0, n, size=min(n, _MAX_BAG))
        out = np.ones(n, dtype=bool)
        out[bag] = False
        if not out.any():
            continue
        t = _plateau_middle(threshold_curve(y[bag], p[bag])[metric], len(bag))
        held = threshold_curve(y[out], p[out], np.array([ARGMAX, t]))[metric]
        wins += held[1] > held[0]
    return wins / _RESAMPLES
