"""The Open Inference Protocol (v2) codec against the real tritonclient[http] library: request
bodies come from the client's own body builder, responses are read with its own parser."""

from __future__ import annotations

import contextlib
import json
import random
import re
import struct

import hypothesis
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as th

from conftest import GERMAN
from shipml.data.io import read_table
from shipml.data.schema import Column, Schema, infer_schema
from shipml.errors import ShipmlError
from shipml.serve import v2
from shipml.serve.v2 import V2Error, build_infer_response, parse_infer_request

Client = th.InferenceServerClient  # generate_request_body / parse_response_body are static


# -- fixtures and helpers ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def german_frame() -> pd.DataFrame:
    return read_table(GERMAN).frame


@pytest.fixture(scope="module")
def schema(german_frame) -> Schema:
    return infer_schema(german_frame, "credit_risk")


@pytest.fixture(scope="module")
def rows(german_frame, schema) -> pd.DataFrame:
    """Seven real rows, with a few values blanked out to carry missing values."""
    rows = german_frame.head(7).reset_index(drop=True).copy()
    rows["credit_amount"] = rows["credit_amount"].astype(float)
    rows.loc[2, "credit_amount"] = np.nan
    rows["purpose"] = rows["purpose"].astype(object)
    rows.loc[4, "purpose"] = None
    return rows


@pytest.fixture(scope="module")
def mixed_schema() -> Schema:
    """A regression schema with every feature kind (the German data has only two)."""
    cols = [
        Column("x", "numeric"),
        Column("flag", "boolean"),
        Column("city", "categorical"),
        Column("day", "datetime", date_format="%Y-%m-%d"),
        Column("note", "text"),
        Column("row_id", "id", note="identifier: a distinct value per row"),
    ]
    return Schema(cols, target="y", task="regression")


def _array(values: pd.Series, kind: str, numeric_dtype=np.float64) -> tuple[np.ndarray, str]:
    if kind in ("numeric", "boolean"):
        arr = values.to_numpy(dtype=numeric_dtype)
        return arr, {np.float64: "FP64", np.float32: "FP32", np.int64: "INT64"}[numeric_dtype]
    return np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object), "BYTES"


def _inputs(rows: pd.DataFrame, schema: Schema, *, binary=True, column_shape=False) -> list:
    inputs = []
    for i, col in enumerate(schema.features):
        arr, dt = _array(rows[col.name], col.kind)
        if column_shape:
            arr = arr.reshape(-1, 1)
        inp = th.InferInput(col.name, list(arr.shape), dt)
        # binary may be a bool or "mixed": alternate binary and JSON inputs
        inp.set_data_from_numpy(arr, binary_data=(i % 2 == 0) if binary == "mixed" else binary)
        inputs.append(inp)
    return inputs


def _body(inputs, outputs=None, **kwargs) -> tuple[bytes, int | None]:
    body, json_size = Client.generate_request_body(inputs, outputs=outputs, **kwargs)
    return body, json_size


def _respond(request, outputs, *, name="credit", version="1"):
    body, headers = build_infer_response(name, version, request, outputs)
    length = headers.get("Inference-Header-Content-Length")
    result = Client.parse_response_body(body, header_length=None if length is None else int(length))
    return result, headers


def _fake_outputs(n: int) -> dict:
    rng = np.random.default_rng(0)
    p = rng.random(n)
    proba = pd.DataFrame({1: 1 - p, 2: p})
    return {"label": np.where(p > 0.5, 2, 1), "probabilities": proba}


