"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

RegistryUri = Annotated[
    str | None,
    typer.Option(
        "--registry-uri",
        envvar="SHIPML_REGISTRY_URI",
        help="Registry: a folder, or a SQLAlchemy URL (sqlite:///..., postgresql+psycopg://...). "
        "Default: ~/.shipml (SHIPML_HOME).",
        show_default=False,
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", hidden=True)]


def registry(uri: str | None):
    from shipml.registry.store import Registry

    return Registry(uri)
