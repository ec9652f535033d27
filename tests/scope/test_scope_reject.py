"""Out-of-scope answers without out-of-scope rows (`reject=True`) on a CLINC150 slice."""

import numpy as np
import pandas as pd
import pytest

from .conftest import CLINC


def test_reject_without_oos_rows_answers_none(clinc_test):
    import shipml

    frame = pd.read_csv(CLINC)
    frame = frame[frame["intent"] != "oos"]
    model = shipml.train(frame, "intent", reject=True, max_in_scope_loss=0.05, mode="tfidf",
                         families="linear", n_trials=1, time_budget=60, progress=False)  # fmt: skip
    scope = model.scope
    assert scope["mode"] == "reject" and scope["label"] is None and scope["threshold"] > 0
    pred = model.predict(clinc_test[["text"]])
    oos = clinc_test["intent"].to_numpy() == "oos"
    rejected = np.array([p is None for p in pred])
    assert rejected[oos].mean() > rejected[~oos].mean() + 0.05  # unseen queries: less sure
    assert not any(p is None for p in model.predict(clinc_test[["text"]], min_confidence=0.0))
    m = model.evaluate(clinc_test[~oos])
    assert m["rejected_rate"] == pytest.approx(rejected[~oos].mean())
