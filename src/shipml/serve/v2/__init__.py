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

Modules: ``requests`` (parse_infer_request, InferRequest) with ``inputs`` (one input tensor
checked against the Schema), ``outputs`` (compute_outputs), ``responses``
(build_infer_response), ``metadata`` (server and model metadata), ``datatypes`` (datatypes and
their byte encoding), ``errors`` (V2Error).
"""

from shipml.serve.v2.errors import V2Error
from shipml.serve.v2.metadata import model_metadata, output_names, server_metadata
from shipml.serve.v2.outputs import compute_outputs
from shipml.serve.v2.requests import (
    DEFAULT_MAX_BATCH,
    InferRequest,
    RequestedOutput,
    parse_infer_request,
)
from shipml.serve.v2.responses import build_infer_response

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
