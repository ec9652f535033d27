"""`shipml monitor`: data drift, prediction drift and live metrics of a served model.

Exit codes, for cron jobs and CI: 0 no drift (or no prediction in the window: nothing to check),
1 drift detected (dataset drift or prediction drift), 2 a user error (unknown model, a version
without drift reference, a bad --since).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri, registry
from shipml.cli.render import console, fmt

_SHOWN_COLUMNS = 10


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)


def monitor(
    name: Annotated[
        str,
        typer.Argument(help='Model: "churn", "churn/3" or "churn@production".'),
    ],
    since: Annotated[
        str, typer.Option(help="Start of the window: 7d, 12h, 30m, 2w or an ISO date.")
    ] = "7d",
    until: Annotated[
        str | None,
        typer.Option(
            help="End of the window (same forms as --since). Default: now.", show_default=False
        ),
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            help="Check this version (default: the newest one that logged predictions in the "
            "window; each version is compared with its own training data).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the HTML and JSON reports.")
    ] = Path("shipml-reports"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    registry_uri: RegistryUri = None,
) -> None:
    """Compare recent predictions with the training data: drift per column, prediction drift and
    live metrics from feedback. Writes monitor-NAME-TIME.html and .json. A recommender: hit
    rate and CTR of its answers (clicks and purchases sent to /v1/feedback); no drift tests.
    An answer model: answer rate, hand-over rate, helpful share and the most frequent
    unanswered questions grouped by meaning (the FAQ entries to write next).

    Exit code 0: no drift, or no prediction in the window (nothing to check); 1: drift
    detected; 2: an error (unknown model, a version without drift reference, a bad option).
    """
    from shipml.errors import UsageError
    from shipml.files import atomic_write
    from shipml.monitor.check import monitor as check

    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file; give a folder for the reports")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = name.replace("/", "-v").replace("@", "-")
    html_path = output / f"monitor-{base}-{stamp}.html"
    json_path = html_path.with_suffix(".json")
    result = check(
        registry(registry_uri), name, since=since, until=until, version=version, report=html_path
    )
    result["json_path"] = str(json_path)
    text = json.dumps(result, indent=1, allow_nan=False)
    atomic_write(json_path, text + "\n")
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        _print(result)
    if result["drift_detected"]:
        raise typer.Exit(1)


def _print_recommendations(result: dict) -> None:
    """Hit rate, CTR and counts of a recommender's answers, by fallback."""
    from rich.table import Table

    s = result["recommendations"]
    table = Table(title="recommendation answers", title_justify="left")
    for head in ("answers", "count", "hit rate", "CTR", "purchases"):
        table.add_column(head, justify="left" if head == "answers" else "right")
    table.add_row("all", f"{s['n_answers']:,}", _share(s["hit_rate"]), _share(s["ctr"]),
                  _share(s["purchase_rate"]))  # fmt: skip
    for kind, part in s["by_fallback"].items():
        label = "personal" if kind == "personal" else f"fallback {kind}"
        table.add_row(label, f"{part['n_answers']:,}", _share(part["hit_rate"]),
                      _share(part["ctr"]), "")  # fmt: skip
    console.print(table)
    console.print(f"{s['n_with_feedback']:,} answers with feedback ({s['n_clicked']:,} clicked, "
                  f"{s['n_purchased']:,} bought from); {s['n_events_elsewhere']:,} events on "
                  "items not recommended", highlight=False)  # fmt: skip
    for note in result["notes"]:
        console.print(f"note: {note}", soft_wrap=True, highlight=False)


def _print_answers(result: dict) -> None:
    """Answer rate, hand-over rate, helpful share; the unanswered questions by topic."""
    from rich.markup import escape
    from rich.table import Table

    s = result["answers"]
    table = Table(title="answers", title_justify="left")
    for head in ("questions", "answered", "handed over", "with feedback", "helpful"):
        table.add_column(head, justify="right")
    table.add_row(f"{s['n_questions']:,}", _share(s["answer_rate"]), _share(s["handover_rate"]),
                  f"{s['n_feedback']:,}", _share(s["helpful_share"]))  # fmt: skip
    console.print(table)
    if s["unanswered"]:
        table = Table(title="unanswered questions (the FAQ entries to write next)",
                      title_justify="left")  # fmt: skip
        for head in ("asked", "question", "also asked as"):
            table.add_column(head, justify="right" if head == "asked" else "left")
        for group in s["unanswered"]:
            table.add_row(f"{group['count']:,}", escape(group["question"]),
                          escape(" | ".join(group["examples"])))  # fmt: skip
        console.print(table)
    for note in result["notes"]:
        console.print(f"note: {note}", soft_wrap=True, highlight=False)


def _share(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _print(result: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    status = result["status"]
    color = {"drift": "bold red", "no_drift": "green", "no_data": "yellow", "checked": "green"}
    console.print(f"[{color[status]}]{escape(result['message'])}[/{color[status]}]",
                  soft_wrap=True, highlight=False)  # fmt: skip
    if result.get("recommendations"):
        _print_recommendations(result)
    elif result.get("answers"):
        _print_answers(result)
    elif status != "no_data":
        columns = [c for c in result["dataset"]["columns"] if c["drift"]]
        if columns:
            order = {n: i for i, n in enumerate(result["drifted_columns"])}
            columns.sort(key=lambda c: order.get(c["column"], len(order)))
            table = Table(title="drifted columns", title_justify="left")
            for head in ("column", "kind", "test", "statistic", "p-value"):
                table.add_column(head)
            for c in columns[:_SHOWN_COLUMNS]:
                table.add_row(
                    c["column"], c["kind"], c["method"], fmt(c["statistic"]), fmt(c["p_value"])
                )
            console.print(table)
            if len(columns) > _SHOWN_COLUMNS:
                console.print(f"... {len(columns) - _SHOWN_COLUMNS} more in the report")
        live = result.get("live")
        if live and live["comparison"]:
            table = Table(
                title=f"live metrics ({live['n_scored']:,} labelled)", title_justify="left"
            )
            for head in ("metric", "live", "validation"):
                table.add_column(head)
            for c in live["comparison"]:
                style = "red" if c["worse"] else ""
                table.add_row(c["metric"], fmt(c["live"]), fmt(c["offline"]), style=style)
            console.print(table)
        if live and live["n_unmatched"]:
            console.print(
                f"[yellow]{live['n_unmatched']} feedback label(s) are not classes of the model, "
                f"e.g. {', '.join(map(repr, live['unmatched_examples']))}[/yellow]",
                highlight=False,
            )
        for note in result["notes"]:
            console.print(f"note: {note}", soft_wrap=True, highlight=False)
    console.print(f"report: {result['report_path']}", soft_wrap=True, highlight=False)
    console.print(f"json:   {result['json_path']}", soft_wrap=True, highlight=False)
