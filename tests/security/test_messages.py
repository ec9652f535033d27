"""Smaller items of issue 13, item 6: header size (431), echoes capped, CSV formulas defused,
clear messages for bad JSON, a CSV without header, a null label and a key without `Bearer `."""

import csv
import io
import json
import socket
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import GERMAN, run_cli
from security.live import Live
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore


@pytest.fixture(scope="module")
def served(credit_model, registry_dir):
    keys = KeyStore(Registry(registry_dir).engine)
    suffix = str(time.time_ns())
    predict = {"Authorization": f"Bearer {keys.create(f'msg-{suffix}', ['predict'])}"}
    feedback = {"Authorization": f"Bearer {keys.create(f'msg-fb-{suffix}', ['feedback'])}"}
    app = create_app(["credit"], registry=Registry(registry_dir), rate_per_s=1000, burst=1000)
    return TestClient(app, raise_server_exceptions=False), predict, feedback


def _records(n: int = 2) -> list[dict]:
    return pd.read_csv(GERMAN).drop(columns="credit_risk").head(n).to_dict(orient="records")


def _prediction_id(served) -> str:
    client, predict, _ = served
    res = client.post("/v1/models/credit/predict", json={"records": _records(1)}, headers=predict)
    assert res.status_code == 200, res.text
    return res.json()["predictions"][0]["id"]


# -- (a) header size ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(credit_model, registry_dir):
    server = Live(registry_dir)
    yield server
    assert "Traceback" not in server.stop()


