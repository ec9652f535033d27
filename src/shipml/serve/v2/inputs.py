"""One input tensor of a request: its header checked against the Schema, its values decoded
from JSON or binary data, and the frame column they become."""

from __future__ import annotations

import difflib
import math

import numpy as np

from shipml.serve.v2.datatypes import ACCEPTS, DATATYPES, INTEGER, WIRE, decode_bytes
from shipml.serve.v2.errors import (
    ODD_VALUE,
    V2Error,
    check_parameters,
    input_error,
    json_type,
    name_list,
    short,
)

SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


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
        f"input {short(name, 60)}{why}; this model's inputs are: {name_list(features)}",
        field=name,
    )


_KIND_HINT = {
    "numeric": "a numeric datatype (FP64, FP32, INT64, INT32, ...)",
    "boolean": "BOOL, or a numeric datatype holding 0/1",
}


def input_header(spec, i: int, features, schema, seen) -> tuple[str, str, int, dict]:
    """Name, datatype, N and parameters of one input, checked against the schema."""
    if not isinstance(spec, dict):
        raise V2Error(f"inputs[{i}] must be a JSON object, got {json_type(spec)}", field="inputs")
    name = spec.get("name")
    if not isinstance(name, str):
        raise V2Error(f"inputs[{i}] needs a 'name' string, got {json_type(name)}", field="inputs")
    if name not in features:
        raise _unknown_input(name, features, schema)
    if name in seen:
        raise input_error(name, " is given twice")
    datatype = spec.get("datatype")
    if not isinstance(datatype, str):
        raise input_error(name, f" needs a 'datatype' string, got {json_type(datatype)}")
    if datatype not in DATATYPES:
        raise input_error(
            name, f": unknown datatype {short(datatype)}; use one of {', '.join(DATATYPES)}"
        )
    kind = features[name].kind
    accepted = ACCEPTS.get(kind, ("BYTES",))
    if datatype not in accepted:
        hint = _KIND_HINT.get(kind, "BYTES (UTF-8 strings)")
        raise input_error(name, f" is a {kind} column: send {hint}, got {datatype}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise input_error(name, " needs a 'shape' list of whole numbers >= 0, e.g. [3]")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise input_error(
            name, f": shape {shape} is not supported; send one value per row as shape [N] or [N, 1]"
        )
    params = check_parameters(spec.get("parameters"), f"input '{name}' parameters")
    if any(key in params for key in SHARED_MEMORY):
        raise input_error(name, ": shared memory is not supported; send the data in the request")
    return name, datatype, shape[0], params


def binary_values(name, datatype, n, spec, params, binary: bytes, offset: int, *,
                  raw: bool = False):  # fmt: skip
    size = params["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise input_error(
            name, f": binary_data_size must be a whole number >= 0, got {json_type(size)}"
        )
    if "data" in spec:
        raise input_error(name, " has both 'data' and binary_data_size; send one of them")
    left = len(binary) - offset
    if size > left:
        if not binary and offset == 0:
            raise input_error(
                name,
                f" has binary_data_size {size} but the request has no binary "
                "data (send the Inference-Header-Content-Length header with the JSON length)",
            )
        raise input_error(
            name,
            f": binary_data_size {size} goes past the end of the request body "
            f"({left} byte(s) of binary data left)",
        )
    chunk = binary[offset : offset + size]
    shape = spec["shape"]
    if datatype == "BYTES":
        values = decode_bytes(name, chunk, n, shape, raw=raw)
    else:
        wire = WIRE[datatype]
        need = n * wire.itemsize
        if size != need:
            raise input_error(
                name,
                f": shape {shape} of {datatype} needs {need} bytes, binary_data_size is {size}",
            )
        raw = np.frombuffer(chunk, dtype=wire)
        if datatype == "BOOL" and (raw > 1).any():
            raise input_error(name, ": BOOL bytes must be 0 or 1")
        if datatype == "BF16":
            values = (raw.astype("<u4") << 16).view("<f4").astype(np.float64)
        else:
            values = raw.astype(np.float64)
    return values, offset + size


