"""Open Inference Protocol v2 against a real server, with the real tritonclient, unmodified."""

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

from conftest import GERMAN, start_server
from shipml.registry.store import Registry
from shipml.serve.keys import KeyStore


@pytest.fixture(scope="module")
def server(credit_model, registry_dir):
    key = KeyStore(Registry(registry_dir).engine).create("triton-test", ["predict"])
    proc, base = start_server(registry_dir, "credit")
    yield (
        th.InferenceServerClient(url=base.removeprefix("http://")),
        {"Authorization": f"Bearer {key}"},
    )
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err


def inputs_for(frame: pd.DataFrame, schema, binary: bool):
    out = []
    for col in schema.features:
        values = frame[col.name]
        if col.kind == "numeric":
            arr, dtype = values.to_numpy(dtype=np.float64), "FP64"
        else:
            arr, dtype = values.astype(str).to_numpy(dtype=object), "BYTES"
        tensor = th.InferInput(col.name, [len(arr)], dtype)
        tensor.set_data_from_numpy(arr, binary_data=binary)
        out.append(tensor)
    return out


def test_health_metadata_and_ready(server, credit_model):
    client, headers = server  # tritonclient writes into the dict it is given: pass copies
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("credit", headers=dict(headers))
    meta = client.get_model_metadata("credit", headers=dict(headers))
    assert meta["name"] == "credit" and meta["versions"] == ["1"]
    assert {i["name"] for i in meta["inputs"]} == {c.name for c in credit_model.schema.features}


@pytest.mark.parametrize("binary", [True, False])
def test_infer_matches_the_model(server, credit_model, binary):
    client, headers = server  # tritonclient writes into the dict it is given: pass copies
    frame = pd.read_csv(GERMAN).drop(columns="credit_risk").head(7)
    outputs = [th.InferRequestedOutput("probabilities", binary_data=binary),
               th.InferRequestedOutput("label", binary_data=binary)]  # fmt: skip
    result = client.infer("credit", inputs_for(frame, credit_model.schema, binary),
                          outputs=outputs, headers=dict(headers))  # fmt: skip
    np.testing.assert_allclose(result.as_numpy("probabilities"),
                               credit_model.predict_proba(frame).to_numpy(), atol=1e-9)  # fmt: skip
    # binary BYTES come back as bytes, JSON BYTES as str (tritonclient)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == [str(v) for v in credit_model.predict(frame)]


def test_errors_reach_the_client_as_messages(server, credit_model):
    client, headers = server  # tritonclient writes into the dict it is given: pass copies
    frame = pd.read_csv(GERMAN).drop(columns="credit_risk").head(2)
    tensors = inputs_for(frame, credit_model.schema, True)[1:]  # first input missing
    with pytest.raises(InferenceServerException, match="checking_status"):
        client.infer("credit", tensors, headers=dict(headers))
    with pytest.raises(InferenceServerException):
        client.infer("credit", inputs_for(frame, credit_model.schema, True))  # no key: 401
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("ghost", headers=dict(headers))
