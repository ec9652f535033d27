"""One predictions table: `shipml predict` and the server's CSV route answer the same rows."""

import csv
import io

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from conftest import GERMAN, run_cli
from shipml.predictions import predictions_table
from shipml.registry.store import Registry
from shipml.serve.app import create_app


def test_cli_and_csv_route_give_the_same_table(credit_model, registry_dir, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    frame = pd.read_csv(GERMAN).drop(columns="credit_risk").iloc[200:260]
    frame.to_csv(rows, index=False)
    code, cli_text, err = run_cli(
        ["predict", "credit", rows, "--registry-uri", registry_dir], capsys
    )
    assert code == 0, err
    client = TestClient(create_app(["credit"], registry=Registry(registry_dir), auth=False))
    res = client.post("/v1/models/credit/predict/csv", content=rows.read_bytes(),
                      headers={"Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 200, res.text

    cli = list(csv.reader(io.StringIO(cli_text)))
    server = list(csv.reader(io.StringIO(res.text)))
    assert server[0][0] == "prediction_id" and len({r[0] for r in server[1:]}) == 60
    # the same cells, as text, once the server's logged ids are set aside
    assert [r[1:] for r in server] == cli
    assert cli[0][-3:] == ["prediction", "probability_1", "probability_2"]
    # probabilities rounded to 6 decimals in both, and what the model says
    p2 = np.array([float(r[-1]) for r in cli[1:]])
    np.testing.assert_array_equal(p2, np.round(p2, 6))
    np.testing.assert_allclose(p2, credit_model.predict_proba(frame)[2], atol=5e-7)
    assert [int(r[-3]) for r in cli[1:]] == credit_model.predict(frame).tolist()


def test_predictions_table_columns_rounding_and_formulas():
    frame = pd.DataFrame({"name": ["=HYPERLINK(1)", "Ada"], "age": [31, 44]})
    proba = np.array([[0.123456789, 0.876543211], [0.5, 0.5]])
    out = predictions_table(frame, ["no", "yes"], proba, ["no", "yes"], ids=["a", "b"])
    assert list(out.columns) == ["prediction_id", "name", "age", "prediction",
                                 "probability_no", "probability_yes"]  # fmt: skip
    assert out["probability_no"].tolist() == [0.123457, 0.5]
    assert not out["name"].iloc[0].startswith("=")  # defused for spreadsheets
    assert frame["name"].iloc[0] == "=HYPERLINK(1)"  # the caller's frame is left alone
    values = predictions_table(frame, np.array([1.23456789, 2.0]))
    assert list(values.columns) == ["name", "age", "prediction"]
    assert values["prediction"].tolist() == [1.23456789, 2.0]  # a value is not rounded
