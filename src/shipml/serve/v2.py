"""Open Inference Protocol (KServe v2 / Triton HTTP) codec for tabular models.

Pure functions, no web framework: the server passes in the request body and the value of the
``Inference-Header-Content-Length`` header, and sends back the body and headers returned here.
Both the plain-JSON form of the protocol and Triton's binary tensor data extension are read and
written, so the stock ``tritonclient[http]`` client works unmodified (it sends binary data by
default).

Tensor layout of a shipml tabular model
---------------------------------------
Inputs: one tensor per feature column of the model's Schema, named by the column name, shape
``[N]`` or ``[N, 1]``; every input has the same N (1 <= N <= ``max_batch``).

==========================  ===========================================  =====================
column kind                 accepted datatypes                           missing value
==========================  ===========================================  =====================
numeric                     FP64 FP32 FP16 BF16 INT8-64 UINT8-64         NaN (JSON: null)
boolean                     BOOL, or any numeric type holding 0/1        NaN (JSON: null)
categorical, text, datetime BYTES (UTF-8 strings; dates as text)         "" (JSON: "" or null)
==========================  ===========================================  =====================

Model metadata advertises FP64 for numeric, BOOL for boolean and BYTES for the other kinds, with
``parameters.kind`` giving the column kind. Columns the model does not use (ids, ignored
columns, the target) are not inputs: sending them is an error, as is leaving out a feature.

Outputs (all returned when the request lists none):

- classification: ``label`` -- BYTES ``[N]``, the predicted class as text (class 1 -> "1");
  ``probabilities`` -- FP64 ``[N, k]``, one column per class in the model's class order.
  The class order travels with the tensor as ``parameters.classes`` on the ``probabilities``
  output (and in model metadata, on that output and at the top level): a JSON array of the
  class labels as text, in a string because protocol parameter values must be scalars, e.g.
  ``"[\\"1\\", \\"2\\"]"``; ``json.loads`` it. A JSON array is used rather than a comma-joined
  list because class labels may contain commas. With tritonclient:
  ``json.loads(result.get_output("probabilities")["parameters"]["classes"])``.
  Triton's classification extension works on ``probabilities``: ``InferRequestedOutput(
  "probabilities", class_count=k)`` returns BYTES ``[N, k]`` of ``"<probability>:<index>:<label>"``,
  highest first.
- regression: ``prediction`` -- FP64 ``[N]``.

An output is binary when its ``parameters.binary_data`` is true, or, when that is not given,
when the request's ``parameters.binary_data_output`` is true; otherwise it is JSON. With any
binary output the response is the JSON header followed by the raw tensors, and the headers
carry ``Inference-Header-Content-Length``. In binary form BYTES elements are 4-byte
little-endian lengths followed by UTF-8 bytes (tritonclient's ``as_numpy`` returns ``bytes``
objects for them; in JSON form it returns ``str``).

Every problem with what the client sent raises :class:`V2Error` (HTTP 400 by default) with a
message that names the input, output or field at fault.
"""

from __future__ import annotations

import difflib
import json
import math
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from shipml.errors import ShipmlError

__all__ = [
    "DEFAULT_MAX_BATCH",
    "InferRequest",
    "RequestedOutput",
    "V2Error",
    "build_infer_response",
    "compute_outputs",
    "model_metadata",
    "output_names",
    "parse_infer_request",
    "server_metadata",
]

DEFAULT_MAX_BATCH = 10_000
EXTENSIONS = ["binary_tensor_data", "classification"]