def _expected_frame(rows: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    return schema.coerce(rows, strict=True)


# -- requests from tritonclient ----------------------------------------------------------------
@pytest.mark.parametrize("binary", [True, False, "mixed"])
def test_client_request_decodes_to_the_same_rows(rows, schema, binary):
    body, json_size = _body(_inputs(rows, schema, binary=binary), request_id="req-7")
    assert (json_size is None) == (binary is False)
    request = parse_infer_request(body, json_size, schema)
    assert request.id == "req-7"
    assert request.rows == len(rows)
    assert list(request.frame.columns) == [c.name for c in schema.features]
    for col in schema.features:
        expected = np.float64 if col.kind == "numeric" else object
        assert request.frame[col.name].dtype == expected, col.name
    assert np.isnan(request.frame.loc[2, "credit_amount"])
    assert request.frame.loc[4, "purpose"] is None
    pd.testing.assert_frame_equal(
        schema.coerce(request.frame), _expected_frame(rows, schema), check_dtype=False
    )


def test_column_shaped_inputs_and_other_numeric_types(rows, schema):
    inputs = _inputs(rows, schema, column_shape=True)
    ages = rows["age_years"].to_numpy(np.int64)
    duration = rows["duration_months"].to_numpy(np.float32)
    for name, arr, dt, binary in [
        ("age_years", ages, "INT64", False),
        ("duration_months", duration, "FP32", True),
    ]:
        inp = th.InferInput(name, [len(arr)], dt)
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs = [i for i in inputs if i.name() != name] + [inp]
    body, json_size = _body(inputs)
    request = parse_infer_request(body, json_size, schema)
    np.testing.assert_array_equal(request.frame["age_years"], ages.astype(float))
    np.testing.assert_array_equal(request.frame["duration_months"], duration.astype(float))
    assert request.frame["purpose"].tolist()[:2] == ["A43", "A43"]


def test_every_column_kind_and_non_ascii_text(mixed_schema):
    data = {
        "x": (np.array([1.5, np.nan, -2.0]), "FP64"),
        "flag": (np.array([True, False, True]), "BOOL"),
        "city": (np.array(["Zürich", "", "東京"], dtype=object), "BYTES"),
        "day": (np.array(["2024-01-31", "2024-02-01", ""], dtype=object), "BYTES"),
        "note": (np.array(["late again, très déçu", "ok", "fine"], dtype=object), "BYTES"),
    }
    for binary in (True, False):
        inputs = []
        for name, (arr, dt) in data.items():
            inp = th.InferInput(name, [3], dt)
            inp.set_data_from_numpy(arr, binary_data=binary)
            inputs.append(inp)
        body, json_size = _body(inputs)
        frame = parse_infer_request(body, json_size, mixed_schema).frame
        np.testing.assert_array_equal(frame["x"], [1.5, np.nan, -2.0])
        np.testing.assert_array_equal(frame["flag"], [1.0, 0.0, 1.0])
        assert frame["city"].tolist() == ["Zürich", None, "東京"]
        typed = mixed_schema.coerce(frame)
        assert typed["day"].iloc[0] == pd.Timestamp("2024-01-31") and pd.isna(typed["day"].iloc[2])
        assert typed["flag"].tolist() == [1.0, 0.0, 1.0]


def test_boolean_column_takes_numbers_with_nan_but_only_0_and_1(mixed_schema):
    doc = _mixed_doc()
    doc["inputs"][1] = {"name": "flag", "shape": [2], "datatype": "INT32", "data": [1, 0]}
    frame = parse_infer_request(json.dumps(doc).encode(), None, mixed_schema).frame
    assert frame["flag"].tolist() == [1.0, 0.0]
    doc["inputs"][1] = {"name": "flag", "shape": [2], "datatype": "FP64", "data": [None, 1.0]}
    frame = parse_infer_request(json.dumps(doc).encode(), None, mixed_schema).frame
    assert np.isnan(frame["flag"].iloc[0])
    doc["inputs"][1]["data"] = [2.0, 1.0]
    with pytest.raises(V2Error, match=r"input 'flag' is a boolean column: values must be 0 or 1"):
        parse_infer_request(json.dumps(doc).encode(), None, mixed_schema)


def test_bf16_and_fp16_binary_inputs(mixed_schema):
    doc = _mixed_doc()
    x = np.array([1.5, -3.0], dtype=np.float32)
    bf16 = (x.view(np.uint32) >> 16).astype("<u2").tobytes()  # bfloat16: upper half of FP32
    for datatype, raw in [("BF16", bf16), ("FP16", x.astype("<f2").tobytes())]:
        doc["inputs"][0] = {
            "name": "x",
            "shape": [2],
            "datatype": datatype,
            "parameters": {"binary_data_size": len(raw)},
        }
        header = json.dumps(doc).encode()
        frame = parse_infer_request(header + raw, len(header), mixed_schema).frame
        np.testing.assert_array_equal(frame["x"], [1.5, -3.0])


def test_nested_json_data_follows_the_shape(mixed_schema):
    doc = _mixed_doc()
    doc["inputs"][0] = {"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [[1.0], [2]]}
    frame = parse_infer_request(json.dumps(doc).encode(), None, mixed_schema).frame
    assert frame["x"].tolist() == [1.0, 2.0]
    doc["inputs"][0] = {"name": "x", "shape": [2], "datatype": "FP64", "data": [[1.0], [2]]}
    with pytest.raises(V2Error, match="input 'x': 'data' is nested deeper than its shape"):
        parse_infer_request(json.dumps(doc).encode(), None, mixed_schema)


# -- responses read by tritonclient ------------------------------------------------------------
def test_default_outputs_follow_binary_data_output(rows, schema):
    # no outputs listed: tritonclient asks for every output in binary
    body, json_size = _body(_inputs(rows, schema))
    request = parse_infer_request(body, json_size, schema)
    assert request.outputs == [
        v2.RequestedOutput("label", True),
        v2.RequestedOutput("probabilities", True),
    ]
    outputs = _fake_outputs(len(rows))
    result, headers = _respond(request, outputs)
    assert headers["Content-Type"] == "application/octet-stream"
    assert result.as_numpy("label").tolist() == [str(v).encode() for v in outputs["label"]]
    np.testing.assert_array_equal(
        result.as_numpy("probabilities"), outputs["probabilities"].to_numpy()
    )
    response = result.get_response()
    assert response["model_name"] == "credit" and response["model_version"] == "1"
    assert "id" not in response
    assert json.loads(result.get_output("probabilities")["parameters"]["classes"]) == ["1", "2"]


def test_json_outputs_and_request_id(rows, schema):
    outputs = [
        th.InferRequestedOutput("probabilities", binary_data=False),
        th.InferRequestedOutput("label", binary_data=False),
    ]
    body, json_size = _body(_inputs(rows, schema, binary=False), outputs, request_id="abc")
    request = parse_infer_request(body, json_size, schema)
    computed = _fake_outputs(len(rows))
    result, headers = _respond(request, computed)
    assert headers == {"Content-Type": "application/json"}
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probabilities", "label"]
    assert result.get_response()["id"] == "abc"
    assert result.as_numpy("label").tolist() == [str(v) for v in computed["label"]]
    proba = result.as_numpy("probabilities")
    assert proba.dtype == np.float64 and proba.shape == (len(rows), 2)
    np.testing.assert_array_equal(proba, computed["probabilities"].to_numpy())


def test_requested_output_filters_and_mixes_encodings(rows, schema):
    outputs = [th.InferRequestedOutput("label", binary_data=True)]
    body, json_size = _body(_inputs(rows, schema), outputs)
    request = parse_infer_request(body, json_size, schema)
    result, _ = _respond(request, _fake_outputs(len(rows)))
    assert result.as_numpy("probabilities") is None
    assert result.as_numpy("label").shape == (len(rows),)
    # request-level binary_data_output is the default; a per-output binary_data overrides it
    doc = json.loads(body[:json_size])
    doc["parameters"] = {"binary_data_output": True}
    doc["outputs"] = [
        {"name": "label", "parameters": {"binary_data": False}},
        {"name": "probabilities"},
    ]
    header = json.dumps(doc).encode()
    request = parse_infer_request(header + body[json_size:], len(header), schema)
    assert [(o.name, o.binary) for o in request.outputs] == [
        ("label", False),
        ("probabilities", True),
    ]
    result, headers = _respond(request, _fake_outputs(len(rows)))
    assert "Inference-Header-Content-Length" in headers
    assert result.as_numpy("label").dtype == object and isinstance(result.as_numpy("label")[0], str)
    assert result.as_numpy("probabilities").shape == (len(rows), 2)


@pytest.mark.parametrize("binary", [True, False])
def test_classification_extension_on_probabilities(rows, schema, binary):
    outputs = [th.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)]
    body, json_size = _body(_inputs(rows, schema), outputs)
    request = parse_infer_request(body, json_size, schema)
    proba = pd.DataFrame({1: [0.25, 0.9], 2: [0.75, 0.1]})
    req = v2.InferRequest(None, request.frame.head(2), request.outputs, classes=[1, 2])
    result, _ = _respond(req, {"probabilities": proba})
    top = result.as_numpy("probabilities")
    if binary:
        top = np.vectorize(bytes.decode, otypes=[object])(top)
    assert top.tolist() == [
        ["0.750000:1:2", "0.250000:0:1"],
        ["0.900000:0:1", "0.100000:1:2"],
    ]


def test_regression_prediction_output(mixed_schema):
    request = parse_infer_request(json.dumps(_mixed_doc()).encode(), None, mixed_schema)
    assert [o.name for o in request.outputs] == ["prediction"]
    result, _ = _respond(request, {"prediction": np.array([3.5, np.nan])}, version="")
    np.testing.assert_array_equal(result.as_numpy("prediction"), [3.5, np.nan])  # null -> NaN
    assert "model_version" not in result.get_response()
    request.outputs = [v2.RequestedOutput("prediction", True)]
    result, _ = _respond(request, {"prediction": np.array([3.5, -1.0])})
    np.testing.assert_array_equal(result.as_numpy("prediction"), [3.5, -1.0])


def test_compute_outputs_calls_only_what_is_needed(rows, schema, mixed_schema):
    calls = []

    class FakeModel:
        def predict(self, frame):
            calls.append("predict")
            return np.full(len(frame), 2)

        def predict_proba(self, frame):
            calls.append("predict_proba")
            return pd.DataFrame({1: np.full(len(frame), 0.3), 2: np.full(len(frame), 0.7)})

    outputs = [th.InferRequestedOutput("label")]
    body, json_size = _body(_inputs(rows, schema), outputs)
    request = parse_infer_request(body, json_size, schema)
    assert list(v2.compute_outputs(FakeModel(), request)) == ["label"]
    assert calls == ["predict"]
    body, json_size = _body(_inputs(rows, schema))
    request = parse_infer_request(body, json_size, schema)
    computed = v2.compute_outputs(FakeModel(), request)
    result, _ = _respond(request, computed)
    np.testing.assert_array_equal(result.as_numpy("probabilities")[0], [0.3, 0.7])
    reg = parse_infer_request(json.dumps(_mixed_doc()).encode(), None, mixed_schema)
    assert list(v2.compute_outputs(FakeModel(), reg)) == ["prediction"]


def test_missing_computed_output_is_a_server_bug(rows, schema):
    body, json_size = _body(_inputs(rows, schema))
    request = parse_infer_request(body, json_size, schema)
    with pytest.raises(ValueError, match="'probabilities' was requested but not computed"):
        build_infer_response("credit", "1", request, {"label": np.ones(len(rows))})


# -- metadata ----------------------------------------------------------------------------------
def test_model_metadata(schema, mixed_schema):
    meta = v2.model_metadata("credit", ["1", "2"], schema)
    assert meta["name"] == "credit" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "shipml"
    assert [i["name"] for i in meta["inputs"]] == [c.name for c in schema.features]
    by_name = {i["name"]: i for i in meta["inputs"]}
    assert by_name["age_years"]["datatype"] == "FP64" and by_name["age_years"]["shape"] == [-1]
    assert by_name["purpose"]["datatype"] == "BYTES"
    assert by_name["purpose"]["parameters"] == {"kind": "categorical"}
    assert "credit_risk" not in by_name
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [-1]}
    assert outputs["probabilities"]["shape"] == [-1, 2]
    assert json.loads(outputs["probabilities"]["parameters"]["classes"]) == ["1", "2"]
    assert json.loads(meta["parameters"]["classes"]) == ["1", "2"]
    json.dumps(meta)  # plain JSON

    reg = v2.model_metadata("m", ["3"], mixed_schema)
    assert [i["datatype"] for i in reg["inputs"]] == ["FP64", "BOOL", "BYTES", "BYTES", "BYTES"]
    assert reg["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]

    server = v2.server_metadata("0.1.0")
    assert server == {
        "name": "shipml",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification"],
    }


# -- errors ------------------------------------------------------------------------------------
def _mixed_doc(n: int = 2) -> dict:
    """A valid JSON request for mixed_schema."""
    return {
        "inputs": [
            {"name": "x", "shape": [n], "datatype": "FP64", "data": [1.0] * n},
            {"name": "flag", "shape": [n], "datatype": "BOOL", "data": [True] * n},
            {"name": "city", "shape": [n], "datatype": "BYTES", "data": ["Oslo"] * n},
            {"name": "day", "shape": [n], "datatype": "BYTES", "data": ["2024-01-01"] * n},
            {"name": "note", "shape": [n], "datatype": "BYTES", "data": ["a b c"] * n},
        ]
    }


def _edit(doc: dict, path: tuple) -> dict:
    """Set doc[k1][k2]... = value for path (k1, k2, ..., value); the value DEL deletes."""
    *keys, value = path
    target = doc
    for key in keys[:-1]:
        target = target[key]
    if value is DEL:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return doc


DEL = object()
SHM = {"shared_memory_region": "r"}
# (edit of a valid request, a part of the error message)
JSON_ERRORS = [
    (("inputs", DEL), "the request has no 'inputs'; send one input per column: x, flag"),
    (("inputs", {}), "'inputs' must be a non-empty list"),
    (("inputs", []), "'inputs' must be a non-empty list"),
    (("inputs", 0, "name", "z"), "input 'z' is unknown; this model's inputs are: x, flag"),
    (("inputs", 0, "name", "X"), "input 'X' is unknown (did you mean 'x'?)"),
    (("inputs", 0, "name", "y"), "input 'y' is the target the model predicts"),
    (("inputs", 0, "name", "row_id"), "input 'row_id' is not used by the model (id: "),
    (("inputs", 0, "name", 5), "inputs[0] needs a 'name' string, got the number 5"),
    (("inputs", 0, DEL), "missing 1 input(s) the model needs: 'x' (numeric)"),
    (("inputs", 1, "name", "x"), "input 'x' is given twice"),
    (("inputs", 0, "data", [1.0]), "input 'x': shape [2] needs 2 values, got 1"),
    (("inputs", 2, "data", ["a", "b", "c"]), "input 'city': shape [2] needs 2 values, got 3"),
    (("inputs", 0, "shape", [2, 2]), "input 'x': shape [2, 2] is not supported"),
    (("inputs", 0, "shape", [-2]), "input 'x' needs a 'shape' list of whole numbers"),
    (("inputs", 0, "shape", "2"), "input 'x' needs a 'shape' list of whole numbers"),
    (("inputs", 1, "shape", [1]), "different numbers of rows: 'x' has 2, 'flag' has 1"),
    (("inputs", 0, "datatype", "FLOAT"), "input 'x': unknown datatype 'FLOAT'; use one of"),
    (("inputs", 0, "datatype", "BYTES"), "input 'x' is a numeric column: send a numeric"),
    (("inputs", 1, "datatype", "BYTES"), "input 'flag' is a boolean column: send BOOL"),
    (("inputs", 2, "datatype", "FP64"), "input 'city' is a categorical column: send BYTES"),
    (("inputs", 0, "datatype", DEL), "input 'x' needs a 'datatype' string, got null"),
    (("inputs", 0, "data", DEL), "input 'x' has no 'data'"),
    (("inputs", 0, "data", 1.0), "input 'x': 'data' must be a list"),
    (
        ("inputs", 0, "data", [1.0, "2"]),
        "datatype FP64 needs numbers (null for missing), got the string '2' in row 2",
    ),
    (("inputs", 0, "data", [1.0, True]), "got a boolean in row 2"),
    (("inputs", 0, "data", [1.0, {}]), "got an object in row 2"),
    (("inputs", 0, "data", [1.0, 10**400]), "input 'x': a number is too large"),
    (("inputs", 1, "data", [1, 0]), "input 'flag': datatype BOOL needs true/false"),
    (("inputs", 2, "data", ["a", 3]), "datatype BYTES needs strings"),
    (("inputs", 2, "data", ["a", "\ud800"]), "input 'city': value 2 is not valid UTF-8"),
    (("inputs", 0, "parameters", []), "input 'x' parameters must be a JSON object"),
    (("inputs", 0, "parameters", SHM), "input 'x': shared memory is not supported"),
    (
        ("inputs", 0, "parameters", {"binary_data_size": 16}),
        "input 'x' has both 'data' and binary_data_size",
    ),
    (("id", 7), "'id' must be a string, got the number 7"),
    (("parameters", "yes"), "the request's 'parameters' must be a JSON object"),
    (("parameters", {"binary_data_output": 1}), "binary_data_output must be true or false"),
    (("outputs", "prediction"), "'outputs' must be a list"),
    (
        ("outputs", [{"name": "label"}]),
        "unknown output 'label'; this model's outputs are: prediction",
    ),
    (("outputs", [{}]), "outputs[0] needs a 'name' string"),
    (("outputs", [{"name": "prediction"}] * 2), "output 'prediction' is requested twice"),
    (
        ("outputs", [{"name": "prediction", "parameters": {"binary_data": "y"}}]),
        "output 'prediction': binary_data must be true or false",
    ),
    (
        ("outputs", [{"name": "prediction", "parameters": {"classification": 2}}]),
        "only available on the 'probabilities' output",
    ),
    (
        ("outputs", [{"name": "prediction", "parameters": SHM}]),
        "output 'prediction': shared memory is not supported",
    ),
]


@pytest.mark.parametrize("path,message", JSON_ERRORS)
def test_json_request_errors(mixed_schema, path, message):
    body = json.dumps(_edit(_mixed_doc(), path)).encode()
    with pytest.raises(V2Error) as err:
        parse_infer_request(body, None, mixed_schema)
    assert message in str(err.value)
    # a value that does not fit its input: 422, as on every route (tests/security); a
    # malformed request: 400
    value = path[:3] == ("inputs", 0, "data") or path[:3] in (
        ("inputs", 1, "data"),
        ("inputs", 2, "data"),
    )
    value = value and isinstance(path[3], list) and "shape" not in message
    assert err.value.status == (422 if value else 400), message
    assert err.value.to_dict() == {"error": str(err.value)}
    assert isinstance(err.value, ShipmlError)


@pytest.mark.parametrize(
    "body,header_length,message",
    [
        (b"", None, "the request body is empty"),
        (b"{", None, "the request is not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object, got a list"),
        (b'{"inputs": "\xff"}', None, "not valid UTF-8"),
        (b"[" * 100_000, None, "nested too deeply"),
        (b"{}", 10, "Inference-Header-Content-Length is 10 but the request body has only 2"),
        (b"{}", "abc", "Inference-Header-Content-Length must be a whole number, got 'abc'"),
        (b"{}", "-1", "must be a whole number"),
        (b"{}", 0, "must be a positive number"),
        (b"{}", True, "must be a whole number"),
    ],
)
def test_body_errors(mixed_schema, body, header_length, message):
    with pytest.raises(V2Error, match=re.escape(message)):
        parse_infer_request(body, header_length, mixed_schema)


def test_batch_size_limits(mixed_schema):
    with pytest.raises(V2Error, match="input 'x' has 0 rows; send at least one"):
        parse_infer_request(json.dumps(_mixed_doc(0)).encode(), None, mixed_schema)
    body = json.dumps(_mixed_doc(5)).encode()
    assert parse_infer_request(body, None, mixed_schema, max_batch=5).rows == 5
    with pytest.raises(V2Error, match="input 'x' has 5 rows; at most 4 rows per request"):
        parse_infer_request(body, None, mixed_schema, max_batch=4)
    big = json.dumps(_mixed_doc(v2.DEFAULT_MAX_BATCH + 1)).encode()
    with pytest.raises(V2Error, match="at most 10000 rows"):
        parse_infer_request(big, None, mixed_schema)


def test_infinite_numbers_are_refused(mixed_schema):
    doc = _mixed_doc()
    doc["inputs"][0]["data"] = [1.0, float("inf")]
    with pytest.raises(V2Error, match="input 'x': inf in row 2 is not a finite number"):
        parse_infer_request(json.dumps(doc).encode(), None, mixed_schema)


def test_integer_out_of_range(mixed_schema):
    doc = _mixed_doc()
    doc["inputs"][0].update(datatype="INT8", data=[1, 300])
    with pytest.raises(V2Error, match="input 'x': 300 is out of range for INT8"):
        parse_infer_request(json.dumps(doc).encode(), None, mixed_schema)


def _binary_request(mixed_schema, tamper) -> tuple[bytes, int | None]:
    """A binary request from tritonclient for mixed_schema, then tampered with."""
    arrays = {
        "x": (np.array([1.0, 2.0]), "FP64"),
        "flag": (np.array([True, False]), "BOOL"),
        "city": (np.array(["Oslo", "Bergen"], dtype=object), "BYTES"),
        "day": (np.array(["2024-01-01", ""], dtype=object), "BYTES"),
        "note": (np.array(["a", "b"], dtype=object), "BYTES"),
    }
    inputs = []
    for name, (arr, dt) in arrays.items():
        inp = th.InferInput(name, [2], dt)
        inp.set_data_from_numpy(arr, binary_data=True)
        inputs.append(inp)
    body, json_size = _body(inputs)
    doc = json.loads(body[:json_size])
    binary = body[json_size:]
    doc, binary = tamper(doc, binary)
    header = json.dumps(doc).encode()
    return header + binary, len(header)


def _size(i, size):
    def tamper(doc, binary):
        doc["inputs"][i]["parameters"]["binary_data_size"] = size
        return doc, binary

    return tamper


def _cut(start: int, stop: int, insert: bytes = b""):
    """Replace binary[start:stop] with `insert`."""
    return lambda doc, binary: (doc, binary[:start] + insert + binary[stop:])


# binary layout: x FP64 [0:16], flag BOOL [16:18], city BYTES [18:36] (4 + "Oslo" + 4 +
# "Bergen"), day [36:54], note [54:64]
BINARY_ERRORS = [
    (
        _cut(61, 64),
        "input 'note': binary_data_size 10 goes past the end of the request body "
        "(7 byte(s) of binary data left)",
    ),
    (_cut(64, 64, b"\x00"), "1 byte(s) of binary data after the JSON header that no input"),
    (_size(0, 8), "input 'x': shape [2] of FP64 needs 16 bytes, binary_data_size is 8"),
    (_size(0, -1), "binary_data_size must be a whole number >= 0"),
    (_size(0, "16"), "binary_data_size must be a whole number >= 0, got the string"),
    (_cut(16, 17, b"\x02"), "input 'flag': BOOL bytes must be 0 or 1"),
    (_cut(18, 22, struct.pack("<I", 99)), "input 'city': string 1 says it has 99 bytes but"),
    (_cut(22, 24, b"\xff\xfe"), "input 'city': value 1 is not valid UTF-8"),
    (_size(2, 8), "input 'city': shape [2] needs 2 values, the binary data holds 1"),
    (
        lambda d, b: _cut(36, 36, b"\x00\x00")(_size(2, 20)(d, b)[0], b),
        "input 'city': shape [2] needs 2 values but its binary data has 2 byte(s) more",
    ),
]


@pytest.mark.parametrize("tamper,message", BINARY_ERRORS)
def test_binary_request_errors(mixed_schema, tamper, message):
    body, json_size = _binary_request(mixed_schema, tamper)
    with pytest.raises(V2Error, match=re.escape(message)):
        parse_infer_request(body, json_size, mixed_schema)


def test_binary_input_without_header_length(mixed_schema):
    body, json_size = _binary_request(mixed_schema, lambda d, b: (d, b""))
    with pytest.raises(V2Error, match="has binary_data_size 16 but the request has no binary"):
        parse_infer_request(body, None, mixed_schema)


def test_header_length_as_string_header_value(mixed_schema):
    body, json_size = _binary_request(mixed_schema, lambda d, b: (d, b))
    assert parse_infer_request(body, str(json_size), mixed_schema).rows == 2


# -- fuzzing: only V2Error, never another exception --------------------------------------------
def _only_v2_error(body, header_length, schema) -> None:
    with contextlib.suppress(V2Error):
        parse_infer_request(body, header_length, schema)


def test_mutated_client_requests_give_only_v2_errors(rows, schema):
    """Byte flips, truncations and insertions on real tritonclient bodies (always runs)."""
    rng = random.Random(1234)
    seeds = [_body(_inputs(rows.head(3), schema, binary=b)) for b in (True, False, "mixed")]
    for _ in range(600):
        body, json_size = rng.choice(seeds)
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(data)) if data else 0
            if op < 0.5 and data:
                data[pos] = rng.randrange(256)
            elif op < 0.75:
                del data[pos : pos + rng.randint(1, 16)]
            else:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        length = json_size if rng.random() < 0.8 else rng.choice([None, 1, len(data), 10**9])
        _only_v2_error(bytes(data), length, schema)


