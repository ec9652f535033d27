"""Encoding a v2 inference response: output tensors (plain, or top-k classes) as JSON or as
a JSON header followed by binary tensors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from shipml.serve.v2.datatypes import tensor_bytes, tensor_json
from shipml.serve.v2.metadata import class_texts, classes_parameter, label_text
from shipml.serve.v2.requests import InferRequest, RequestedOutput


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
            raw = tensor_bytes(data, tensor["datatype"])
            tensor.setdefault("parameters", {})["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            tensor["data"] = tensor_json(data, tensor["datatype"])
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


def _output_tensor(req: RequestedOutput, value, classes) -> tuple[dict, np.ndarray]:
    if req.name == "label":
        labels = np.asarray(value, dtype=object).reshape(-1)
        data = np.array([label_text(v) for v in labels], dtype=object)
        return {"name": "label", "datatype": "BYTES", "shape": [len(data)]}, data
    if req.name == "probabilities":
        if isinstance(value, pd.DataFrame):
            classes = list(value.columns)
            value = value.to_numpy(dtype=np.float64)
        proba = np.asarray(value, dtype=np.float64)
        if proba.ndim != 2:
            raise ValueError(f"probabilities must be 2-D [N, k], got shape {proba.shape}")
        params = {"classes": classes_parameter(classes)} if classes is not None else {}
        if req.classification:
            data = _top_classes(proba, req.classification, class_texts(classes))
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
