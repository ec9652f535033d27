"""`shipml models list|show|promote|rollback` and `shipml report`."""

from __future__ import annotations

from typing import Annotated

import typer

from shipml.cli.options import RegistryUri, registry
from shipml.cli.render import (
    console,
    fmt,
    kv_table,
    metrics_table,
    scope_lines,
    threshold_lines,
)

app = typer.Typer(help="List, inspect, promote and roll back model versions.", no_args_is_help=True)


@app.command("list")
def list_models(registry_uri: RegistryUri = None) -> None:
    """Every model: latest version, number of versions, aliases, main metric."""
    from rich.table import Table

    reg = registry(registry_uri)
    rows = reg.list_models()
    if not rows:
        console.print(f"no models yet in {reg.url} — train one with `shipml train`")
        return
    table = Table()
    for col in ("name", "latest", "versions", "task", "aliases", "metric", "updated"):
        table.add_column(col)
    for r in rows:
        primary = r["metrics"].get("primary")
        table.add_row(
            r["name"],
            str(r["latest"]),
            str(r["versions"]),
            r["task"],
            ", ".join(f"{a}→{v}" for a, v in r["aliases"].items()) or "-",
            f"{primary} {fmt(r['metrics'].get(primary))}" if primary else "-",
            r["updated"].strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help='"churn", "churn/3" or "churn@production".')],
    registry_uri: RegistryUri = None,
) -> None:
    """A version's schema, metrics, lineage and aliases, and the model's version history."""
    from rich.table import Table

    reg = registry(registry_uri)
    info = reg.resolve(ref)
    lineage = info.lineage
    console.print(
        f"[bold]{info.name}/{info.version}[/bold]  {info.task}  "
        f"aliases: {', '.join(info.aliases) or '-'}"
    )
    console.print(
        kv_table(
            {
                "created": info.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "target": info.schema.get("target"),
                "classes": ", ".join(map(str, info.schema.get("classes") or [])) or None,
                "rows": lineage.get("rows"),
                "data": lineage.get("data_source"),
                "data sha256": lineage.get("data_sha256"),
                "seed": lineage.get("seed"),
                "training seconds": lineage.get("duration_s"),
                "libraries": ", ".join(f"{k} {v}" for k, v in lineage.get("libraries", {}).items()),
                "files": str(info.artifact_dir),
            }
        )
    )
    for line in _threshold(reg, info):
        console.print(line, soft_wrap=True, highlight=False)
    console.print(metrics_table(info.metrics, title="validation metrics"))
    schema = Table(title="schema", title_justify="left")
    for col in ("column", "kind", "missing %", "note"):
        schema.add_column(col)
    for col in info.schema["columns"]:
        style = "dim" if col["kind"] in ("id", "ignored") else ""
        schema.add_row(
            col["name"],
            col["kind"],
            fmt(col.get("missing_pct")),
            col.get("note") or "",
            style=style,
        )
    console.print(schema)
    history = Table(title="versions", title_justify="left")
    for col in ("version", "created", "metric", "aliases"):
        history.add_column(col)
    for v in reg.versions(info.name):
        primary = v.metrics.get("primary")
        history.add_row(
            str(v.version),
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{primary} {fmt(v.metrics.get(primary))}",
            ", ".join(v.aliases) or "-",
        )
    console.print(history)


def _threshold(reg, info) -> list[str]:
    """Lines on the decision threshold of a binary model and the out-of-scope decision of a
    classifier (stored in its model.json)."""
    from rich.markup import escape

    from shipml.errors import ShipmlError

    if info.task not in ("binary", "multiclass"):
        return []
    try:
        spec = reg.open(info).read_json("model.json")
    except ShipmlError as exc:
        return [f"[bold]decision threshold:[/bold] unreadable ({escape(str(exc))})"]
    stored = spec.get("info") or {}
    return threshold_lines(spec.get("threshold"), stored.get("threshold")) + scope_lines(
        stored.get("scope")
    )


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None, typer.Argument(help="Version to point the alias at (default: latest).")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias to set.")] = "production",
    registry_uri: RegistryUri = None,
) -> None:
    """Point an alias (default: production) at a version (default: the latest).

    The version must load first (every file matches its manifest, the model parses): servers
    following the alias switch to it within a second."""
    reg = registry(registry_uri)
    info = reg.resolve(name) if version is None else reg.get(name, version)
    version = info.version
    _check_loads(reg, info, f"{name}@{alias}")
    previous = reg.set_alias(name, alias, version)
    was = f" (was {previous})" if previous is not None else ""
    console.print(f"{name}@{alias} → version {version}{was}")


def _check_loads(reg, info, target: str) -> None:
    """ArtifactIntegrityError (exit 2) unless `info` loads as a model."""
    from shipml.errors import ArtifactIntegrityError, ShipmlError
    from shipml.model import load_model

    try:
        reader = reg.open(info)
        reader.verify_all()
        load_model(reader, name=info.name, version=info.version)
    except Exception as exc:  # whatever the reason, a server could not load it either
        why = str(exc) if isinstance(exc, ShipmlError) else f"{type(exc).__name__}: {exc}"
        raise ArtifactIntegrityError(
            f"not moving {target} to version {info.version}: it does not load ({why})"
        ) from exc


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = "production",
    registry_uri: RegistryUri = None,
) -> None:
    """Move an alias back to the version it pointed to before its last promotion."""
    current, target = registry(registry_uri).rollback(name, alias)
    console.print(f"{name}@{alias} → version {target} (rolled back from {current})")


def register_report(root: typer.Typer) -> None:
    root.command("report")(report)


def report(
    ref: Annotated[str, typer.Argument(help='"churn", "churn/3" or "churn@production".')],
    open_: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    registry_uri: RegistryUri = None,
) -> None:
    """Path of a version's training report (HTML)."""
    from shipml.errors import UsageError

    reg = registry(registry_uri)
    info = reg.resolve(ref)
    reader = reg.open(info)
    if "report.html" not in reader.files:
        raise UsageError(f"{info.ref} was trained with --no-report")
    reader.read_text("report.html")  # integrity check: the manifest's sha256, then UTF-8
    path = info.artifact_dir / "report.html"
    console.print(str(path), soft_wrap=True, highlight=False)
    if open_:
        import webbrowser

        webbrowser.open(path.as_uri())
