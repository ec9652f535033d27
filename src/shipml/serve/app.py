"""The HTTP server: registered models behind API keys (FastAPI).

`create_app(["churn@production"])` serves each reference under its model name (see pool.py for
alias hot-swap). Routes: friendly JSON (`/v1/...`, this module), a CSV upload for batch scoring,
feedback labels, the Open Inference Protocol v2 (oip.py), health and Prometheus `/metrics`
(metrics.py). Every error is `{"error": "..."}` with a 4xx status; a 500 is a bug and hides its
details. Predictions are appended to the prediction log (monitor/log.py) with PII columns hashed.
"""

import logging

from shipml.echo import echo
from shipml.errors import (
    ArtifactIntegrityError,
    AuthError,
    DataError,
    ModelNotFound,
    SchemaError,
    ShipmlError,
    TooMany,
)
from shipml.serve.answer import add_answer_routes, answer_info, is_answer, store_answer_feedback
from shipml.serve.images import (
    IMAGE_CHUNK,
    UPLOAD_BODY,
    UploadRoute,
    decode_records,
    explain_images_route,
    image_columns,
    score_images,
    upload_field,
    upload_records,
)
from shipml.serve.limits import BodyLimit, HeaderLimit
from shipml.serve.pool import ModelPool
from shipml.serve.predict import check_records, json_field
from shipml.serve.recommend import (
    TASK,
    add_recommend_routes,
    check_tabular,
    recommender_info,
    store_event,
)

__all__ = ["create_app", "ModelPool"]

log = logging.getLogger("shipml.serve")
MAX_RECORDS = 10_000
MAX_EXPLAIN_ROWS = 100  # ~45 ms a row for a text model: a few seconds per request
EXPLAIN_CHUNK = 10  # rows per step of a heavy request: how soon it can stop
CSV_HEAVY_BYTES = 256 * 1024  # a CSV body past this is a heavy request (slot, deadline, stops)
_CSV_TYPES = ("text/csv", "text/plain", "application/csv", "text/tab-separated-values")


def create_app(
    refs: list[str],
    *,
    registry=None,
    registry_uri: str | None = None,
    auth: bool = True,
    rate_per_s: float = 100.0,
    burst: int = 200,
    max_body_bytes: int = 5 * 1024 * 1024,
    log_predictions: bool = True,
    pii_columns: list[str] | tuple[str, ...] = (),
    cors_origins: list[str] | tuple[str, ...] = (),
    failed_auth_per_s: float = 1.0,
    failed_auth_burst: int = 10,
    max_explain_rows: int = MAX_EXPLAIN_ROWS,
    heavy_timeout_s: float = 30.0,
    heavy_slots: int = 2,
):
    """The FastAPI application serving `refs` ("churn", "churn@production", "churn/3").

    `pii_columns` adds to the columns the model's schema already marks as personal data; their
    values are stored in the prediction log only as keyed hashes. CORS stays off unless
    `cors_origins` lists the allowed origins. A client address may fail to authenticate
    `failed_auth_burst` times at once, then `failed_auth_per_s` times a second on average;
    past that it gets 429 (with Retry-After) before its key is even looked up.

    Heavy requests (explain, CSV bodies over 256 KiB; see heavy.py): at most `heavy_slots` at
    once per worker (else 503 + Retry-After), each stopped after `heavy_timeout_s` seconds
    (503), when its client disconnects or when the server shuts down; explain takes at most
    `max_explain_rows` rows (else 413).
    """
    from fastapi import FastAPI

    from shipml.registry.store import Registry
    from shipml.serve.heavy import Heavy
    from shipml.serve.keys import KeyStore
    from shipml.serve.metrics import Metrics
    from shipml.serve.paths import path_scrubber
    from shipml.serve.predict import Predictor
    from shipml.serve.ratelimit import RateLimiter

    reg = registry or Registry(registry_uri)
    metrics = Metrics()

    pool = _pool(reg, refs, metrics)
    keys = KeyStore(reg.engine)
    limiter = RateLimiter(rate_per_s, burst)
    failures = RateLimiter(failed_auth_per_s, failed_auth_burst)
    predictor = Predictor(metrics, _prediction_log(reg, log_predictions, metrics),
                          _hashers(pii_columns))  # fmt: skip
    if not auth:
        log.warning("AUTHENTICATION IS OFF (--no-auth): anyone who reaches this port can call it")

    heavy = Heavy(heavy_slots, heavy_timeout_s)
    app = FastAPI(title="shipml", version=_version(), docs_url="/docs", redoc_url=None,
                  lifespan=_lifespan(heavy, predictor))  # fmt: skip
    _middleware(app, cors_origins, max_body_bytes, metrics)
    app.state.pool, app.state.predictor, app.state.heavy = pool, predictor, heavy
    _error_handlers(app, path_scrubber(reg))
    need = _auth(auth, keys, limiter, failures)
    _routes(app, pool, predictor, need, metrics, heavy, max_explain_rows, max_body_bytes)

    from shipml.serve.oip import add_v2_routes

    add_v2_routes(app, pool, need, predictor, _version())
    return app


