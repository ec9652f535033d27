import json

import numpy as np
import pandas as pd

from conftest import ADULT
from shipml.data.features import Encoder
from shipml.data.io import read_table
from shipml.data.schema import infer_schema


def fitted(frame, target="income"):
    s = infer_schema(frame, target)
    return s, Encoder.fit(s, s.coerce(frame, strict=False))


def test_codes_by_frequency_and_unseen_goes_to_other():
    frame = read_table(ADULT).frame
    s, enc = fitted(frame)
    j = enc.names.index("native_country")
    assert j in enc.categorical
    labels = enc.category_labels(j)
    assert labels[0] == "United-States" and labels[-1] == "(other)"  # rare countries pooled
    rows = frame.head(3).copy()
    rows["native_country"] = ["United-States", "Atlantis", None]
    X = enc.transform(s.coerce(rows))
    assert X[0, j] == 0.0
    assert X[1, j] == len(labels) - 1  # unseen -> other, not an error
    assert np.isnan(X[2, j])


def test_json_round_trip_gives_identical_matrix():
    frame = read_table(ADULT).frame
    s, enc = fitted(frame)
    again = Encoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    typed = s.coerce(frame)
    np.testing.assert_array_equal(enc.transform(typed), again.transform(typed))


def test_dates_become_parts_and_text_becomes_words():
    frame = read_table(ADULT).frame.head(400).copy()
    frame["signup"] = pd.date_range("2021-03-01", periods=400, freq="7h").astype(str)
    frame["message"] = [
        f"I work as {o} for {h} hours a week and want help with my account"
        for o, h in zip(frame["occupation"].fillna("none"), frame["hours_per_week"])
    ]
    s, enc = fitted(frame)
    assert s.column("message").kind == "text"
    assert {"signup.month", "signup.hour", "signup.days"} <= set(enc.names)
    words = [n for n in enc.names if n.startswith("message~")]
    assert "message~help" in words and len(words) <= 300
    X = enc.transform(s.coerce(frame))
    assert X[0, enc.names.index("signup.month")] == 3.0
    assert all(src == "message" for n, src in zip(enc.names, enc.sources) if n in words)
