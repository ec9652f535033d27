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
    registry_uri: RegistryUri = None,
) -> None:
    """Serve models over HTTP: friendly JSON routes and the Open Inference Protocol v2."""
    import uvicorn

    from shipml.errors import ShipmlError
    from shipml.registry.store import Registry

    if workers < 1:
        raise ShipmlError("--workers must be at least 1")
    config = {
        "refs": refs, "registry_uri": registry_uri, "auth": not no_auth, "rate_per_s": rate,
        "burst": burst, "max_body_bytes": int(max_body_mb * 1024 * 1024),
    }  # fmt: skip
    reg = Registry(registry_uri)
    for ref in refs:  # fail here, with one clear line, rather than in every worker
        reg.resolve(ref)
    os.environ[_ENV] = json.dumps(config)
    uvicorn.run("shipml.cli.serve:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="info", access_log=False)  # fmt: skip


def app_from_env():
    """uvicorn factory: each worker process builds its app from the settings `serve` passed."""
    from shipml.serve.app import create_app

    config = json.loads(os.environ[_ENV])
    return create_app(config.pop("refs"), **config)