def _pool(reg, refs: list[str], metrics) -> ModelPool:
    """The models of `refs`; each load's seconds and each failed load counted in `metrics`."""

    def loaded(name: str, version: int, seconds: float) -> None:
        metrics.load_seconds.labels(name, str(version)).set(seconds)

    def failed(name: str, version: int) -> None:
        metrics.load_failures.labels(name, str(version)).inc()

    return ModelPool.from_refs(reg, refs, on_load=loaded, on_failure=failed)


def _lifespan(heavy, predictor):
    """Start: heavy work may run (again) and SIGTERM stops it; stop: heavy work stops within a
    chunk and the prediction log writes what is queued."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        heavy.stopping.clear()  # the app may start again after a shutdown (tests, reloads)
        heavy.watch_signals()  # SIGTERM stops heavy work within a chunk
        yield
        heavy.stopping.set()
        if predictor.log is not None:  # write what is queued before the process exits
            predictor.log.flush(timeout=10.0)

    return lifespan


def _middleware(app, cors_origins, max_body_bytes: int, metrics) -> None:
    from shipml.serve.metrics import ObserveMiddleware

    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    app.add_middleware(UploadRoute)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(HeaderLimit)
    app.add_middleware(ObserveMiddleware, metrics=metrics)


def _prediction_log(reg, enabled: bool, metrics):
    if not enabled:
        log.warning("the prediction log is off: `shipml monitor` will have nothing to check")
        return None
    from shipml.monitor.log import PredictionLog

    return PredictionLog(reg.engine, on_drop=metrics.log_dropped.inc)


def _hashers(extra_columns):
    """model -> PiiHasher for the model's PII columns plus `extra_columns` (cached per model)."""
    from shipml.serve.pii import PiiHasher, load_secret

    secret = load_secret()
    cache: dict[int, PiiHasher] = {}

    def hasher_for(model) -> PiiHasher:
        hasher = cache.get(id(model))
        if hasher is None:
            schema = getattr(model, "schema", None)  # a recommender hashes its user ids
            marked = {c.name for c in schema.columns if c.pii} if schema else {"user"}
            hasher = cache[id(model)] = PiiHasher(marked | set(extra_columns), secret)
        return hasher

    return hasher_for