def test_fuzz_random_bytes_and_json(mixed_schema):
    st = hypothesis.strategies

    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
    json_values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    )
    names = st.sampled_from(["x", "flag", "city", "day", "note", "row_id", "y", "zz"])
    datatypes = st.sampled_from(["FP64", "BOOL", "BYTES", "INT8", "UINT64", "BF16", "FP16", "X"])
    tensor = st.fixed_dictionaries(
        {"name": names, "datatype": datatypes},
        optional={
            "shape": st.one_of(st.lists(st.integers(-1, 3), max_size=3), json_values),
            "data": st.one_of(st.lists(scalars, max_size=4), json_values),
            "parameters": st.one_of(
                st.fixed_dictionaries({"binary_data_size": st.integers(-2, 40)}), json_values
            ),
        },
    )
    requests = st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "inputs": st.one_of(st.lists(tensor, max_size=6), json_values),
            "outputs": st.one_of(
                st.lists(
                    st.fixed_dictionaries({"name": names}, optional={"parameters": json_values})
                ),
                json_values,
            ),
            "parameters": json_values,
        },
    )

    @hypothesis.settings(max_examples=150, deadline=None, database=None)
    @hypothesis.given(requests, st.binary(max_size=48), st.booleans())
    def structured(doc, tail, with_length):
        header = json.dumps(doc).encode()
        _only_v2_error(header + tail, len(header) if with_length else None, mixed_schema)

    @hypothesis.settings(max_examples=100, deadline=None, database=None)
    @hypothesis.given(st.binary(max_size=200), st.one_of(st.none(), st.integers(-3, 250)))
    def raw(body, length):
        _only_v2_error(body, length, mixed_schema)

    structured()
    raw()


