"""The `shipml` command, run as users run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import GERMAN, run_cli

SHIPML = [sys.executable, "-m", "shipml"]


def run(args, capsys):
    return run_cli(args, capsys)


@pytest.fixture()
def reg(credit_model, registry_dir):
    return ["--registry-uri", str(registry_dir)]


def test_evaluate_prints_metrics_and_writes_a_report(reg, tmp_path, capsys):
    report = tmp_path / "eval.html"
    code, out, _ = run(["evaluate", "credit", "--data", GERMAN, "-o", report, *reg], capsys)
    assert code == 0
    assert "roc_auc" in out and "report:" in out
    assert report.is_file()
    code, out, _ = run(["evaluate", "credit/1", "--data", GERMAN, "--json", "-o", report, *reg],
                       capsys)  # fmt: skip
    assert json.loads(out)["n_rows"] == 1000


def test_predict_writes_labels_and_probabilities(reg, tmp_path, capsys):
    out_csv = tmp_path / "scored.csv"
    code, out, _ = run(["predict", "credit", GERMAN, "-o", out_csv, *reg], capsys)
    assert code == 0 and "wrote 1,000 rows" in out
    scored = pd.read_csv(out_csv)
    assert {"prediction", "probability_1", "probability_2"} <= set(scored.columns)
    assert len(scored) == 1000 and set(scored["prediction"]) <= {1, 2}
    assert ((scored["probability_1"] + scored["probability_2"]) - 1).abs().max() < 1e-5


def test_explain_shows_reasons(reg, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    pd.read_csv(GERMAN).head(3).to_csv(rows, index=False)
    code, out, _ = run(["explain", "credit", "--data", rows, "--rows", "2", "--top", "3", *reg],
                       capsys)  # fmt: skip
    assert code == 0 and "row 1: prediction" in out and "row 3" not in out
    code, out, _ = run(["explain", "credit", "--data", rows, "--json", *reg], capsys)
    records = json.loads(out)
    assert len(records) == 3 and len(records[0]["reasons"]) == 5


def test_models_list_show_promote_rollback_report(reg, capsys):
    code, out, _ = run(["models", "list", *reg], capsys)
    assert code == 0 and "credit" in out
    code, out, _ = run(["models", "show", "credit", *reg], capsys)
    assert "checking_status" in out and "categorical" in out and "data sha256" in out
    assert run(["models", "promote", "credit", "1", "--alias", "staging", *reg], capsys)[0] == 0
    code, out, _ = run(["report", "credit@staging", *reg], capsys)
    assert code == 0 and Path(out.strip()).name == "report.html"
    code, _, err = run(["models", "rollback", "credit", "--alias", "staging", *reg], capsys)
    assert code == 2 and "no earlier version" in err


def test_train_command_end_to_end(tmp_path, capsys):
    data = tmp_path / "loans.csv"
    pd.read_csv(GERMAN).head(400).to_csv(data, index=False)
    code, out, err = run(["train", data, "--target", "credit_risk", "--time-budget", "10",
                          "--trials", "2", "--registry-uri", tmp_path / "r"], capsys)  # fmt: skip
    assert code == 0, err
    assert "registered loans/1" in out and "5-fold stratified" in out and "report:" in out


def _cli(*args, env=None):
    return subprocess.run([*SHIPML, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nope.csv", "--target", "y"], "file not found"),
        (["train", GERMAN, "--target", "credit_risc"], "Did you mean 'credit_risk'"),
        (["predict", "ghost", GERMAN], "no model named 'ghost'"),
        (["train", GERMAN, "--target", "credit_risk", "--kind", "oops"], "COLUMN=KIND"),
    ],
)
def test_user_errors_are_one_line_exit_2_no_traceback(tmp_path, args, message):
    res = _cli(*args, "--registry-uri", tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().startswith("error:")


def test_debug_shows_the_traceback(tmp_path):
    res = _cli("predict", "ghost", GERMAN, "--registry-uri", tmp_path, "--debug")
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_prediction_input_errors_name_the_column(reg, tmp_path):
    bad = pd.read_csv(GERMAN).head(5).drop(columns="age_years")
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    res = _cli("predict", "credit", path, *reg)
    assert res.returncode == 2 and "'age_years' (numeric)" in res.stderr


def test_usage_errors_exit_2():
    res = _cli("train")
    assert res.returncode == 2 and "Missing argument" in res.stderr