def _error_handlers(app, scrub=str) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def error(status: int, message: str, headers: dict | None = None):
        return error_response(status, scrub(message), headers)

    @app.exception_handler(ShipmlError)
    async def _shipml_error(_request, exc: ShipmlError):
        # Every error carries its status (TooMany 429 with Retry-After, SchemaError 422, ...).
        message = str(exc)
        if isinstance(exc, ArtifactIntegrityError):  # the server's files, not the request
            log.error("%s", exc)
            message = "the model's files failed their integrity check (see the server log)"
        return error(exc.status, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if where == "body" and kind != "application/json":
            return error(
                415 if kind else 422,
                "send the body as JSON with the header "
                f"Content-Type: application/json (got {echo(kind) if kind else 'no content type'})",
            )
        if first.get("type") == "json_invalid":
            return error(422, _json_problem(exc.body, first))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_request, exc: Exception):
        log.exception("unhandled error (a bug)")
        return error(500, "internal server error")


MAX_ERROR_CHARS = 2000


def error_response(status: int, message: str, headers: dict | None = None):
    """`{"error": message}`, always encodable: ASCII JSON (a lone surrogate in an echo is
    escaped, never a failed answer), the message cut at MAX_ERROR_CHARS as a last guard."""
    import json

    from fastapi.responses import Response

    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 20] + "... (cut)"
    body = json.dumps({"error": message}, ensure_ascii=True)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _json_problem(body, error: dict) -> str:
    """FastAPI's "JSON decode error" said with the reason and where: line L column C."""
    reason = (error.get("ctx") or {}).get("error") or "invalid JSON"
    loc = error.get("loc") or ()
    offset = loc[-1] if loc and isinstance(loc[-1], int) else None
    if offset is None:
        return f"the body is not valid JSON: {reason}"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    before = text[:offset]  # json's position counts characters of the decoded text
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f"the body is not valid JSON: {reason} at line {line} column {column}"


def _auth(enabled: bool, keys, limiter, failures):
    """`Depends(need("predict"))`: the API key of the request, checked for scope and rate.

    A client address over its failed-login limit (`failures`) gets 429 before anything else; each
    401 for a request that sent an Authorization header takes one of its tokens. (Behind a proxy
    all clients share its address: run the proxy's own limits, or uvicorn --proxy-headers.)
    A key verified in the last second is checked on the event loop (a dictionary lookup); any
    other goes to a worker thread: its database lookup must not stall the loop (SQLite may wait
    for a lock, PostgreSQL is a network round trip)."""
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool

    def need(scope: str):
        async def check(request: Request):
            if not enabled:
                return None
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else None
            if header.strip() and token is None:
                raise AuthError('send the key as "Authorization: Bearer <key>"')
            client = request.client.host if request.client else "unknown"
            wait = failures.peek(client)
            if wait > 0:
                raise TooMany(wait, "too many failed API key attempts from this address")
            try:
                if keys.cached(token):
                    key = keys.require(token, scope)
                else:
                    key = await run_in_threadpool(keys.require, token, scope)
            except AuthError as exc:
                if exc.status == 401 and header:
                    failures.check(client)
                raise
            request.state.key = key.name
            wait = limiter.check(key.name)
            if wait > 0:
                raise TooMany(wait)
            return key

        return check

    return need


def _routes(app, pool, predictor, need, metrics, heavy, max_explain_rows: int,
            max_body_bytes: int) -> None:  # fmt: skip
    def served(request, name: str):
        model, version = pool.get(name)
        request.state.model, request.state.version = name, version
        return model, version

    predict_body, feedback_body = _bodies()
    _health_routes(app, pool, metrics)
    _model_routes(app, pool, need, served)
    _predict_routes(app, predictor, need, served, heavy, predict_body)
    _csv_route(app, predictor, need, served, heavy, max_body_bytes)
    _explain_route(app, need, served, heavy, predict_body, max_explain_rows)
    _feedback_route(app, pool, predictor, need, feedback_body)
    add_recommend_routes(app, pool, predictor, need, served, _json)
    add_answer_routes(app, predictor, need, served, _json)