def _flatten(name: str, data, ndim: int) -> list:
    """Tensor data as a flat list: the protocol allows flat or nested (row-major) arrays."""
    if not isinstance(data, list):
        raise input_error(name, f": 'data' must be a list, got {json_type(data)}")
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []

    def walk(items: list, depth: int) -> None:
        for v in items:
            if isinstance(v, list):
                if depth >= ndim:
                    raise input_error(name, ": 'data' is nested deeper than its shape")
                walk(v, depth + 1)
            else:
                out.append(v)

    walk(data, 1)
    return out


def json_values(name: str, datatype: str, n: int, spec) -> np.ndarray:
    if "data" not in spec:
        raise input_error(name, " has no 'data' (give 'data' or parameters.binary_data_size)")
    shape = spec["shape"]
    values = _flatten(name, spec["data"], len(shape))
    if len(values) != n:
        raise input_error(name, f": shape {shape} needs {n} values, got {len(values)}")
    if datatype == "BYTES":
        return _json_strings(name, values)
    if datatype == "BOOL":
        allowed: tuple = (bool,)
        wanted = "true/false"
    elif datatype in INTEGER:
        allowed = (int,)
        wanted = "whole numbers"
    else:
        allowed = (int, float, type(None))
        wanted = "numbers (null for missing)"
    bad = set(map(type, values)) - set(allowed)
    if bad:
        i = next(k for k, v in enumerate(values) if type(v) not in allowed)
        raise input_error(
            name,
            f": datatype {datatype} needs {wanted}, got {json_type(values[i])} in row {i + 1}",
            ODD_VALUE,
        )
    if datatype in INTEGER:
        info = np.iinfo(INTEGER[datatype])
        low, high = min(values), max(values)
        if low < info.min or high > info.max:
            raise input_error(
                name, f": {low if low < info.min else high} is out of range for {datatype}"
            )
    if type(None) in allowed:
        values = [math.nan if v is None else v for v in values]
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:
        raise input_error(name, ": a number is too large", ODD_VALUE) from None


def _json_strings(name: str, values: list) -> np.ndarray:
    allowed = (str, type(None))
    bad = set(map(type, values)) - set(allowed)
    if bad:
        i = next(k for k, v in enumerate(values) if type(v) not in allowed)
        raise input_error(
            name,
            f': datatype BYTES needs strings ("" or null for missing), got '
            f"{json_type(values[i])} in row {i + 1}",
            ODD_VALUE,
        )
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v:
            try:
                v.encode("utf-8")  # lone surrogates ("\\ud800") are not text
            except UnicodeEncodeError:
                raise input_error(
                    name, f": value {i + 1} is not valid UTF-8 text (a lone surrogate)", ODD_VALUE
                ) from None
        out[i] = v or None
    return out


def to_column(name: str, kind: str, datatype: str, values: np.ndarray) -> np.ndarray:
    """Check decoded values against the column kind; the frame column they become."""
    if kind == "image":  # BYTES: the files (binary) or base64 text (JSON), never a path
        from shipml.serve.images import check_count, image_cell

        check_count(int(sum(v is not None for v in values)))
        out = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            out[i] = image_cell(value, f"input '{name}' row {i + 1}")
        return out
    if datatype == "BYTES":
        return values
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise input_error(
            name,
            f": {values[row]} in row {row + 1} is not a finite number "
            "(send NaN for a missing value)",
            ODD_VALUE,
        )
    if kind == "boolean":
        bad = ~(np.isnan(values) | (values == 0) | (values == 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise input_error(
                name,
                f" is a boolean column: values must be 0 or 1 (NaN for missing), "
                f"got {values[row]:g} in row {row + 1}",
                ODD_VALUE,
            )
    return values
