"""`shipml keys` and `shipml serve` as users run them: a real uvicorn in a subprocess."""

import json
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from conftest import GERMAN, run_cli, start_server

run = run_cli


def test_keys_create_list_revoke(registry_dir, credit_model, capsys):
    reg = ["--registry-uri", registry_dir]
    code, out, _ = run(["keys", "create", "--name", "cli-app", "--scope", "predict", *reg], capsys)
    assert code == 0
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("shipml_")
    code, out, _ = run(["keys", "list", *reg], capsys)
    assert "cli-app" in out and "active" in out and secret not in out
    assert run(["keys", "revoke", "cli-app", *reg], capsys)[0] == 0
    code, _, err = run(["keys", "revoke", "cli-app", *reg], capsys)
    assert code == 2 and "error:" in err


@pytest.mark.slow
def test_serve_two_workers_end_to_end(registry_dir, credit_model, capsys):
    reg = ["--registry-uri", registry_dir]
    _, out, _ = run(["keys", "create", "--name", "e2e", "--scope", "predict", *reg], capsys)
    key = out.strip().splitlines()[-1]
    proc, base = start_server(registry_dir, "credit", workers=2)
    try:
        records = pd.read_csv(GERMAN).drop(columns="credit_risk").head(3).to_dict("records")
        res = httpx.post(f"{base}/v1/models/credit/predict", json={"records": records},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
        assert res.status_code == 200, res.text
        assert len(res.json()["predictions"]) == 3
        res = httpx.post(f"{base}/v1/models/credit/predict", json={"records": records}, timeout=30)
        assert res.status_code == 401 and res.json() == {"error": res.json()["error"]}
        for _ in range(8):  # spread over both workers
            httpx.post(f"{base}/v1/models/credit/predict", json={"records": records},
                       headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
        # any worker answers the scrape with the sum over both processes
        for _ in range(4):
            text = httpx.get(f"{base}/metrics", timeout=30).text
            predicted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("shipml_predictions_total{") and 'model="credit"' in line
            )
            assert predicted == 27
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err
    access = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert sum(1 for a in access if a["route"] == "/v1/models/{name}/predict") == 10
    assert key not in err.decode()


def test_serve_unknown_model_is_one_line(registry_dir, credit_model):
    args = [sys.executable, "-m", "shipml", "serve", "nope", "--registry-uri", str(registry_dir)]
    res = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no model named 'nope'" in res.stderr
    assert "Traceback" not in res.stderr