def _bodies():
    """The JSON bodies of /predict and /explain (PredictBody) and of /feedback (FeedbackBody)."""
    from typing import Annotated, Literal

    from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

    class PredictBody(BaseModel):
        records: list[dict] = Field(min_length=1, max_length=MAX_RECORDS)

    class FeedbackBody(BaseModel):
        prediction_id: StrictStr = Field(min_length=1, max_length=36)
        label: StrictStr | int | float | bool | None = None  # None: said in words below
        # a recommendation's feedback: a click or purchase on an item (serve/recommend.py)
        item: Annotated[StrictStr, Field(min_length=1, max_length=200)] | StrictInt | None = None
        event: Literal["click", "purchase"] | None = None
        # an answer's feedback: did it help, or which FAQ entry was right (serve/answer.py)
        helpful: StrictBool | None = None
        entry: Annotated[StrictStr, Field(min_length=1, max_length=200)] | StrictInt | None = None

    return PredictBody, FeedbackBody


def _health_routes(app, pool, metrics) -> None:
    from fastapi.responses import Response

    @app.get("/v2/health/live")
    def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready() -> dict:
        for name in pool.refs:
            pool.get(name)
        return {"ready": True}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        payload, content_type = metrics.exposition()
        return Response(content=payload, media_type=content_type)


def _model_routes(app, pool, need, served) -> None:
    from fastapi import Depends, Request

    @app.get("/v1/models")
    def list_models(_key=Depends(need("predict"))) -> dict:
        out = []
        for name in sorted(pool.refs):
            model, version = pool.get(name)
            out.append({"name": name, "ref": pool.refs[name], "version": version,
                        "task": _task(model),
                        "classes": getattr(model, "classes", None)})  # fmt: skip
        return {"models": out}

    @app.get("/v1/models/{name}")
    def model_info(request: Request, name: str, _key=Depends(need("predict"))) -> dict:
        model, version = served(request, name)
        if is_answer(model):
            return _json(answer_info(name, version, model))
        if model.task == TASK:
            return _json(recommender_info(name, version, model))
        schema = model.schema
        return _json(
            {  # a metric may be NaN (undefined): null, never a failed answer
                "name": name,
                "version": version,
                "task": model.task,
                "target": schema.target,
                "classes": model.classes,
                "inputs": [{"name": c.name, "kind": c.kind} for c in schema.features],
                "metrics": {k: v for k, v in model.metrics.items() if isinstance(v, (int, float))},
            }
        )


def _predict_routes(app, predictor, need, served, heavy, PredictBody) -> None:
    from fastapi import Depends, Request
    from starlette.concurrency import run_in_threadpool

    @app.post("/v1/models/{name}/predict")
    async def predict(request: Request, name: str, body: PredictBody,
                      key=Depends(need("predict"))):  # fmt: skip
        model, version = served(request, name)
        check_tabular(model, name)
        records = body.records
        if image_columns(model):  # base64 images: decoded, checked, scored as a heavy job
            rows = await score_images(request, heavy, predictor, (name, model, version),
                                      records, _key_name(key), json_field)  # fmt: skip
            return _json({"model": name, "version": version, "predictions": rows})
        request.state.rows = len(records)
        args = (name, model, version, records, _key_name(key))
        if predictor.quick(model, len(records)):  # ~1 ms: first come, first served on the loop
            rows = predictor.predict(*args)
        else:
            rows = await run_in_threadpool(predictor.predict, *args)
        # plain JSON values already: skip FastAPI's generic encoder (10x slower on 100 rows)
        return _json({"model": name, "version": version, "predictions": rows})

    @app.post("/v1/models/{name}/predict/upload", openapi_extra=UPLOAD_BODY)
    async def predict_upload(request: Request, name: str, key=Depends(need("predict"))):
        """Images uploaded as multipart/form-data (also reached by a multipart POST to
        /predict): one file per row, other form fields are the other inputs."""
        model, version = served(request, name)
        check_tabular(model, name)
        records = await upload_records(request, model)
        rows = await score_images(request, heavy, predictor, (name, model, version), records,
                                  _key_name(key), upload_field)  # fmt: skip
        return _json({"model": name, "version": version, "predictions": rows})


