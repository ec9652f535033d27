"""The pandas-free path for a few records gives exactly the matrix of the pandas path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GERMAN
from shipml.data.rows import FAST_MAX_ROWS, RowEncoder


def _slow(model, records):
    return model.encode(records)[1]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def test_fast_path_equals_pandas_path_on_real_rows(credit_model):
    frame = pd.read_csv(GERMAN).drop(columns=["credit_risk"])
    rows = RowEncoder(credit_model.schema, credit_model.encoder)
    assert rows.usable
    as_text = frame.astype(str)  # the same rows as a CSV gives them: every cell a string
    for source in (frame, as_text):
        for start in range(0, 640, 64):
            records = _records(source.iloc[start : start + 64])
            fast = rows.encode(records)
            assert fast is not None
            np.testing.assert_array_equal(fast, _slow(credit_model, records))


def test_unusual_cells_fall_back_to_pandas(credit_model):
    record = _records(pd.read_csv(GERMAN).drop(columns=["credit_risk"]).head(1))[0]
    rows = RowEncoder(credit_model.schema, credit_model.encoder)
    numeric = next(c.name for c in credit_model.schema.features if c.kind == "numeric")
    for value in ("$1,234", "12%", "abc", True, 10**400, [1], "inf"):
        assert rows.encode([{**record, numeric: value}]) is None
    assert rows.encode([{k: v for k, v in record.items() if k != numeric}]) is None
    assert rows.encode([record] * (FAST_MAX_ROWS + 1)) is None
    # and through the Model the slow path still names the bad cell
    with pytest.raises(Exception, match=numeric):
        credit_model.predict([{**record, numeric: "abc"}])


_cells = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.booleans(),
    st.sampled_from(
        [
            "",
            " ",
            "NA",
            "?",
            "n/a",
            "yes",
            "no",
            "0",
            "1",
            " 42 ",
            "3.0",
            "1e3",
            "A11",
            "A12",
            "A14",
            "other",
            "-",
            ".5",
        ]
    ),  # fmt: skip
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_path_never_disagrees(credit_model, data):
    """Random cells: the fast path either declines or gives the pandas path's exact matrix."""
    base = _records(pd.read_csv(GERMAN).drop(columns=["credit_risk"]).head(3))
    records = []
    for row in base:
        changed = dict(row)
        for name in data.draw(st.sets(st.sampled_from(sorted(row)), max_size=4)):
            changed[name] = data.draw(_cells)
        records.append(changed)
    fast = RowEncoder(credit_model.schema, credit_model.encoder).encode(records)
    if fast is None:
        return
    np.testing.assert_array_equal(fast, _slow(credit_model, records))


def test_model_outputs_match_predict_proba(credit_model):
    records = _records(pd.read_csv(GERMAN).drop(columns=["credit_risk"]).head(5))
    labels, proba = credit_model.outputs(records)
    slow = credit_model.predict_proba(pd.DataFrame(records))
    np.testing.assert_allclose(proba, slow.to_numpy(), rtol=0, atol=1e-12)
    assert list(labels) == list(credit_model.predict(pd.DataFrame(records)))
