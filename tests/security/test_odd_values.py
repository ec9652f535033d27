"""One rule for odd values on every route (issue 13, item 4; the rule is in data/cells.py).

`Infinity`, `-Infinity`, `1e309` (a number JSON parsing turns into infinity) and a lone
surrogate ("\\ud800") used to get 200 on predict (stored as null), 400 on v2 and a 500 on
/explain, after which the kept-alive connection was reset. Now each is a 422 naming the record
and field on JSON predict and explain, the row and column of a CSV, the input of v2; NaN stays
the missing value everywhere (as null), and no answer fails to encode.
"""

import http.client
import json
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import GERMAN
from security.live import Live
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

NUMBER, CATEGORY = "credit_amount", "purpose"  # a numeric and a categorical column of the model
ODD = {  # JSON text of the value -> (column it goes in, words the error must have)
    "Infinity": (NUMBER, "expected a finite number, got Infinity"),
    "-Infinity": (NUMBER, "expected a finite number, got -Infinity"),
    "1e309": (NUMBER, "expected a finite number, got Infinity"),
    '"\\ud800"': (CATEGORY, "not valid Unicode (a lone surrogate)"),
}
V2_WORDS = {NUMBER: "is not a finite number", CATEGORY: "is not valid UTF-8 text"}
CSV_ODD = ["inf", "Infinity", "-inf", "-Infinity", "1e309", "+INF"]
_MARK = '"__odd__"'


def _records(n: int = 3) -> list[dict]:
    return pd.read_csv(GERMAN).drop(columns="credit_risk").head(n).to_dict(orient="records")


def _json_body(column: str, literal: str, n: int = 3) -> bytes:
    """A predict/explain body whose records[1][column] is `literal`, written as JSON text."""
    records = _records(n)
    records[1][column] = "__odd__"
    return json.dumps({"records": records}).replace(_MARK, literal).encode()


def _v2_body(column: str, literal: str, credit_model, n: int = 3) -> bytes:
    frame = pd.read_csv(GERMAN).head(n)
    inputs = []
    for col in credit_model.schema.features:
        numeric = col.kind == "numeric"
        values = frame[col.name].astype(float if numeric else str).tolist()
        if col.name == column:
            values[1] = "__odd__"
        inputs.append({"name": col.name, "shape": [n], "datatype": "FP64" if numeric else "BYTES",
                       "data": values})  # fmt: skip
    return json.dumps({"inputs": inputs}).replace(_MARK, literal).encode()


def _csv_body(value: str, n: int = 3) -> bytes:
    frame = pd.read_csv(GERMAN).drop(columns="credit_risk").head(n).astype(str)
    frame.loc[1, NUMBER] = value
    return frame.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def client(credit_model, registry_dir):
    key = KeyStore(Registry(registry_dir).engine).create(f"odd-{time.time_ns()}", ["predict"])
    app = create_app(["credit"], registry=Registry(registry_dir), rate_per_s=1000, burst=1000)
    return TestClient(app, raise_server_exceptions=False), {"Authorization": f"Bearer {key}"}


def _post(client, path: str, body: bytes, kind: str = "application/json"):
    http, headers = client
    return http.post(path, content=body, headers={**headers, "Content-Type": kind})


@pytest.mark.parametrize("route", ["predict", "explain"])
@pytest.mark.parametrize("literal", list(ODD))
def test_json_routes_refuse_odd_values_naming_the_field(client, route, literal):
    column, words = ODD[literal]
    res = _post(client, f"/v1/models/credit/{route}", _json_body(column, literal))
    assert res.status_code == 422, res.text
    assert res.json()["error"].startswith(f"records[1].{column}: "), res.text
    assert words in res.json()["error"]
    good = _post(client, f"/v1/models/credit/{route}", _json_body(column, "null"))
    assert good.status_code == 200


@pytest.mark.parametrize("literal", list(ODD))
def test_v2_refuses_odd_values_naming_the_input(client, literal, credit_model):
    column, _ = ODD[literal]
    res = _post(client, "/v2/models/credit/infer", _v2_body(column, literal, credit_model))
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error.startswith(f"input '{column}'") and V2_WORDS[column] in error, error
    assert "row 2" in error or "value 2" in error


@pytest.mark.parametrize("value", CSV_ODD)
def test_csv_refuses_infinity_naming_row_and_column(client, value):
    res = _post(client, "/v1/models/credit/predict/csv", _csv_body(value), "text/csv")
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error.startswith(f"row 2, column '{NUMBER}': expected a finite number, got "), error
    assert repr(value) in error


