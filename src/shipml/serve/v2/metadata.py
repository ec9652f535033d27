"""The v2 server and model metadata documents, and class labels as the protocol shows them."""

from __future__ import annotations

import json

import numpy as np

from shipml.serve.v2.datatypes import ADVERTISED

EXTENSIONS = ["binary_tensor_data", "classification"]


def output_names(schema) -> list[str]:
    """The outputs a model with this schema produces."""
    return ["prediction"] if schema.task == "regression" else ["label", "probabilities"]


def class_texts(classes) -> list[str]:
    return [label_text(c) for c in classes or []]


def classes_parameter(classes) -> str:
    return json.dumps(class_texts(classes))


def model_metadata(name: str, versions: list[str], schema, platform: str = "shipml") -> dict:
    """The v2 model metadata object: inputs (one per feature column) and outputs."""
    inputs = [
        {
            "name": col.name,
            "datatype": ADVERTISED.get(col.kind, "BYTES"),
            "shape": [-1],
            "parameters": {"kind": col.kind},
        }
        for col in schema.features
    ]
    parameters: dict = {"task": schema.task, "target": schema.target}
    if schema.task == "regression":
        outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    else:
        classes = classes_parameter(schema.classes)
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


def label_text(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
