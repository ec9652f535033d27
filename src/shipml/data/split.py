"""How a model is validated: k-fold cross-validation on small data, one holdout otherwise.

Classification folds are stratified; a group column keeps each group on one side; a time column
validates on the most recent rows only (the past never sees the future).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ValidationPlan", "plan_validation", "CV_MAX_ROWS"]

CV_MAX_ROWS = 5000
# A holdout with few rows of the rarest class gives a noisy score that a search overfits:
# cross-validate instead while that class has fewer rows than this (up to RARE_CV_MAX_ROWS).
CV_MIN_RARE_CLASS = 1000
RARE_CV_MAX_ROWS = 50_000
N_FOLDS = 5
HOLDOUT_SHARE = 0.2


@dataclass
class ValidationPlan:
    """Folds as (train_idx, valid_idx) pairs, and one sentence saying what they are."""

    kind: str  # "kfold" or "holdout"
    folds: list[tuple[np.ndarray, np.ndarray]]
    description: str

    @property
    def scored_rows(self) -> np.ndarray:
        """Rows that get an out-of-fold prediction (all rows for k-fold)."""
        return np.unique(np.concatenate([valid for _, valid in self.folds]))


def plan_validation(
    y: np.ndarray,
    task: str,
    *,
    seed: int = 0,
    groups: np.ndarray | None = None,
    times: np.ndarray | None = None,
    cv_max_rows: int = CV_MAX_ROWS,
    n_folds: int = N_FOLDS,
    holdout: bool = False,
) -> ValidationPlan:
    """Pick and build the validation folds for `y` (encoded target: class index or float).
    `holdout=True`: one holdout whatever the size (a text encoder tuned on the training rows
    must never see the validation rows).

    >>> import numpy as np
    >>> plan = plan_validation(np.array([0, 1] * 10), "binary")
    >>> plan.kind, len(plan.folds), plan.description
    ('kfold', 5, '5-fold stratified cross-validation on 20 rows')

    With a time column, the latest rows validate (here rows 0 and 1 are the most recent):

    >>> plan = plan_validation(np.arange(10.0), "regression", times=np.arange(10)[::-1])
    >>> plan.description
    'time-ordered holdout: trained on the earliest 8 of 10 rows, validated on the latest 2'
    >>> plan.folds[0][1]
    array([0, 1])
    """
    from sklearn import model_selection as ms

    n = len(y)
    classify = task != "regression"
    rows = f"{n:,} rows"
    if times is not None:
        order = np.argsort(times, kind="stable")
        cut = int(round(n * (1 - HOLDOUT_SHARE)))
        return ValidationPlan(
            "holdout",
            [(np.sort(order[:cut]), np.sort(order[cut:]))],
            f"time-ordered holdout: trained on the earliest {cut:,} of {rows}, validated on the "
            f"latest {n - cut:,}",
        )
    rare = classify and int(np.bincount(y.astype(int)).min()) < CV_MIN_RARE_CLASS
    small = not holdout and (n <= cv_max_rows or (rare and n <= RARE_CV_MAX_ROWS))
    if groups is not None:
        n_groups = len(np.unique(groups))
        if small and n_groups >= n_folds:
            splitter = (ms.StratifiedGroupKFold if classify else ms.GroupKFold)(
                n_splits=n_folds, shuffle=True, random_state=seed
            )
            folds = list(splitter.split(np.zeros(n), y, groups))
            return ValidationPlan(
                "kfold",
                folds,
                f"{n_folds}-fold grouped cross-validation on {rows} ({n_groups:,} groups; "
                "a group is never on both sides)",
            )
        splitter = ms.GroupShuffleSplit(n_splits=1, test_size=HOLDOUT_SHARE, random_state=seed)
        folds = list(splitter.split(np.zeros(n), y, groups))
        return ValidationPlan(
            "holdout", folds, f"grouped holdout of 20% of {n_groups:,} groups ({rows})"
        )
    stratify = classify and _can_stratify(y, n_folds if small else 2)
    if small:
        cls = ms.StratifiedKFold if stratify else ms.KFold
        folds = list(cls(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n), y))
        how = "stratified " if stratify else ""
        return ValidationPlan("kfold", folds, f"{n_folds}-fold {how}cross-validation on {rows}")
    idx = np.arange(n)
    train, valid = ms.train_test_split(
        idx, test_size=HOLDOUT_SHARE, random_state=seed, stratify=y if stratify else None
    )
    how = "stratified " if stratify else ""
    return ValidationPlan(
        "holdout",
        [(np.sort(train), np.sort(valid))],
        f"{how}holdout: trained on {len(train):,} of {rows}, validated on {len(valid):,}",
    )


def _can_stratify(y: np.ndarray, n_splits: int) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return bool(counts.min() >= n_splits)