def _exchange(port: int, head: bytes, finish: bool = True) -> bytes:
    """Send a request head (finished by an empty line or not) on a fresh socket; the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + (b"\r\n" if finish else b""))
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_huge_headers_get_431_while_they_arrive(live):
    start = b"GET /v2/health/live HTTP/1.1\r\nHost: shipml\r\n"
    assert _exchange(live.port, start).startswith(b"HTTP/1.1 200")
    ok = start + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 4000) for i in range(5))  # 20 KB
    assert _exchange(live.port, ok).startswith(b"HTTP/1.1 200")
    # one 300 KB header, never finished: the answer comes before the end of the headers
    answer = _exchange(live.port, start + b"X-Huge: " + b"a" * 300_000, finish=False)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b'"error"' in answer and b"limit" in answer
    many = start + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 8000) for i in range(40))  # 320 KB
    answer = _exchange(live.port, many)
    assert answer.startswith(b"HTTP/1.1 431") and b"65,536 bytes in all" in answer, answer[:200]
    assert _exchange(live.port, start).startswith(b"HTTP/1.1 200")  # and the server is fine


def test_the_app_itself_refuses_huge_headers(served):
    """Under any ASGI server: one header over 16 KiB or all over 64 KiB is a 431."""
    client, predict, _ = served
    res = client.get("/v2/health/live", headers={"X-Big": "a" * 20_000})
    assert res.status_code == 431 and "16,384" in res.json()["error"]
    many = {f"X-Pad-{i}": "a" * 10_000 for i in range(8)}
    res = client.get("/v2/health/live", headers=many)
    assert res.status_code == 431 and "65,536" in res.json()["error"]
    assert client.get("/v2/health/live", headers={"X-Ok": "a" * 8000}).status_code == 200


# -- (b) echoes capped -------------------------------------------------------------------------
def test_a_megabyte_label_is_not_echoed_back(served):
    client, _, feedback = served
    label = "x" * 1_000_000
    res = client.post("/v1/feedback", json={"prediction_id": _prediction_id(served),
                                            "label": label}, headers=feedback)  # fmt: skip
    assert res.status_code == 422
    error = res.json()["error"]
    assert len(res.content) < 1000 and "xxxxx" in error and "1,000,000 characters" in error


def test_long_cells_are_not_echoed_back(served):
    client, predict, _ = served
    frame = pd.read_csv(GERMAN).drop(columns="credit_risk").head(3).astype(str)
    frame.loc[1, "credit_amount"] = "9" * 50_000 + "x"  # not a number
    res = client.post("/v1/models/credit/predict/csv", content=frame.to_csv(index=False),
                      headers={**predict, "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 422 and "credit_amount" in res.json()["error"]
    assert len(res.content) < 1000, len(res.content)
    records = _records(2)
    records[0]["purpose"] = "\ud800" + "y" * 100_000
    body = json.dumps({"records": records}).encode()
    res = client.post("/v1/models/credit/explain", content=body,
                      headers={**predict, "Content-Type": "application/json"})  # fmt: skip
    assert res.status_code == 422 and len(res.content) < 1000 and "purpose" in res.text


def test_echo_cuts_and_says_how_long():
    from shipml.echo import echo

    assert echo("short") == "'short'"
    cut = echo("z" * 10_000)
    assert len(cut) <= 200 and cut.endswith("(10,000 characters)") and cut.startswith("'zzz")
    assert echo("\ud800") == "'\\ud800'"  # repr escapes lone surrogates: always encodable


# -- (c) CSV formulas ----------------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1:A9)", "=1"]


def _formula_table() -> pd.DataFrame:
    frame = pd.read_csv(GERMAN).drop(columns="credit_risk").head(len(FORMULAS)).astype(str)
    frame["purpose"] = FORMULAS  # a categorical column of the model
    frame["note"] = FORMULAS[::-1]  # a column the model does not use, echoed as is
    frame["=cmd|' /C calc'!A0"] = "1"  # a header cell
    frame.loc[0, "credit_amount"] = "-3.5"  # a plain negative number stays a number
    return frame


def _check_defused(text: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert "'=cmd|' /C calc'!A0" in header
    purpose, note = header.index("purpose"), header.index("note")
    assert [r[purpose] for r in body] == ["'" + f for f in FORMULAS]
    assert [r[note] for r in body] == ["'" + f for f in FORMULAS[::-1]]
    assert body[0][header.index("credit_amount")] == "-3.5"
    for row in body:
        assert all(not c.startswith(("=", "+", "@", "\t", "\r")) for c in row), row


def test_defuse_follows_owasp():
    from shipml.data.formulas import defuse_cell

    for cell in ("=1+1", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\r=1", "-"):
        assert defuse_cell(cell) == "'" + cell
    for cell in ("-3.5", "+12", "-1e-3", "plain", "a=b", "", 3, None, -2.5):
        assert defuse_cell(cell) == cell  # numbers and harmless text stay as they are


def test_csv_answers_defuse_formulas(served):
    client, predict, _ = served
    res = client.post("/v1/models/credit/predict/csv", content=_formula_table().to_csv(index=False),
                      headers={**predict, "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 200, res.text
    _check_defused(res.text)


def test_cli_predict_output_defuses_formulas(credit_model, registry_dir, tmp_path, capsys):
    table = tmp_path / "in.csv"
    _formula_table().to_csv(table, index=False)
    out = tmp_path / "out.csv"
    code, _, err = run_cli(["predict", "credit", table, "-o", out, "--registry-uri", registry_dir],
                           capsys)  # fmt: skip
    assert code == 0, err
    _check_defused(out.read_text())


# -- (d) clearer messages ------------------------------------------------------------------------
def test_bad_json_says_where(served):
    client, predict, _ = served
    res = client.post("/v1/models/credit/predict", content=b'{"records": [\n  {"a": 1},\n]}',
                      headers={**predict, "Content-Type": "application/json"})  # fmt: skip
    assert res.status_code == 422
    assert res.json()["error"] == "the body is not valid JSON: Expecting value at line 3 column 1"


def test_a_csv_without_header_row_is_said_so(served):
    client, predict, _ = served
    no_header = b"".join(GERMAN.read_bytes().splitlines(keepends=True)[1:6])
    res = client.post("/v1/models/credit/predict/csv", content=no_header,
                      headers={**predict, "Content-Type": "text/csv"})  # fmt: skip
    assert res.status_code == 400
    error = res.json()["error"]
    assert "seems to have no header row: its first line looks like data ('A11', '6'" in error
    assert "add a first line with the column names" in error


def test_a_null_label_is_said_to_be_required(served):
    client, _, feedback = served
    pid = _prediction_id(served)
    for body in ({"prediction_id": pid, "label": None}, {"prediction_id": pid}):
        res = client.post("/v1/feedback", json=body, headers=feedback)
        assert res.status_code == 422
        required = "label is required: the true class or value for the prediction"
        assert res.json()["error"] == required


def test_a_key_without_bearer_is_said_how_to_send(served):
    client, predict, _ = served
    key = predict["Authorization"].removeprefix("Bearer ")
    for header in (key, f"Token {key}"):
        res = client.post("/v1/models/credit/predict", json={"records": _records(1)},
                          headers={"Authorization": header})  # fmt: skip
        assert res.status_code == 401
        assert res.json()["error"] == 'send the key as "Authorization: Bearer <key>"'
    res = client.post("/v1/models/credit/predict", json={"records": _records(1)})
    assert res.status_code == 401 and "Bearer" not in res.json()["error"]  # no key: as before