def test_property_client_values_round_trip(mixed_schema):
    """Any floats (NaN included), booleans and UTF-8 texts survive tritonclient -> codec."""
    st = hypothesis.strategies
    texts = st.text(st.characters(codec="utf-8"), max_size=12)

    @hypothesis.settings(max_examples=60, deadline=None, database=None)
    @hypothesis.given(st.data(), st.booleans())
    def check(data, binary):
        n = data.draw(st.integers(1, 5))
        x = np.array(data.draw(st.lists(st.floats(allow_infinity=False), min_size=n, max_size=n)))
        flag = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        text = {
            name: np.array(data.draw(st.lists(texts, min_size=n, max_size=n)), dtype=object)
            for name in ("city", "day", "note")
        }
        inputs = []
        for name, arr, dt in [("x", x, "FP64"), ("flag", flag, "BOOL")] + [
            (name, arr, "BYTES") for name, arr in text.items()
        ]:
            inp = th.InferInput(name, [n], dt)
            inp.set_data_from_numpy(arr, binary_data=binary)
            inputs.append(inp)
        body, json_size = _body(inputs)
        frame = parse_infer_request(body, json_size, mixed_schema).frame
        np.testing.assert_array_equal(frame["x"].to_numpy(), x)
        np.testing.assert_array_equal(frame["flag"].to_numpy(), flag.astype(float))
        for name, arr in text.items():
            assert frame[name].tolist() == [v or None for v in arr]

    check()
