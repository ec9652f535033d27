"""Out-of-scope answers without out-of-scope rows (`reject=True`) on a CLINC150 slice."""

import numpy as np
import pandas as pd
import pytest

from .conftest import CLINC


def test_reject_without_oos_rows_answers_none(clinc_test, tmp_path):
    import shipml

    frame = pd.read_csv(CLINC)
    frame = frame[frame["intent"] != "oos"]
    model = shipml.train(frame, "intent", reject=True, max_in_scope_loss=0.05, mode="tfidf",
                         families="linear", n_trials=1, time_budget=60, progress=False,
                         name="rejecting", registry_uri=str(tmp_path), report=False)  # fmt: skip
    scope = model.scope
    assert scope["mode"] == "reject" and scope["label"] is None and scope["threshold"] > 0
    pred = model.predict(clinc_test[["text"]])
    oos = clinc_test["intent"].to_numpy() == "oos"
    rejected = np.array([p is None for p in pred])
    assert rejected[oos].mean() > rejected[~oos].mean() + 0.05  # unseen queries: less sure
    assert not any(p is None for p in model.predict(clinc_test[["text"]], min_confidence=0.0))
    m = model.evaluate(clinc_test[~oos])
    assert m["rejected_rate"] == pytest.approx(rejected[~oos].mean())
    _served_labels_are_null_when_rejected(tmp_path, clinc_test, pred)


def _served_labels_are_null_when_rejected(reg_dir, clinc_test, pred) -> None:
    from fastapi.testclient import TestClient

    from shipml.registry.store import Registry
    from shipml.serve.app import create_app
    from shipml.serve.keys import KeyStore

    reg = Registry(reg_dir)
    key = KeyStore(reg.engine).create("app-reject", ["predict"])
    client = TestClient(create_app(["rejecting"], registry=reg, rate_per_s=1000, burst=1000))
    rows = clinc_test[["text"]].head(80).to_dict(orient="records")
    res = client.post("/v1/models/rejecting/predict", json={"records": rows},
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert res.status_code == 200, res.text
    labels = [row["label"] for row in res.json()["predictions"]]
    assert labels == list(pred[:80]) and None in labels
