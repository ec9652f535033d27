"""Decoding a v2 inference request: the body (JSON, or JSON header + binary tensors), the
requested outputs, and the inputs assembled into one frame in schema order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from shipml.serve.v2.errors import (
    V2Error,
    check_parameters,
    input_error,
    json_type,
    name_list,
    short,
)
from shipml.serve.v2.inputs import (
    SHARED_MEMORY,
    binary_values,
    input_header,
    json_values,
    to_column,
)
from shipml.serve.v2.metadata import output_names

DEFAULT_MAX_BATCH = 10_000


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
    doc = _request_doc(header)
    parameters = check_parameters(doc.get("parameters"), "the request's 'parameters'")
    outputs = _requested_outputs(doc.get("outputs"), schema, _binary_default(parameters))
    features = {col.name: col for col in schema.features}
    columns = _read_inputs(_input_specs(doc, features), features, schema, binary, max_batch)
    # explicit dtypes: pandas >= 3 would turn object arrays of text into its "str" dtype
    frame = pd.DataFrame({n: pd.Series(columns[n], dtype=columns[n].dtype) for n in features})
    return InferRequest(
        id=doc.get("id"),
        frame=frame,
        outputs=outputs,
        parameters=parameters,
        task=schema.task,
        classes=list(schema.classes) if schema.classes else None,
    )


def _request_doc(header: bytes) -> dict:
    """The JSON header: an object whose 'id', when given, is a string."""
    doc = _load_json(header)
    if not isinstance(doc, dict):
        raise V2Error(
            f"the inference request must be a JSON object, got {json_type(doc)}", field="body"
        )
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise V2Error(f"'id' must be a string, got {json_type(request_id)}", field="id")
    return doc


def _binary_default(parameters: dict) -> bool:
    """parameters.binary_data_output: whether outputs are binary unless they say otherwise."""
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise V2Error(
            f"parameters.binary_data_output must be true or false, got {json_type(binary_default)}",
            field="binary_data_output",
        )
    return binary_default


def _input_specs(doc: dict, features: dict) -> list:
    specs = doc.get("inputs")
    if specs is None:
        raise V2Error(
            f"the request has no 'inputs'; send one input per column: {name_list(features)}",
            field="inputs",
        )
    if not isinstance(specs, list) or not specs:
        raise V2Error(
            f"'inputs' must be a non-empty list of tensors, got {json_type(specs)}",
            field="inputs",
        )
    return specs


def _read_inputs(specs: list, features: dict, schema, binary: bytes, max_batch: int) -> dict:
    """{column name: values} of the input tensors: one per feature, all with the same number
    of rows (1 to `max_batch`), the binary data claimed to its last byte."""
    columns: dict[str, np.ndarray] = {}
    first: tuple[str, int] | None = None
    offset = 0
    for i, spec in enumerate(specs):
        name, datatype, n, params = input_header(spec, i, features, schema, columns)
        if first is None:
            first = (name, n)
            if n == 0:
                raise input_error(name, " has 0 rows; send at least one")
            if n > max_batch:
                raise input_error(name, f" has {n} rows; at most {max_batch} rows per request")
        elif n != first[1]:
            raise V2Error(
                f"inputs have different numbers of rows: '{first[0]}' has {first[1]}, "
                f"'{name}' has {n}",
                field=name,
            )
        col = features[name]
        if "binary_data_size" in params:
            values, offset = binary_values(name, datatype, n, spec, params, binary, offset,
                                           raw=col.kind == "image")  # fmt: skip
        else:
            values = json_values(name, datatype, n, spec)
        columns[name] = to_column(name, col.kind, datatype, values)
    _check_all_read(features, columns, len(binary) - offset)
    return columns


def _check_all_read(features: dict, columns: dict, unclaimed: int) -> None:
    missing = [c for c in features if c not in columns]
    if missing:
        described = ", ".join(f"'{c}' ({features[c].kind})" for c in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise V2Error(
            f"the request is missing {len(missing)} input(s) the model needs: {described}{more}",
            field=missing[0],
        )
    if unclaimed > 0:
        raise V2Error(
            f"the request body has {unclaimed} byte(s) of binary data after the "
            "JSON header that no input claims (check each input's binary_data_size)",
            field="binary_data_size",
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
                "Inference-Header-Content-Length must be a whole number, "
                f"got {short(header_length)}",
                field="Inference-Header-Content-Length",
            )
        header_length = int(text)
    if not isinstance(header_length, int) or header_length <= 0:
        raise V2Error(
            "Inference-Header-Content-Length must be a positive number, "
            f"got {short(header_length)}",
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


def _requested_outputs(value, schema, binary_default: bool) -> list[RequestedOutput]:
    available = output_names(schema)
    if value is None or value == []:
        return [RequestedOutput(name, binary_default) for name in available]
    if not isinstance(value, list):
        raise V2Error(f"'outputs' must be a list, got {json_type(value)}", field="outputs")
    out: list[RequestedOutput] = []
    for i, spec in enumerate(value):
        if not isinstance(spec, dict):
            raise V2Error(
                f"outputs[{i}] must be a JSON object, got {json_type(spec)}", field="outputs"
            )
        name = spec.get("name")
        if not isinstance(name, str):
            raise V2Error(
                f"outputs[{i}] needs a 'name' string, got {json_type(name)}", field="outputs"
            )
        if name not in available:
            raise V2Error(
                f"unknown output '{name}'; this model's outputs are: {', '.join(available)}",
                field=name,
            )
        if any(o.name == name for o in out):
            raise V2Error(f"output '{name}' is requested twice", field=name)
        params = check_parameters(spec.get("parameters"), f"output '{name}' parameters")
        if any(key in params for key in SHARED_MEMORY):
            raise V2Error(
                f"output '{name}': shared memory is not supported; outputs come back in the "
                "response",
                field=name,
            )
        binary = params.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise V2Error(
                f"output '{name}': binary_data must be true or false, got {json_type(binary)}",
                field=name,
            )
        count = params.get("classification", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise V2Error(
                f"output '{name}': classification must be a whole number of classes, "
                f"got {json_type(count)}",
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
