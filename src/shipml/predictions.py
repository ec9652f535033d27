"""The table of predictions that `shipml predict` writes and the server's CSV route answers.

The input rows as they came, then ``prediction`` (the label, or the value of a regression), then
one ``probability_<class>`` column per class rounded to 6 decimals (what every JSON answer
gives too). The server puts the ``prediction_id`` it logged first, for feedback. Cells that a
spreadsheet would run as formulas are defused (data/formulas.py): the table is ready to write
as CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PROBABILITY_DECIMALS", "predictions_table"]

PROBABILITY_DECIMALS = 6


def predictions_table(
    frame: pd.DataFrame,
    predictions: Sequence,
    proba: np.ndarray | None = None,
    classes: Sequence = (),
    *,
    ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """`frame` with its predictions added; `proba` (n, k) follows `classes` (None: no
    probability columns); `ids`, when given, become the first column ``prediction_id``."""
    from shipml.data.formulas import defuse

    out = frame[[c for c in frame.columns if not _holds_bytes(frame[c])]].copy()
    if ids is not None:
        out.insert(0, "prediction_id", list(ids))
    out["prediction"] = list(predictions)
    if proba is not None:
        rounded = np.round(np.asarray(proba, dtype=float), PROBABILITY_DECIMALS)
        for j, cls in enumerate(classes):
            out[f"probability_{cls}"] = rounded[:, j]
    return defuse(out)


def _holds_bytes(values: pd.Series) -> bool:
    """A column of file contents (images read from a zip or uploaded): not written back; the
    table's name column says which file a row is."""
    return values.dtype == object and any(isinstance(v, bytes) for v in values.head(50))
