"""Property-based API test: schemathesis generates requests from the server's own OpenAPI
document (valid and invalid bodies, paths, parameters) and sends them with a valid key holding
every scope. No request may get a 5xx, and every error must be `{"error": "..."}`. At least
1,000 requests; bounded in time (about a minute on the CI machine).

Random path names would only ever meet 404, so most cases are pointed at the served model
("credit", version 1), and the record bodies mix schemathesis' own with real German credit rows
whose cells Hypothesis replaces by arbitrary JSON values.

(schemathesis' pytest plugin does not work with this pytest, so the test drives its Hypothesis
strategies directly: one strategy per API operation.)"""

import pandas as pd
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import GERMAN
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore

EXAMPLES_PER_OPERATION = 100
ROWS = pd.read_csv(GERMAN).drop(columns="credit_risk").head(20).to_dict("records")
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),  # fmt: skip
    max_leaves=5,
)


@st.composite
def _records(draw):
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = dict(draw(st.sampled_from(ROWS)))
        for column in draw(st.sets(st.sampled_from(sorted(row)), max_size=3)):
            if draw(st.booleans()):
                row[column] = draw(_json)
            else:
                del row[column]
        rows.append(row)
    return rows


def _aimed(operation, ids):
    """The operation's cases, mostly aimed at the served model and with real-looking bodies."""

    @st.composite
    def strategy(draw):
        case = draw(operation.as_strategy())
        params = case.path_parameters or {}
        if "name" in params and draw(st.integers(0, 9)) > 0:
            params["name"] = "credit"
            if "version" in params and draw(st.booleans()):
                params["version"] = "1"
        path = operation.path
        if path.endswith(("/predict", "/explain")) and draw(st.booleans()):
            case.body = {"records": draw(_records())}
            if path.endswith("/explain"):
                case.query = {"top": draw(st.integers(-2, 60))}
        if path == "/v1/feedback" and isinstance(case.body, dict) and draw(st.booleans()):
            case.body["prediction_id"] = draw(st.sampled_from(ids))
            if draw(st.booleans()):
                case.body["label"] = draw(st.sampled_from([1, 2, "1", "2", "3", 1.0]))
        if path.endswith("/csv") and draw(st.booleans()):
            rows = draw(_records())
            case.body = pd.DataFrame(rows).to_csv(index=False)
            case.media_type = "text/csv"
        return case

    return strategy()


def _fuzz(operation, label: str, ids: list[str], headers: dict) -> list[int]:
    """Send the operation's generated cases; the status codes seen."""
    codes: list[int] = []

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=_aimed(operation, ids))
    def check(case):
        response = case.call(headers=headers)
        codes.append(response.status_code)
        assert response.status_code < 500, (label, case.body, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            assert list(body) == ["error"] and isinstance(body["error"], str), (label, body)

    check()
    return codes


def test_generated_requests_never_get_5xx(credit_model, registry_dir):
    from fastapi.testclient import TestClient

    reg = Registry(registry_dir)
    key = KeyStore(reg.engine).create("schemathesis", ["predict", "feedback", "admin"])
    app = create_app(["credit"], registry=reg, rate_per_s=1e6, burst=1_000_000)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:  # real prediction ids for the feedback route
        res = client.post("/v1/models/credit/predict", json={"records": ROWS}, headers=headers)
        ids = [p["id"] for p in res.json()["predictions"]]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    sent: dict[str, list[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12  # v1, v2, feedback, csv, health...

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        sent[label] = _fuzz(operation, label, ids, headers)

    print({k: (len(v), sorted(set(v))) for k, v in sent.items()})
    assert sum(len(c) for c in sent.values()) >= 1000, {k: len(v) for k, v in sent.items()}
    for label in ("POST /v1/models/{name}/predict", "POST /v1/models/{name}/predict/csv",
                  "POST /v1/models/{name}/explain", "POST /v1/feedback"):  # fmt: skip
        assert 200 in sent[label] and any(400 <= c < 500 for c in sent[label]), label