def test_nan_and_empty_cells_are_missing_values_on_every_route(client, credit_model):
    """NaN (what pandas and tritonclient write for a missing float) means missing, as null."""
    for route in ("predict", "explain"):
        null = _post(client, f"/v1/models/credit/{route}", _json_body(NUMBER, "null"))
        nan = _post(client, f"/v1/models/credit/{route}", _json_body(NUMBER, "NaN"))
        assert null.status_code == nan.status_code == 200, nan.text
        key = "predictions" if route == "predict" else "explanations"
        strip = [{k: v for k, v in p.items() if k != "id"} for p in null.json()[key]]
        assert strip == [{k: v for k, v in p.items() if k != "id"} for p in nan.json()[key]]
    res = _post(client, "/v2/models/credit/infer", _v2_body(NUMBER, "NaN", credit_model))
    assert res.status_code == 200, res.text
    for cell in ("", "NaN", "NA"):
        res = _post(client, "/v1/models/credit/predict/csv", _csv_body(cell), "text/csv")
        assert res.status_code == 200, (cell, res.text)


WRONG_TYPES = [  # (column, JSON text, words)
    (NUMBER, "true", "expected a number, got true"),
    (NUMBER, "[1, 2]", "expected a number, got a list"),
    (NUMBER, '{"a": 1}', "expected a number, got an object"),
    (CATEGORY, "[1]", "expected text (categorical), got a list"),
    (CATEGORY, '{"x": "A43"}', "expected text (categorical), got an object"),
    (CATEGORY, "43", "got the number 43; send it as text ('43')"),
    (CATEGORY, "false", "expected text (categorical), got false"),
    (NUMBER, "1" * 400, "expected a finite number"),  # an integer too large for a float
]


@pytest.mark.parametrize("route", ["predict", "explain"])
@pytest.mark.parametrize("column,literal,words", WRONG_TYPES)
def test_values_of_the_wrong_type_are_refused(client, route, column, literal, words):
    res = _post(client, f"/v1/models/credit/{route}", _json_body(column, literal))
    assert res.status_code == 422, res.text
    assert res.json()["error"].startswith(f"records[1].{column}: ") and words in res.text, res.text


def test_text_forms_of_numbers_still_work(client, credit_model):
    records = _records(3)
    records[1][NUMBER] = "1169"
    res = client[0].post("/v1/models/credit/predict", json={"records": records},
                         headers=client[1])  # fmt: skip
    assert res.status_code == 200, res.text
    expected = credit_model.predict(_records(3))
    assert [p["label"] for p in res.json()["predictions"]][0] == expected[0]


@pytest.fixture(scope="module")
def live(credit_model, registry_dir):
    server = Live(registry_dir)
    yield server
    assert "Traceback" not in server.stop()


def test_one_kept_alive_connection_survives_every_odd_value(live, credit_model):
    """On a real server: each odd value on each route is a 422 on the same connection, which
    then still answers a good request (it used to be a 500 on /explain, then a reset)."""
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    headers = {**live.headers, "Content-Type": "application/json"}
    conn.request("GET", "/v2/health/live")
    conn.getresponse().read()
    sock = conn.sock
    requests = []
    for literal, (column, _) in ODD.items():
        requests.append(("/v1/models/credit/explain", _json_body(column, literal), headers))
        requests.append(("/v1/models/credit/predict", _json_body(column, literal), headers))
        requests.append(("/v2/models/credit/infer", _v2_body(column, literal, credit_model),
                         headers))  # fmt: skip
    requests.append(("/v1/models/credit/predict/csv", _csv_body("inf"),
                     {**live.headers, "Content-Type": "text/csv"}))  # fmt: skip
    for path, body, head in requests:
        conn.request("POST", path, body=body, headers=head)
        res = conn.getresponse()
        payload = json.loads(res.read())
        assert res.status == 422, (path, res.status, payload)
        assert res.getheader("connection") != "close" and conn.sock is sock, path
    conn.request("POST", "/v1/models/credit/explain", body=_json_body(NUMBER, "null"),
                 headers=headers)  # fmt: skip
    res = conn.getresponse()
    assert res.status == 200 and len(json.loads(res.read())["explanations"]) == 3
    assert conn.sock is sock
    conn.close()


def test_a_long_digit_cell_is_checked_in_linear_time():
    """`\\d+\\.?\\d*` backtracked quadratically: a 50,000-digit cell ending in a letter held a
    CSV request for 97 s. 400,000 digits would take hours that way; linear, milliseconds."""
    import subprocess
    import sys

    code = (
        "from shipml.data.cells import cell_problem, is_plain_number\n"
        "assert cell_problem('numeric', '9' * 400_000 + 'e') is None\n"
        "assert not is_plain_number('9' * 400_000 + 'x')\n"  # the row encoder's check
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
