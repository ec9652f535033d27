"""The error tree: every error shipml raises on purpose carries its HTTP status, and the server
answers with it."""

import inspect

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import shipml.errors as errors
from shipml.serve.app import _error_handlers

CLASSES = [getattr(errors, name) for name in errors.__all__]


def test_every_error_is_a_shipml_error_with_a_class_status():
    for cls in CLASSES:
        assert issubclass(cls, errors.ShipmlError), cls
        assert isinstance(cls.status, int) and 400 <= cls.status < 600, cls
    # the server's own errors moved into the tree keep their names where they were raised
    from shipml.data.inflate import InflateLimit
    from shipml.monitor.log import FeedbackError
    from shipml.serve.heavy import HeavyStopped, TooManyRows
    from shipml.serve.limits import TooMany
    from shipml.serve.pool import ModelUnavailable
    from shipml.serve.v2 import V2Error

    moved = [InflateLimit, FeedbackError, HeavyStopped, TooManyRows, TooMany, ModelUnavailable,
             V2Error]  # fmt: skip
    assert all(cls in CLASSES for cls in moved)
    assert inspect.getmodule(TooMany) is errors


CASES = [
    (errors.UsageError("bad --port 0: use 1-65535"), 400, None),
    (errors.DataError("the table is empty"), 400, None),
    (errors.SchemaError("column 'age' expected numeric"), 422, None),
    (errors.ModelNotFound("no model 'x'"), 404, None),
    (errors.AuthError("no API key was sent"), 401, None),
    (errors.AuthError("the key lacks the scope 'feedback'", status=403), 403, None),
    (errors.TooMany(2.2), 429, {"retry-after": "3"}),
    (errors.TooMany(0.01, "too many failed API key attempts"), 429, {"retry-after": "1"}),
    (errors.ModelUnavailable("no version of 'credit' could be loaded"), 503, None),
    (errors.TooManyRows("at most 1,000 rows"), 413, None),
    (errors.HeavyStopped("busy", headers={"Retry-After": "5"}), 503, {"retry-after": "5"}),
    (errors.InflateLimit("inflates past 10 MB"), 413, None),
    (errors.V2Error("input 'x' has no data"), 400, None),
    (errors.V2Error("input 'x' holds infinity", status=422), 422, None),
    (errors.FeedbackError("label is not a class"), 422, None),
    (errors.FeedbackError("no logged prediction has id 'a'", 404), 404, None),
    (errors.FeedbackError("prediction 'a' already has feedback", 409), 409, None),
]


@pytest.mark.parametrize("exc,status,headers", CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_the_server_answers_each_error_with_its_status(exc, status, headers):
    app = FastAPI()
    _error_handlers(app)

    @app.get("/boom")
    def boom():
        raise exc

    res = TestClient(app).get("/boom")
    assert res.status_code == status == exc.status
    assert res.json() == {"error": str(exc)}
    for key, value in (headers or {}).items():
        assert res.headers[key] == value


def test_artifact_errors_are_503_without_the_server_path():
    app = FastAPI()
    _error_handlers(app)

    @app.get("/boom")
    def boom():
        raise errors.ArtifactIntegrityError("model.txt differs", path="/srv/secret/path")

    res = TestClient(app).get("/boom")
    assert res.status_code == 503 and "/srv" not in res.text and "integrity" in res.text


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "{data}", "--target", "credit_risk", "--kind", "age"], "--kind takes"),
        (["serve", "credit", "--workers", "0"], "--workers must be at least 1"),
        (["serve", "credit", "--heavy-slots", "0"], "--heavy-slots must be >= 1"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(args, words, capsys):
    from conftest import GERMAN, run_cli

    code, out, err = run_cli([a.format(data=GERMAN) for a in args], capsys)
    assert code == 2 and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
