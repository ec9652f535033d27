"""`shipml train --out-of-scope`, `predict --min-confidence`, `evaluate` and a served predict
request, on a CLINC150 slice (in-process CLI; exit codes)."""

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import shipml
from conftest import run_cli
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

from .conftest import CLINC, CLINC_TEST


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(registry args, registry folder): `intents/1` trained by the CLI, TF-IDF + linear."""
    from shipml.cli import main

    reg_dir = tmp_path_factory.mktemp("scope-registry")
    reg = ["--registry-uri", str(reg_dir)]
    with pytest.MonkeyPatch.context() as mp, pytest.raises(SystemExit) as exc:
        mp.setenv("SHIPML_FAMILIES", "linear")
        main(["train", str(CLINC), "--target", "intent", "--out-of-scope", "oos", "--mode",
              "tfidf", "--trials", "2", "--name", "intents", "--no-report", *reg])  # fmt: skip
        raise SystemExit(0)
    assert not exc.value.code
    return reg, reg_dir


def test_train_summary_shows_the_scope_decision(trained, capsys):
    reg, _ = trained
    code, out, _ = run_cli(["models", "show", "intents", *reg], capsys)
    assert code == 0 and "below confidence" in out and "in-scope acc" in out
    assert "oos_recall" in out


def test_scope_lines_show_the_threshold_table(trained):
    from shipml.cli.render import scope_lines

    _, reg_dir = trained
    lines = scope_lines(shipml.load("intents", registry=Registry(reg_dir)).scope)
    assert "out of scope" in lines[0] and "in-scope acc" in lines[1] and len(lines) == 12


def test_predict_min_confidence_and_evaluate(trained, tmp_path, capsys):
    reg, _ = trained
    test = pd.read_csv(CLINC_TEST)
    rows = tmp_path / "rows.csv"
    test[["text"]].to_csv(rows, index=False)
    shares = []
    for extra in ([], ["--min-confidence", "0.9"], ["--min-confidence", "0"]):
        out_csv = tmp_path / f"scored{len(shares)}.csv"
        code, _, err = run_cli(["predict", "intents", rows, "-o", out_csv, *extra, *reg], capsys)
        assert code == 0, err
        shares.append((pd.read_csv(out_csv)["prediction"] == "oos").mean())
    assert shares[1] > shares[0] > shares[2]
    code, out, _ = run_cli(["evaluate", "intents", "--data", CLINC_TEST, "--json", *reg], capsys)
    metrics = json.loads(out)
    assert code == 0 and 0 < metrics["oos_recall"] <= 1 and 0 < metrics["oos_f1"] <= 1
    assert metrics["in_scope_accuracy"] > 0.6


def test_bad_input_exits_2(trained, tmp_path, capsys):
    reg, _ = trained
    code, _, err = run_cli(["train", CLINC, "--target", "intent", "--out-of-scope", "nope",
                            "--name", "x", *reg], capsys)  # fmt: skip
    assert code == 2 and "'nope' is not a label of target 'intent'" in err
    assert "Traceback" not in err
    rows = tmp_path / "rows.csv"
    pd.read_csv(CLINC_TEST)[["text"]].head(3).to_csv(rows, index=False)
    code, _, err = run_cli(["predict", "intents", rows, "--min-confidence", "2", *reg], capsys)
    assert code == 2 and "min_confidence" in err


def test_served_predictions_answer_the_oos_label(trained):
    _, reg_dir = trained
    reg = Registry(reg_dir)
    key = KeyStore(reg.engine).create(f"app-{np.random.default_rng().integers(1e9)}",
                                      ["predict"])  # fmt: skip
    client = TestClient(create_app(["intents"], registry=reg, rate_per_s=1000, burst=1000))
    test = pd.read_csv(CLINC_TEST)
    res = client.post("/v1/models/intents/predict",
                      json={"records": test[["text"]].head(60).to_dict(orient="records")},
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert res.status_code == 200, res.text
    labels = [row["label"] for row in res.json()["predictions"]]
    model = shipml.load("intents", registry=reg)
    assert labels == list(model.predict(test[["text"]].head(60)))
    assert "oos" in labels
