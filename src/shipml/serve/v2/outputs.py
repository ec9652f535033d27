"""Running the Model for the outputs a request asks for."""

from __future__ import annotations

from shipml.serve.v2.requests import InferRequest


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
