"""`shipml bundle`: a folder `docker build` turns into an image serving one model version."""

from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri
from shipml.cli.render import console


def register(app: typer.Typer) -> None:
    app.command("bundle")(bundle)


def bundle(
    ref: Annotated[str, typer.Argument(help='"churn@production", "churn/3" or "churn".')],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the bundle to.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the folder even if it is not a bundle.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port the container serves on.")] = 8080,
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra", help='More shipml extras in the image, e.g. "postgres".'),
    ] = None,
    wheel: Annotated[
        Path | None, typer.Option(help="A shipml wheel to ship instead of building one.")
    ] = None,
    registry_uri: RegistryUri = None,
) -> None:
    """Write a deploy bundle: Dockerfile, pinned requirements, shipml wheel, model registry."""
    import json

    from shipml.deploy.bundle import BUNDLE_FILE, write_bundle

    with console.status(f"bundling {ref}…"):
        path = write_bundle(
            registry_uri, ref, out, port=port, extras=("serve", *(extra or [])), force=force,
            wheel=wheel,
        )  # fmt: skip
    facts = json.loads((path / BUNDLE_FILE).read_text(encoding="utf-8"))
    model = facts["model"]
    image, where = facts["image"], facts["serve"]["registry"]
    console.print(
        f"[bold]{model['name']}/{model['version']}[/bold] bundled in {path} "
        f"(serves {facts['serve']['ref']} on port {port}):",
        highlight=False,
    )
    for name in ("Dockerfile", "requirements.txt", facts["wheel"], "registry/", "README.md"):
        console.print(f"  {name}", highlight=False)
    volume = f"{image}-registry"
    console.print("\nnext:", highlight=False)
    console.print(
        f"  docker build -t {image} {path}\n"
        f"  docker volume create {volume}\n"
        f"  docker run --rm -v {volume}:{where} {image} "
        "shipml keys create --name my-app\n"
        f"  docker run -d -p {port}:{port} -v {volume}:{where} {image}",
        highlight=False,
        soft_wrap=True,
    )
