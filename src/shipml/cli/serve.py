"""`shipml serve`: registered models behind a keyed HTTP API (uvicorn)."""

import json
import os
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri

_ENV = "SHIPML_SERVE_CONFIG"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    refs: Annotated[
        list[str], typer.Argument(help='Models: "churn", "churn@production", "fraud/3"...')
    ],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve WITHOUT API keys (logged loudly).")
    ] = False,
    rate: Annotated[float, typer.Option(help="Requests per second per key.")] = 100.0,
    burst: Annotated[int, typer.Option(help="Burst size per key.")] = 200,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body (MB).")] = 5.0,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not keep the prediction log (no monitoring).")
    ] = False,
    pii: Annotated[
        list[str] | None,
        typer.Option(help="A column holding personal data: logged only as a keyed hash."),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser calls from this origin (CORS).")
    ] = None,
    max_explain_rows: Annotated[
        int, typer.Option(help="Most rows one /explain request may send (413 past it).")
    ] = 100,
    heavy_timeout: Annotated[
        float,
        typer.Option(help="Seconds a heavy request (explain, large CSV) may run (503 past it)."),
    ] = 30.0,
    heavy_slots: Annotated[
        int, typer.Option(help="Heavy requests at once per worker (503 + Retry-After past it).")
    ] = 2,
    graceful_timeout: Annotated[
        float, typer.Option(help="Seconds SIGTERM waits for requests in flight before exiting.")
    ] = 10.0,
    access_log: Annotated[
        bool, typer.Option(help="One JSON line per request on stderr (no payloads).")
    ] = True,
    registry_uri: RegistryUri = None,
) -> None:
    """Serve models over HTTP: friendly JSON routes and the Open Inference Protocol v2."""
    import tempfile

    import uvicorn

    from shipml.errors import UsageError
    from shipml.registry.store import Registry

    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if max_explain_rows < 1 or heavy_slots < 1 or not heavy_timeout > 0:
        raise UsageError("--max-explain-rows and --heavy-slots must be >= 1, --heavy-timeout > 0")
    config = {
        "refs": refs, "registry_uri": registry_uri, "auth": not no_auth, "rate_per_s": rate,
        "burst": burst, "max_body_bytes": int(max_body_mb * 1024 * 1024),
        "log_predictions": not no_log, "pii_columns": list(pii or ()),
        "cors_origins": list(cors_origin or ()), "access_log": access_log,
        "max_explain_rows": max_explain_rows, "heavy_timeout_s": heavy_timeout,
        "heavy_slots": heavy_slots,
    }  # fmt: skip
    reg = Registry(registry_uri)
    for ref in refs:  # fail here, with one clear line, rather than in every worker
        reg.open(reg.resolve(ref)).verify_all()
    os.environ[_ENV] = json.dumps(config)
    with tempfile.TemporaryDirectory(prefix="shipml-metrics-") as metrics_dir:
        if workers > 1:  # each worker writes its numbers here; any worker sums them on scrape
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        uvicorn.run("shipml.cli.serve:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level="info", access_log=False,
                    timeout_graceful_shutdown=graceful_timeout,
                    **_http_protocol())  # fmt: skip


def _http_protocol() -> dict:
    """uvicorn's `http=` choice: httptools with shipml's header limit (431), else h11 with the
    same limit (serve/http.py)."""
    from shipml.serve.limits import MAX_HEADERS_BYTES

    try:
        import httptools  # noqa: F401
    except ImportError:
        return {"http": "h11", "h11_max_incomplete_event_size": MAX_HEADERS_BYTES}
    return {"http": "shipml.serve.http:LimitedHttpTools"}


def app_from_env():
    """uvicorn factory: each worker process builds its app from the settings `serve` passed."""
    from shipml.serve.app import create_app

    config = json.loads(os.environ[_ENV])
    _access_log(config.pop("access_log", True))
    return create_app(config.pop("refs"), **config)


def _access_log(enabled: bool) -> None:
    """JSON lines on stderr, exactly as written (no level or time prefix added)."""
    import logging
    import sys

    logger = logging.getLogger("shipml.access")
    logger.propagate = False
    logger.handlers.clear()
    if enabled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.WARNING)
