"""`shipml keys create|list|revoke`: API keys for the server, stored hashed in the registry."""

from typing import Annotated

import typer

from shipml.cli.options import RegistryUri, registry
from shipml.cli.render import console

app = typer.Typer(help="Create, list and revoke API keys for `shipml serve`.", no_args_is_help=True)


def _store(registry_uri):
    from shipml.serve.keys import KeyStore

    return KeyStore(registry(registry_uri).engine)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who uses the key, e.g. mobile-app.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="predict, feedback or admin (repeatable; default predict)."),
    ] = None,
    registry_uri: RegistryUri = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    secret = _store(registry_uri).create(name, scope or ["predict"])
    console.print(f"[bold]{name}[/bold] ({', '.join(scope or ['predict'])}): store it now, "
                  "it is not shown again:", highlight=False)  # fmt: skip
    console.print(secret, highlight=False, soft_wrap=True)


@app.command("list")
def list_keys(registry_uri: RegistryUri = None) -> None:
    """Keys with their scopes and state (never the secrets)."""
    from rich.table import Table

    table = Table()
    for col in ("name", "prefix", "scopes", "created", "last used", "state"):
        table.add_column(col)
    for key in _store(registry_uri).list():
        table.add_row(
            key.name, key.prefix, ",".join(key.scopes), f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
            "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d}",
        )  # fmt: skip
    console.print(table)


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Name of the key to revoke.")],
    registry_uri: RegistryUri = None,
) -> None:
    """Revoke a key (a running server stops accepting it within a second)."""
    _store(registry_uri).revoke(name)
    console.print(f"revoked {name}")
