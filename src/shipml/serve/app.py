"""The HTTP server: registered models behind API keys (FastAPI).

`create_app(["churn@production"])` serves each reference under its model name. Aliases resolve
at request time (re-checked at most once a second), so `shipml models promote` takes effect
without a restart; a request holds the Model object it started with, so in-flight requests finish
on the old version. Every error is `{"error": "..."}` with a 4xx status; a 500 is a bug.
"""

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from shipml.errors import AuthError, DataError, ModelNotFound, SchemaError, ShipmlError

__all__ = ["create_app", "ModelPool"]

log = logging.getLogger("shipml.serve")
MAX_RECORDS = 10_000
_RESOLVE_TTL_S = 1.0


@dataclass
class _Entry:
    ref: str
    version: int | None = None
    model: object = None
    checked: float = -1e9


@dataclass
class ModelPool:
    """Served models by name; each resolves its registry reference when stale."""

    registry: object
    refs: dict[str, str]
    entries: dict[str, _Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_refs(cls, registry, refs: list[str]) -> "ModelPool":
        from shipml.registry.store import parse_ref

        by_name = {}
        for ref in refs:
            name, _, _ = parse_ref(ref)
            if name in by_name:
                raise ShipmlError(f"model {name!r} is given twice ({by_name[name]}, {ref})")
            by_name[name] = ref
        pool = cls(registry, by_name)
        for name in by_name:
            pool.get(name)  # load now: a bad reference fails at start, not on first request
        return pool

    def get(self, name: str) -> tuple:
        """(model, version) for a served name, reloading when its alias moved."""
        if name not in self.refs:
            known = ", ".join(sorted(self.refs)) or "none"
            raise ModelNotFound(f"model {name!r} is not served here (served: {known})")
        now = time.monotonic()
        entry = self.entries.get(name)
        if entry is not None and now - entry.checked < _RESOLVE_TTL_S:
            return entry.model, entry.version
        with self.lock:
            entry = self.entries.setdefault(name, _Entry(self.refs[name]))
            if now - entry.checked >= _RESOLVE_TTL_S:
                info = self.registry.resolve(entry.ref)
                if info.version != entry.version:
                    from shipml.model import Model

                    started = time.perf_counter()
                    model = Model.read(self.registry.open(info), name=info.name,
                                       version=info.version)  # fmt: skip
                    log.info(
                        "loaded %s in %.0f ms", info.ref, 1000 * (time.perf_counter() - started)
                    )
                    entry.model, entry.version = model, info.version
                entry.checked = now
            return entry.model, entry.version


def create_app(
    refs: list[str],
    *,
    registry=None,
    registry_uri: str | None = None,
    auth: bool = True,
    rate_per_s: float = 100.0,
    burst: int = 200,
    max_body_bytes: int = 5 * 1024 * 1024,
):
    """The FastAPI application serving `refs` ("churn", "churn@production", "churn/3")."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from shipml.registry.store import Registry
    from shipml.serve.keys import KeyStore
    from shipml.serve.ratelimit import RateLimiter

    reg = registry or Registry(registry_uri)
    pool = ModelPool.from_refs(reg, refs)
    keys = KeyStore(reg.engine)
    limiter = RateLimiter(rate_per_s, burst)
    if not auth:
        log.warning("AUTHENTICATION IS OFF (--no-auth): anyone who reaches this port can call it")

    app = FastAPI(title="shipml", version=_version(), docs_url="/docs", redoc_url=None)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ShipmlError)
    async def _shipml_error(_request, exc: ShipmlError):
        if isinstance(exc, AuthError):
            return error(exc.status, str(exc))
        if isinstance(exc, ModelNotFound):
            return error(404, str(exc))
        status = getattr(exc, "status", None) or (422 if isinstance(exc, SchemaError) else 400)
        return error(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_request, exc: Exception):
        log.exception("unhandled error (a bug)")
        return error(500, "internal server error")

    def need(scope: str):
        def check(request: Request):
            if not auth:
                return None
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else None
            key = keys.require(token, scope)
            wait = limiter.check(key.name)
            if wait > 0:
                raise _TooMany(wait)
            return key

        return check

    @app.exception_handler(_TooMany)
    async def _too_many(_request, exc: _TooMany):
        import math

        seconds = exc.args[0]
        return error(429, "rate limit exceeded for this API key",
                     {"Retry-After": str(max(1, math.ceil(seconds)))})  # fmt: skip

    class PredictBody(BaseModel):
        records: list[dict] = Field(min_length=1, max_length=MAX_RECORDS)

    @app.get("/v2/health/live")
    def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready() -> dict:
        for name in pool.refs:
            pool.get(name)
        return {"ready": True}

    @app.get("/v1/models")
    def list_models(_key=Depends(need("predict"))) -> dict:
        out = []
        for name in sorted(pool.refs):
            model, version = pool.get(name)
            out.append({"name": name, "ref": pool.refs[name], "version": version,
                        "task": model.task, "classes": model.classes})  # fmt: skip
        return {"models": out}

    @app.get("/v1/models/{name}")
    def model_info(name: str, _key=Depends(need("predict"))) -> dict:
        model, version = pool.get(name)
        schema = model.schema
        return {
            "name": name,
            "version": version,
            "task": model.task,
            "target": schema.target,
            "classes": model.classes,
            "inputs": [{"name": c.name, "kind": c.kind} for c in schema.features],
            "metrics": {k: v for k, v in model.metrics.items() if isinstance(v, (int, float))},
        }

    @app.post("/v1/models/{name}/predict")
    def predict(name: str, body: PredictBody, _key=Depends(need("predict"))) -> dict:
        model, version = pool.get(name)
        return {"model": name, "version": version, "predictions": _predict(model, body.records)}

    @app.post("/v1/models/{name}/explain")
    def explain(name: str, body: PredictBody, top: int = 5, _key=Depends(need("predict"))):
        model, version = pool.get(name)
        if not 1 <= top <= 50:
            raise DataError("top must be between 1 and 50")
        _check_records(model, body.records)
        return {"model": name, "version": version,
                "explanations": model.explain_records(body.records, top=top)}  # fmt: skip

    _v2_routes(app, pool, need)
    return app


def _v2_routes(app, pool: ModelPool, need) -> None:
    """Open Inference Protocol v2 (KServe / Triton HTTP): the real tritonclient works as is."""
    from fastapi import Depends, Request
    from fastapi.responses import Response

    from shipml.serve import v2

    def versions_of(name: str, version: str | None):
        model, current = pool.get(name)
        if version is not None and version != str(current):
            raise ModelNotFound(f"model {name!r} serves version {current} here, not {version!r}")
        return model, current

    @app.get("/v2")
    def server_meta() -> dict:
        return v2.server_metadata(_version())

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    def model_meta(name: str, version: str | None = None, _key=Depends(need("predict"))):
        model, current = versions_of(name, version)
        return v2.model_metadata(name, [str(current)], model.schema)

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    def model_ready(name: str, version: str | None = None, _key=Depends(need("predict"))):
        versions_of(name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None,
                    _key=Depends(need("predict"))):  # fmt: skip
        import asyncio

        body = await request.body()
        encoding = request.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            body = _decompress(body, encoding)
        header_length = request.headers.get("inference-header-content-length")
        model, current = versions_of(name, version)

        def run():
            parsed = v2.parse_infer_request(body, header_length, model.schema)
            outputs = v2.compute_outputs(model, parsed)
            return v2.build_infer_response(name, str(current), parsed, outputs)

        payload, headers = await asyncio.get_running_loop().run_in_executor(None, run)
        return Response(content=payload, headers=headers)


def _decompress(body: bytes, encoding: str) -> bytes:
    import zlib

    try:
        return zlib.decompress(body, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    except zlib.error as exc:
        raise DataError(f"request body is not valid {encoding} data") from exc


def _check_records(model, records: list[dict]) -> None:
    """Every record names every input column (null is a missing value; an absent key is a
    client bug worth reporting)."""
    needed = [c.name for c in model.schema.features]
    for i, record in enumerate(records):
        absent = [c for c in needed if c not in record]
        if absent:
            shown = ", ".join(repr(c) for c in absent[:5])
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            raise SchemaError(f"records[{i}] has no {shown}{more} (use null for a missing value)")


def _predict(model, records: list[dict]) -> list[dict]:
    import numpy as np

    _check_records(model, records)

    ids = [str(uuid.uuid4()) for _ in records]
    if model.task == "regression":
        values = model.predict(records)
        return [{"id": i, "value": float(v)} for i, v in zip(ids, values)]
    proba = model.predict_proba(records)
    labels = model._labels_from_proba(proba.to_numpy())
    classes = [str(c) for c in proba.columns]
    rounded = np.round(proba.to_numpy(), 6)
    return [
        {"id": i, "label": _plain(lab), "probabilities": dict(zip(classes, map(float, row)))}
        for i, lab, row in zip(ids, labels, rounded)
    ]


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _version() -> str:
    from shipml import __version__

    return __version__


class _BodyLimit:
    """ASGI middleware: 413 for bodies over `max_bytes`, by header or while streaming."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _reject(send, self.max_bytes)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _reject(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


class _TooMany(Exception):
    """Rate limit hit; args[0] = seconds until the key's next token."""


async def _reject(send, limit: int) -> None:
    import json

    body = json.dumps({"error": f"request body over the {limit:,}-byte limit"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