def _csv_route(app, predictor, need, served, heavy, max_body_bytes: int) -> None:
    from fastapi import Depends, Request
    from fastapi.responses import Response

    @app.post(
        "/v1/models/{name}/predict/csv",
        openapi_extra={"requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}}}}},
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )  # fmt: skip
    async def predict_csv(request: Request, name: str, key=Depends(need("predict"))):
        """Batch scoring: a CSV body in, the same rows out with prediction columns added."""
        import asyncio

        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in _CSV_TYPES:
            raise DataError(f"send the table as text/csv (got content-type {echo(kind or 'none')})")
        raw = await request.body()
        model, version = served(request, name)
        check_tabular(model, name)

        def run(job=None) -> bytes:
            return _score_csv(raw, name, model, version, predictor, _key_name(key), request, job,
                              max_body_bytes)  # fmt: skip

        if len(raw) > CSV_HEAVY_BYTES or image_columns(model):  # heavy: a slot, a deadline
            payload = await heavy.run(request, run)
        else:
            payload = await asyncio.get_running_loop().run_in_executor(None, run)
        return Response(content=payload, media_type="text/csv; charset=utf-8")


def _explain_route(app, need, served, heavy, PredictBody, max_explain_rows: int) -> None:
    from fastapi import Depends, Query, Request

    @app.post("/v1/models/{name}/explain")
    async def explain(request: Request, name: str, body: PredictBody,
                      top: int = Query(5, ge=1, le=50, description="Reasons per row."),
                      _key=Depends(need("predict"))):  # fmt: skip
        """A heavy route (see create_app): at most `max_explain_rows` rows, done in chunks."""
        model, version = served(request, name)
        check_tabular(model, name)
        records = body.records
        if image_columns(model):  # a heat map per image
            explanations = await explain_images_route(request, heavy, model, records)
            return _json({"model": name, "version": version, "explanations": explanations})
        heavy.check_rows(len(records), max_explain_rows, "explain", "--max-explain-rows")
        check_records(model, records)
        request.state.rows = len(records)

        def part(rows: list[dict]) -> list[dict]:
            return model.explain_records(rows, top=top)

        explanations = await heavy.run(request, lambda job: job.map(records, part, EXPLAIN_CHUNK))
        return _json({"model": name, "version": version, "explanations": explanations})


def _feedback_route(app, pool, predictor, need, FeedbackBody) -> None:
    from fastapi import Depends, Request

    @app.post("/v1/feedback")
    def feedback(request: Request, body: FeedbackBody, key=Depends(need("feedback"))) -> dict:
        """The true label (or value) for a prediction id the server returned; for a
        recommendation, a click or purchase on an item (`item` and `event`); for an answer,
        `helpful` (true or false) or the right `entry`."""
        if body.helpful is not None or body.entry is not None:
            return store_answer_feedback(pool, predictor, body, _key_name(key), _retry_unflushed)
        if body.item is not None or body.event is not None:
            return store_event(predictor, body, _key_name(key), _retry_unflushed)
        if body.label is None:
            raise SchemaError("label is required: the true class or value for the prediction")
        return _store_feedback(pool, predictor, body.prediction_id, body.label, _key_name(key))


def _key_name(key) -> str | None:
    return key.name if key is not None else None


def _task(model) -> str | None:
    return "answer" if is_answer(model) else getattr(model, "task", None)


def _json(content: dict):
    import json

    from fastapi.responses import Response

    try:
        body = json.dumps(content, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a non-finite number: null, as everywhere else
        from shipml.model import json_safe

        body = json.dumps(json_safe(content), separators=(",", ":"))
    return Response(content=body.encode("utf-8"), media_type="application/json")


def _score_csv(raw: bytes, name, model, version, predictor, key, request, job=None,
               max_bytes: int | None = None) -> bytes:  # fmt: skip
    """Score a CSV body; with a heavy `job`, in chunks it can stop between (heavy.py)."""
    import io

    from shipml.data.io import read_csv_bytes
    from shipml.predictions import predictions_table
    from shipml.serve.predict import csv_field

    frame = read_csv_bytes(raw, "the CSV body", max_bytes=max_bytes)
    if len(frame) > MAX_RECORDS * 10:
        raise DataError(f"the CSV has {len(frame):,} rows; send at most {MAX_RECORDS * 10:,}")
    # empty cells are None (missing), as JSON null: NaN is left for nothing but missing floats
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    request.state.rows = len(records)
    records = decode_records(model, records, csv_field)  # base64 image cells, checked
    frame = frame.drop(columns=image_columns(model))  # not echoed back
    check_records(model, records, csv_field)  # all rows first: errors name the CSV's row

    def score(part: list[dict]) -> list[dict]:
        return predictor.predict(name, model, version, part, key, where=None)  # checked above

    rows = score(records) if job is None else job.map(records, score, _csv_chunk(model))
    classes = model.classes or []
    proba = [[r["probabilities"][str(c)] for c in classes] for r in rows] if classes else None
    out = predictions_table(frame, [r.get("label", r.get("value")) for r in rows], proba,
                            classes, ids=[r["id"] for r in rows])  # fmt: skip
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def _csv_chunk(model) -> int:
    """Rows per step of a large CSV batch: text models embed each row (slow), others do not."""
    if image_columns(model):
        return IMAGE_CHUNK
    return 100 if any(c.kind == "text" for c in model.schema.features) else 5000


def _store_feedback(pool, predictor, prediction_id: str, label, key: str | None) -> dict:
    from shipml.monitor.log import add_feedback

    if predictor.log is None:
        raise DataError("this server does not log predictions (--no-log), so it takes no feedback")

    def check(model_name: str, version: int, value):
        try:
            model, _ = pool.get(model_name)
        except ModelNotFound:
            return value  # served elsewhere: store as sent
        return _feedback_label(model, value)

    engine = predictor.log.engine
    return _retry_unflushed(
        predictor, lambda: add_feedback(engine, prediction_id, label, key_name=key, check=check)
    )


def _retry_unflushed(predictor, store):
    """`store()`, tried again (up to 3 times) while the prediction it names is not found: it
    may still be in the log's write queue."""
    import time

    from shipml.monitor.log import FeedbackError

    for attempt in range(3):
        try:
            return store()
        except FeedbackError as exc:
            if exc.status != 404 or attempt == 2:
                raise
            predictor.log.flush(timeout=1.0)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _feedback_label(model, value):
    from shipml.data.schema import as_category
    from shipml.echo import echo
    from shipml.monitor.log import FeedbackError

    if is_answer(model):
        raise FeedbackError(
            'this prediction is an answer: send "helpful" (true or false) or the right "entry" '
            "id instead of a label",
            422,
        )
    if model.task == TASK:
        raise FeedbackError(
            'this prediction is a recommendation: send "item" (the item clicked or bought) and '
            '"event" ("click" or "purchase") instead of a label',
            422,
        )
    if model.task == "regression":
        if isinstance(value, bool):
            raise FeedbackError("label must be a number for this regression model", 422)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise FeedbackError(f"label must be a number, got {echo(value)}", 422) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise FeedbackError("label must be a finite number", 422)
        return number
    by_text = {as_category(c): c for c in model.classes}
    match = by_text.get(as_category(value))
    if match is None:
        known = ", ".join(echo(c, 60) for c in model.classes[:20])
        more = f" and {len(model.classes) - 20} more" if len(model.classes) > 20 else ""
        raise FeedbackError(
            f"label {echo(value)} is not one of the model's classes ({known}{more})", 422
        )
    return match.item() if hasattr(match, "item") else match


def _version() -> str:
    from shipml import __version__

    return __version__
