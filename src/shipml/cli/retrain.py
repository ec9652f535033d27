"""`shipml retrain`: original data + feedback labels -> a new version, compared side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri
from shipml.cli.render import SUMMARY_METRICS, console, fmt


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain)


def retrain(
    ref: Annotated[str, typer.Argument(help='"churn" (production, else latest) or "churn/3".')],
    data: Annotated[
        Path | None,
        typer.Option(
            help="The original training table (default: as recorded); for a recommender: "
            "the new events, added to the ones it stores and to the clicks and purchases "
            "fed back on its served answers (optional when there are such)."
        ),
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", "-b", help="Seconds (default: as before).")
    ] = None,
    compare_share: Annotated[
        float, typer.Option(help="Newest share of feedback kept out to compare on.")
    ] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    registry_uri: RegistryUri = None,
) -> None:
    """Train a new version on the original data plus labelled feedback; compare it with the
    current version on recent feedback. Promotes nothing."""
    from rich.table import Table

    from shipml.registry.store import Registry
    from shipml.retrain import retrain as run

    result = run(
        ref,
        data=data,
        registry=Registry(registry_uri),
        time_budget=time_budget,
        compare_share=compare_share,
        progress=not as_json,
    )
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
        return
    if getattr(result.model, "task", None) == "answer":
        from shipml.cli.answer import show_retrained

        return show_retrained(result)
    old, new = str(result.current), str(result.new)
    console.print(
        f"[bold]{result.name}/{new}[/bold] trained on {result.rows_original:,} original rows + "
        f"{result.rows_feedback_train:,} feedback rows"
    )
    for title, scores in (
        (f"recent feedback ({result.rows_feedback_compare:,} rows neither model saw)",
         result.recent),
        ("validation (each on its own training data)", result.offline),
    ):  # fmt: skip
        if not scores:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column("metric")
        table.add_column(f"current v{old}", justify="right")
        table.add_column(f"new v{new}", justify="right")
        for key in SUMMARY_METRICS:
            if scores[old].get(key) is not None or scores[new].get(key) is not None:
                table.add_row(key, fmt(scores[old].get(key)), fmt(scores[new].get(key)))
        console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"promote it with: shipml models promote {result.name} {new} --alias production")