# little-endian wire formats of the fixed-size datatypes (BOOL is one byte, 0 or 1; BF16 is the
# upper half of an FP32, read as uint16 and widened)
_WIRE = {
    "BOOL": np.dtype("u1"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_INTEGER = {k: v for k, v in _WIRE.items() if k[0] in "IU"}
_NUMBER_TYPES = ("FP64", "FP32", "FP16", "BF16", *_INTEGER)
_DATATYPES = ("BOOL", *_NUMBER_TYPES, "BYTES")
_ACCEPTS = {
    "numeric": _NUMBER_TYPES,
    "boolean": ("BOOL", *_NUMBER_TYPES),
    "categorical": ("BYTES",),
    "text": ("BYTES",),
    "datetime": ("BYTES",),
}
_ADVERTISED = {"numeric": "FP64", "boolean": "BOOL"}  # other kinds: BYTES
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


class V2Error(ShipmlError):
    """A v2 request the server cannot accept. ``status`` is the HTTP status to answer with,
    ``to_dict()`` the protocol's error body, ``field`` the input/output/field at fault."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field

    def to_dict(self) -> dict:
        return {"error": self.message}


class RequestedOutput(NamedTuple):
    """An output to return: its name, binary (True) or JSON (False), and the classification
    extension's top-k count (0 = the plain tensor)."""

    name: str
    binary: bool
    classification: int = 0


@dataclass
class InferRequest:
    """A decoded inference request.

    ``frame`` has one column per feature of the schema, in schema order: float64 for numeric and
    boolean columns (NaN = missing; boolean as 0.0/1.0), object (str, None = missing) for
    categorical, text and datetime. ``outputs`` is already resolved: the requested outputs, or
    all of the model's outputs when the request named none.
    """

    id: str | None
    frame: pd.DataFrame
    outputs: list[RequestedOutput]
    parameters: dict = field(default_factory=dict)
    task: str | None = None
    classes: list | None = None

    @property
    def rows(self) -> int:
        return len(self.frame)

    def wants(self, name: str) -> bool:
        return any(o.name == name for o in self.outputs)


# -- metadata ----------------------------------------------------------------------------------
def output_names(schema) -> list[str]:
    """The outputs a model with this schema produces."""
    return ["prediction"] if schema.task == "regression" else ["label", "probabilities"]


def _class_texts(classes) -> list[str]:
    return [_label_text(c) for c in classes or []]


def _classes_parameter(classes) -> str:
    return json.dumps(_class_texts(classes))


def model_metadata(name: str, versions: list[str], schema, platform: str = "shipml") -> dict:
    """The v2 model metadata object: inputs (one per feature column) and outputs."""
    inputs = [
        {
            "name": col.name,
            "datatype": _ADVERTISED.get(col.kind, "BYTES"),
            "shape": [-1],
            "parameters": {"kind": col.kind},
        }
        for col in schema.features
    ]
    parameters: dict = {"task": schema.task, "target": schema.target}
    if schema.task == "regression":
        outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    else:
        classes = _classes_parameter(schema.classes)
        k = len(schema.classes or [])
        outputs = [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {
                "name": "probabilities",
                "datatype": "FP64",
                "shape": [-1, k],
                "parameters": {"classes": classes},
            },
        ]
        parameters["classes"] = classes
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": inputs,
        "outputs": outputs,
        "parameters": parameters,
    }


def server_metadata(version: str) -> dict:
    """The v2 server metadata object."""
    return {"name": "shipml", "version": str(version), "extensions": list(EXTENSIONS)}


# -- request -----------------------------------------------------------------------------------
def parse_infer_request(
    body: bytes,
    header_length: int | str | None,
    schema,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> InferRequest:
    """Decode a v2 inference request body for a model with this schema.

    ``header_length`` is the ``Inference-Header-Content-Length`` header (None when absent: the
    whole body is JSON). Raises V2Error for anything wrong with the request.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = bytes(body)
    header, binary = _split_body(body, header_length)
    doc = _load_json(header)
    if not isinstance(doc, dict):
        raise V2Error(
            f"the inference request must be a JSON object, got {_json_type(doc)}", field="body"
        )
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise V2Error(f"'id' must be a string, got {_json_type(request_id)}", field="id")
    parameters = _parameters(doc.get("parameters"), "the request's 'parameters'")
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise V2Error(
            "parameters.binary_data_output must be true or false, "
            f"got {_json_type(binary_default)}",
            field="binary_data_output",
        )

    outputs = _requested_outputs(doc.get("outputs"), schema, binary_default)
    features = {col.name: col for col in schema.features}
    specs = doc.get("inputs")
    if specs is None:
        raise V2Error(
            f"the request has no 'inputs'; send one input per column: {_names(features)}",
            field="inputs",
        )
    if not isinstance(specs, list) or not specs:
        raise V2Error(
            f"'inputs' must be a non-empty list of tensors, got {_json_type(specs)}",
            field="inputs",
        )

    columns: dict[str, np.ndarray] = {}
    first: tuple[str, int] | None = None
    offset = 0
    for i, spec in enumerate(specs):
        name, datatype, n, params = _input_header(spec, i, features, schema, columns)
        if first is None:
            first = (name, n)
            if n == 0:
                raise _input_error(name, " has 0 rows; send at least one")
            if n > max_batch:
                raise _input_error(name, f" has {n} rows; at most {max_batch} rows per request")
        elif n != first[1]:
            raise V2Error(
                f"inputs have different numbers of rows: '{first[0]}' has {first[1]}, "
                f"'{name}' has {n}",
                field=name,
            )
        col = features[name]
        if "binary_data_size" in params:
            values, offset = _binary_values(name, datatype, n, spec, params, binary, offset)
        else:
            values = _json_values(name, datatype, n, spec)
        columns[name] = _to_column(name, col.kind, datatype, values)

    missing = [c for c in features if c not in columns]
    if missing:
        described = ", ".join(f"'{c}' ({features[c].kind})" for c in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise V2Error(
            f"the request is missing {len(missing)} input(s) the model needs: {described}{more}",
            field=missing[0],
        )
    if offset < len(binary):
        raise V2Error(
            f"the request body has {len(binary) - offset} byte(s) of binary data after the "
            "JSON header that no input claims (check each input's binary_data_size)",
            field="binary_data_size",
        )
    # explicit dtypes: pandas >= 3 would turn object arrays of text into its "str" dtype
    frame = pd.DataFrame({n: pd.Series(columns[n], dtype=columns[n].dtype) for n in features})
    return InferRequest(
        id=request_id,
        frame=frame,
        outputs=outputs,
        parameters=parameters,
        task=schema.task,
        classes=list(schema.classes) if schema.classes else None,
    )


def _split_body(body: bytes, header_length) -> tuple[bytes, bytes]:
    if not body:
        raise V2Error("the request body is empty; send an inference request JSON object")
    if header_length is None:
        return body, b""
    if isinstance(header_length, bool):
        raise V2Error("Inference-Header-Content-Length must be a whole number")
    if isinstance(header_length, (str, bytes)):
        text = header_length.strip()
        if not text.isdigit():  # also rejects signs, so negatives are caught here
            raise V2Error(
                f"Inference-Header-Content-Length must be a whole number, got {header_length!r}",
                field="Inference-Header-Content-Length",
            )
        header_length = int(text)
    if not isinstance(header_length, int) or header_length <= 0:
        raise V2Error(
            f"Inference-Header-Content-Length must be a positive number, got {header_length!r}",
            field="Inference-Header-Content-Length",
        )
    if header_length > len(body):
        raise V2Error(
            f"Inference-Header-Content-Length is {header_length} but the request body has only "
            f"{len(body)} bytes",
            field="Inference-Header-Content-Length",
        )
    return body[:header_length], body[header_length:]


def _load_json(header: bytes):
    try:
        return json.loads(header)
    except UnicodeDecodeError as exc:
        raise V2Error(f"the request JSON is not valid UTF-8: {exc.reason}", field="body") from None
    except ValueError as exc:
        raise V2Error(f"the request is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise V2Error("the request JSON is nested too deeply", field="body") from None


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(features) -> str:
    names = list(features)
    shown = ", ".join(names[:40]) + (f" ... ({len(names)} in all)" if len(names) > 40 else "")
    return shown


def _parameters(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise V2Error(f"{where} must be a JSON object, got {_json_type(value)}", field="parameters")
    return value


def _unknown_input(name: str, features, schema) -> V2Error:
    if name == schema.target:
        why = " is the target the model predicts, not an input"
    elif name in {c.name for c in schema.dropped}:
        col = schema.column(name)
        why = f" is not used by the model ({col.kind}{': ' + col.note if col.note else ''})"
    else:
        close = difflib.get_close_matches(name, list(features), n=1, cutoff=0.6)
        close = close or [f for f in features if f.lower() == name.lower()]
        why = f" is unknown (did you mean '{close[0]}'?)" if close else " is unknown"
    return V2Error(
        f"input {_short(name, 60)}{why}; this model's inputs are: {_names(features)}",
        field=name,
    )


def _input_error(name: str, text: str) -> V2Error:
    return V2Error(f"input '{name}'{text}", field=name)


_KIND_HINT = {
    "numeric": "a numeric datatype (FP64, FP32, INT64, INT32, ...)",
    "boolean": "BOOL, or a numeric datatype holding 0/1",
}


def _input_header(spec, i: int, features, schema, seen) -> tuple[str, str, int, dict]:
    """Name, datatype, N and parameters of one input, checked against the schema."""
    if not isinstance(spec, dict):
        raise V2Error(f"inputs[{i}] must be a JSON object, got {_json_type(spec)}", field="inputs")
    name = spec.get("name")
    if not isinstance(name, str):
        raise V2Error(f"inputs[{i}] needs a 'name' string, got {_json_type(name)}", field="inputs")
    if name not in features:
        raise _unknown_input(name, features, schema)
    if name in seen:
        raise _input_error(name, " is given twice")
    datatype = spec.get("datatype")
    if not isinstance(datatype, str):
        raise _input_error(name, f" needs a 'datatype' string, got {_json_type(datatype)}")
    if datatype not in _DATATYPES:
        raise _input_error(
            name, f": unknown datatype {_short(datatype)}; use one of {', '.join(_DATATYPES)}"
        )
    kind = features[name].kind
    accepted = _ACCEPTS.get(kind, ("BYTES",))
    if datatype not in accepted:
        hint = _KIND_HINT.get(kind, "BYTES (UTF-8 strings)")
        raise _input_error(name, f" is a {kind} column: send {hint}, got {datatype}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _input_error(name, " needs a 'shape' list of whole numbers >= 0, e.g. [3]")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise _input_error(
            name, f": shape {shape} is not supported; send one value per row as shape [N] or [N, 1]"
        )
    params = _parameters(spec.get("parameters"), f"input '{name}' parameters")
    if any(key in params for key in _SHARED_MEMORY):
        raise _input_error(name, ": shared memory is not supported; send the data in the request")
    return name, datatype, shape[0], params


def _binary_values(name, datatype, n, spec, params, binary: bytes, offset: int):
    size = params["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _input_error(
            name, f": binary_data_size must be a whole number >= 0, got {_json_type(size)}"
        )
    if "data" in spec:
        raise _input_error(name, " has both 'data' and binary_data_size; send one of them")
    left = len(binary) - offset
    if size > left:
        if not binary and offset == 0:
            raise _input_error(
                name,
                f" has binary_data_size {size} but the request has no binary "
                "data (send the Inference-Header-Content-Length header with the JSON length)",
            )
        raise _input_error(
            name,
            f": binary_data_size {size} goes past the end of the request body "
            f"({left} byte(s) of binary data left)",
        )
    chunk = binary[offset : offset + size]
    shape = spec["shape"]
    if datatype == "BYTES":
        values = _decode_bytes(name, chunk, n, shape)
    else:
        wire = _WIRE[datatype]
        need = n * wire.itemsize
        if size != need:
            raise _input_error(
                name,
                f": shape {shape} of {datatype} needs {need} bytes, binary_data_size is {size}",
            )
        raw = np.frombuffer(chunk, dtype=wire)
        if datatype == "BOOL" and (raw > 1).any():
            raise _input_error(name, ": BOOL bytes must be 0 or 1")
        if datatype == "BF16":
            values = (raw.astype("<u4") << 16).view("<f4").astype(np.float64)
        else:
            values = raw.astype(np.float64)
    return values, offset + size


def _decode_bytes(name: str, chunk: bytes, n: int, shape: str) -> np.ndarray:
    out = np.empty(n, dtype=object)
    pos, end = 0, len(chunk)
    for i in range(n):
        if pos + 4 > end:
            raise _input_error(name, f": shape {shape} needs {n} values, the binary data holds {i}")
        (length,) = struct.unpack_from("<I", chunk, pos)
        pos += 4
        if pos + length > end:
            raise _input_error(
                name,
                f": string {i + 1} says it has {length} bytes but only "
                f"{end - pos} are left in its binary data",
            )
        try:
            text = chunk[pos : pos + length].decode("utf-8")
        except UnicodeDecodeError:
            raise _input_error(name, f": value {i + 1} is not valid UTF-8 text") from None
        out[i] = text or None
        pos += length
    if pos != end:
        raise _input_error(
            name,
            f": shape {shape} needs {n} values but its binary data has {end - pos} byte(s) more",
        )
    return out


def _flatten(name: str, data, ndim: int) -> list:
    """Tensor data as a flat list: the protocol allows flat or nested (row-major) arrays."""
    if not isinstance(data, list):
        raise _input_error(name, f": 'data' must be a list, got {_json_type(data)}")
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []

    def walk(items: list, depth: int) -> None:
        for v in items:
            if isinstance(v, list):
                if depth >= ndim:
                    raise _input_error(name, ": 'data' is nested deeper than its shape")
                walk(v, depth + 1)
            else:
                out.append(v)

    walk(data, 1)
    return out


def _json_values(name: str, datatype: str, n: int, spec) -> np.ndarray:
    if "data" not in spec:
        raise _input_error(name, " has no 'data' (give 'data' or parameters.binary_data_size)")
    shape = spec["shape"]
    values = _flatten(name, spec["data"], len(shape))
    if len(values) != n:
        raise _input_error(name, f": shape {shape} needs {n} values, got {len(values)}")
    if datatype == "BYTES":
        return _json_strings(name, values)
    if datatype == "BOOL":
        allowed: tuple = (bool,)
        wanted = "true/false"
    elif datatype in _INTEGER:
        allowed = (int,)
        wanted = "whole numbers"
    else:
        allowed = (int, float, type(None))
        wanted = "numbers (null for missing)"
    bad = set(map(type, values)) - set(allowed)
    if bad:
        i = next(k for k, v in enumerate(values) if type(v) not in allowed)
        raise _input_error(
            name,
            f": datatype {datatype} needs {wanted}, got {_json_type(values[i])} in row {i + 1}",
        )
    if datatype in _INTEGER:
        info = np.iinfo(_INTEGER[datatype])
        low, high = min(values), max(values)
        if low < info.min or high > info.max:
            raise _input_error(
                name, f": {low if low < info.min else high} is out of range for {datatype}"
            )
    if type(None) in allowed:
        values = [math.nan if v is None else v for v in values]
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:
        raise _input_error(name, ": a number is too large") from None


def _json_strings(name: str, values: list) -> np.ndarray:
    allowed = (str, type(None))
    bad = set(map(type, values)) - set(allowed)
    if bad:
        i = next(k for k, v in enumerate(values) if type(v) not in allowed)
        raise _input_error(
            name,
            f': datatype BYTES needs strings ("" or null for missing), got '
            f"{_json_type(values[i])} in row {i + 1}",
        )
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v:
            try:
                v.encode("utf-8")  # lone surrogates ("\\ud800") are not text
            except UnicodeEncodeError:
                raise _input_error(name, f": value {i + 1} is not valid UTF-8 text") from None
        out[i] = v or None
    return out


def _to_column(name: str, kind: str, datatype: str, values: np.ndarray) -> np.ndarray:
    """Check decoded values against the column kind; the frame column they become."""
    if datatype == "BYTES":
        return values
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise _input_error(
            name,
            f": {values[row]} in row {row + 1} is not a finite number "
            "(send NaN for a missing value)",
        )
    if kind == "boolean":
        bad = ~(np.isnan(values) | (values == 0) | (values == 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _input_error(
                name,
                f" is a boolean column: values must be 0 or 1 (NaN for missing), "
                f"got {values[row]:g} in row {row + 1}",
            )
    return values


def _requested_outputs(value, schema, binary_default: bool) -> list[RequestedOutput]:
    available = output_names(schema)
    if value is None or value == []:
        return [RequestedOutput(name, binary_default) for name in available]
    if not isinstance(value, list):
        raise V2Error(f"'outputs' must be a list, got {_json_type(value)}", field="outputs")
    out: list[RequestedOutput] = []
    for i, spec in enumerate(value):
        if not isinstance(spec, dict):
            raise V2Error(
                f"outputs[{i}] must be a JSON object, got {_json_type(spec)}", field="outputs"
            )
        name = spec.get("name")
        if not isinstance(name, str):
            raise V2Error(
                f"outputs[{i}] needs a 'name' string, got {_json_type(name)}", field="outputs"
            )
        if name not in available:
            raise V2Error(
                f"unknown output '{name}'; this model's outputs are: {', '.join(available)}",
                field=name,
            )
        if any(o.name == name for o in out):
            raise V2Error(f"output '{name}' is requested twice", field=name)
        params = _parameters(spec.get("parameters"), f"output '{name}' parameters")
        if any(key in params for key in _SHARED_MEMORY):
            raise V2Error(
                f"output '{name}': shared memory is not supported; outputs come back in the "
                "response",
                field=name,
            )
        binary = params.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise V2Error(
                f"output '{name}': binary_data must be true or false, got {_json_type(binary)}",
                field=name,
            )
        count = params.get("classification", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise V2Error(
                f"output '{name}': classification must be a whole number of classes, "
                f"got {_json_type(count)}",
                field=name,
            )
        if count and name != "probabilities":
            raise V2Error(
                f"output '{name}': classification (class_count) is only available on the "
                "'probabilities' output",
                field=name,
            )
        out.append(RequestedOutput(name, binary, count))
    return out


# -- response ----------------------------------------------------------------------------------
def compute_outputs(model, request: InferRequest) -> dict[str, object]:
    """Run the Model for the outputs the request asks for (predict / predict_proba only as
    needed). SchemaError from the model (e.g. a date that does not parse) passes through."""
    if request.task == "regression":
        return {"prediction": model.predict(request.frame)}
    out: dict[str, object] = {}
    if request.wants("probabilities"):
        out["probabilities"] = model.predict_proba(request.frame)
    if request.wants("label"):
        out["label"] = model.predict(request.frame)
    return out


def build_infer_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    outputs: dict[str, object],
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers for the request's outputs.

    ``outputs`` holds what the model computed: ``label`` (array of class labels),
    ``probabilities`` (the DataFrame of ``Model.predict_proba`` or an [N, k] array in class
    order), ``prediction`` (array of numbers). Outputs the request did not ask for are ignored.
    A requested output missing from ``outputs`` is a server bug: ValueError.
    """
    tensors: list[dict] = []
    chunks: list[bytes] = []
    for req in request.outputs:
        if req.name not in outputs:
            raise ValueError(f"output '{req.name}' was requested but not computed")
        tensor, data = _output_tensor(req, outputs[req.name], request.classes)
        if req.binary:
            raw = _tensor_bytes(data, tensor["datatype"])
            tensor.setdefault("parameters", {})["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            tensor["data"] = _tensor_json(data, tensor["datatype"])
        tensors.append(tensor)
    doc: dict = {"model_name": model_name}
    if model_version not in (None, ""):
        doc["model_version"] = str(model_version)
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = tensors
    header = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if not chunks:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(chunks), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }


def _label_text(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _output_tensor(req: RequestedOutput, value, classes) -> tuple[dict, np.ndarray]:
    if req.name == "label":
        labels = np.asarray(value, dtype=object).reshape(-1)
        data = np.array([_label_text(v) for v in labels], dtype=object)
        return {"name": "label", "datatype": "BYTES", "shape": [len(data)]}, data
    if req.name == "probabilities":
        if isinstance(value, pd.DataFrame):
            classes = list(value.columns)
            value = value.to_numpy(dtype=np.float64)
        proba = np.asarray(value, dtype=np.float64)
        if proba.ndim != 2:
            raise ValueError(f"probabilities must be 2-D [N, k], got shape {proba.shape}")
        params = {"classes": _classes_parameter(classes)} if classes is not None else {}
        if req.classification:
            data = _top_classes(proba, req.classification, _class_texts(classes))
            tensor = {"name": "probabilities", "datatype": "BYTES", "shape": list(data.shape)}
        else:
            data = proba
            tensor = {"name": "probabilities", "datatype": "FP64", "shape": list(data.shape)}
        if params:
            tensor["parameters"] = params
        return tensor, data
    data = np.asarray(value, dtype=np.float64).reshape(-1)
    return {"name": req.name, "datatype": "FP64", "shape": [len(data)]}, data


def _top_classes(proba: np.ndarray, count: int, labels: list[str]) -> np.ndarray:
    """Triton's classification extension: "<value>:<index>:<label>", highest first."""
    k = min(count, proba.shape[1])
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    out = np.empty((proba.shape[0], k), dtype=object)
    for i in range(proba.shape[0]):
        for j, idx in enumerate(order[i]):
            label = f":{labels[idx]}" if idx < len(labels) else ""
            out[i, j] = f"{proba[i, idx]:.6f}:{idx}{label}"
    return out


def _tensor_bytes(data: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for text in data.reshape(-1):
            raw = text.encode("utf-8")
            parts.append(struct.pack("<I", len(raw)))
            parts.append(raw)
        return b"".join(parts)
    return np.ascontiguousarray(data, dtype=_WIRE[datatype]).tobytes()


def _tensor_json(data: np.ndarray, datatype: str) -> list:
    flat = data.reshape(-1)
    if datatype == "BYTES":
        return [str(v) for v in flat]
    # NaN / infinity are not JSON: null (tritonclient's as_numpy reads null as NaN)
    return [v if math.isfinite(v) else None for v in flat.tolist()]
