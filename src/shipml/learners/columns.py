"""The columns of an encoded matrix by kind, as the families that preprocess it themselves
(linear.py's design, mlp.py's inputs) start from: which are numbers, which of those had missing
values in training, and how many codes each categorical column has."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColumnKinds", "column_kinds"]


@dataclass(frozen=True)
class ColumnKinds:
    numeric: list[int]  # encoded columns that are numbers
    flagged: list[int]  # numbers that had missing values in training: they get an indicator
    categorical: list[int]
    n_codes: list[int]  # per categorical column: its largest code + 1 (0 when all missing)


def column_kinds(X: np.ndarray, categorical: list[int]) -> ColumnKinds:
    """The kinds of X's columns: `categorical` (the Encoder's integer codes), the rest numbers."""
    cats = list(categorical)
    numeric = [j for j in range(X.shape[1]) if j not in set(cats)]
    missing = np.isnan(X[:, numeric]).any(axis=0)
    flagged = [j for j, gap in zip(numeric, missing) if gap]
    n_codes = [int(np.nanmax(X[:, j])) + 1 if np.any(~np.isnan(X[:, j])) else 0 for j in cats]
    return ColumnKinds(numeric, flagged, cats, n_codes)
