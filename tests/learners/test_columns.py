"""The column kinds the linear design and the MLP's inputs both start from (learners/columns.py):
numbers, the numbers that need a missing-value indicator, and each categorical column's codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import GERMAN


def test_column_kinds_of_a_matrix_with_gaps():
    from shipml.learners.columns import column_kinds

    nan = np.nan
    X = np.array(
        [  # number, number with a gap, codes 0-3, all-missing codes, number
            [1.0, 2.0, 0.0, nan, 5.0],
            [2.0, nan, 3.0, nan, 6.0],
            [3.0, 4.0, nan, nan, 7.0],
        ]
    )
    kinds = column_kinds(X, [2, 3])
    assert kinds.numeric == [0, 1, 4] and kinds.categorical == [2, 3]
    assert kinds.flagged == [1]  # a missing code is code 0's business, not an indicator's
    assert kinds.n_codes == [4, 0]


def test_linear_design_and_mlp_inputs_read_the_same_kinds():
    from shipml.learners.columns import column_kinds
    from shipml.learners.linear import LinearDesign
    from shipml.learners.mlp import _Prep
    from shipml.training import prepare

    frame = pd.read_csv(GERMAN)
    rng = np.random.default_rng(0)
    frame.loc[rng.choice(len(frame), 40, replace=False), "duration_months"] = np.nan  # real gaps
    _, _, _, data, _ = prepare(frame, "credit_risk")
    kinds = column_kinds(data.X, data.categorical)
    assert kinds.categorical and len(kinds.numeric) >= 3 and len(kinds.flagged) == 1
    design, prep = LinearDesign.fit(data.X, data.categorical), _Prep.fit(data.X, data.categorical)
    assert design.numeric == prep.numeric == kinds.numeric
    assert design.flagged == prep.flagged == kinds.flagged
    assert design.n_codes == kinds.n_codes
    assert prep.cardinalities == [n + 1 for n in kinds.n_codes]  # code 0: missing or unseen
