"""Using a registered model: `shipml evaluate`, `predict`, `explain`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri
from shipml.cli.render import console, fmt, metrics_table

Ref = Annotated[str, typer.Argument(help='Model: "churn" (latest), "churn/3", "churn@production".')]


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("explain")(explain)


def _load(ref: str, registry_uri: str | None):
    """A Model, or a RecModel for a recommender (commands that need a table say so)."""
    from shipml.cli.recommend import load_any

    model = load_any(ref, registry_uri)
    return model


def _tabular(ref: str, registry_uri: str | None):
    from shipml.cli.recommend import TASK
    from shipml.errors import UsageError

    model = _load(ref, registry_uri)
    if model.task == TASK:
        raise UsageError(f"{ref} is a recommender: use `shipml recommend {ref} --user ID` or "
                         f"`shipml similar {ref} --item ID`")  # fmt: skip
    if model.task == "answer":
        raise UsageError(f'{ref} answers questions: use `shipml ask {ref} "QUESTION"`')
    return model


def evaluate(
    ref: Ref,
    data: Annotated[Path, typer.Option("--data", "-d", help="Labelled table (target included).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Report path (default: shipml-reports/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
    k: Annotated[
        int, typer.Option("--k", min=1, max=1000, help="Recommenders: the K of the report.")
    ] = 10,
    registry_uri: RegistryUri = None,
) -> None:
    """Score a model on labelled data: metrics table and an HTML report. A recommender: on a
    log of later events (HR@K, NDCG@K, recall@K, MRR, coverage, popularity bias). An answer
    model: on labelled questions (question, expected_id; "none" for no answer): hit@1, hit@3,
    MRR, answer rate, precision."""
    model = _load(ref, registry_uri)
    if model.task == "recommend":
        from shipml.cli.recommend import evaluate_recommender

        return evaluate_recommender(model, data, k, as_json)
    if model.task == "answer":
        from shipml.cli.answer import evaluate_answerer

        return evaluate_answerer(model, data, as_json)
    path = output or Path("shipml-reports") / f"{model.name}-v{model.version}-evaluation.html"
    metrics = model.evaluate(data, report=path)
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=1, default=str) + "\n")
        return
    console.print(metrics_table(metrics, title=f"{model.name}/{model.version} on {data}"))
    console.print(f"report: {metrics['report_path']}", soft_wrap=True, highlight=False)


def predict(
    ref: Ref,
    data: Annotated[Path, typer.Argument(help="Table to score.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV to write (default: stdout).")
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba/--no-proba", help="Add a probability column per class.")
    ] = True,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Binary models: label a row positive when P(positive) >= this, instead of "
            "the model's decision threshold (`shipml models show` gives it and its reason)."
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            "--min-confidence",
            help="Classifiers: answer the out-of-scope label (or none) when the largest class "
            "probability is below this, instead of the model's own out-of-scope threshold.",
        ),
    ] = None,
    registry_uri: RegistryUri = None,
) -> None:
    """Add predictions (and class probabilities) to a table; writes CSV."""
    import shipml.model as m
    from shipml.predictions import predictions_table

    model = _tabular(ref, registry_uri)
    frame = model.input_frame(data)
    if model.task == "regression":
        values = model.predict(frame, threshold=threshold, min_confidence=min_confidence)
        scored = predictions_table(frame, values)  # a threshold or min confidence: error above
    else:
        probabilities = model.predict_proba(frame)
        if min_confidence is not None:
            min_confidence = m.checked_confidence(min_confidence)
        labels = model.labels_from_proba(probabilities.to_numpy(), threshold,
                                         min_confidence=min_confidence)  # fmt: skip
        kept = probabilities.to_numpy() if proba else None
        scored = predictions_table(frame, labels, kept, probabilities.columns)
    if output is None:
        scored.to_csv(sys.stdout, index=False)
        return
    from shipml.files import atomic_write

    atomic_write(output, scored.to_csv(index=False))
    console.print(f"wrote {len(scored):,} rows to {output}")


def _csv_safe(frame):
    """Input cells written back cannot run as spreadsheet formulas (data/formulas.py)."""
    from shipml.data.formulas import defuse

    return defuse(frame)


def write_csv(frame, path: Path) -> None:
    """`frame` as a CSV file at `path`, atomically, spreadsheet formulas defused."""
    from shipml.files import atomic_write

    atomic_write(path, _csv_safe(frame).to_csv(index=False))


def explain(
    ref: Ref,
    data: Annotated[Path, typer.Option("--data", "-d", help="Rows to explain.")],
    top: Annotated[int, typer.Option(help="Reasons per row.")] = 5,
    rows: Annotated[int, typer.Option(help="Rows to show on screen.")] = 10,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write all rows' reasons as CSV. Image models: a .png file (the heat map over "
            "the photo), a folder (one PNG per image) or a .csv file.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (all rows).")] = False,
    grid: Annotated[
        int,
        typer.Option(
            min=2,
            max=16,
            help="Image models: occlusion positions per side (grid² + 1 scorings per image).",
        ),
    ] = 7,
    registry_uri: RegistryUri = None,
) -> None:
    """Per-row top reasons: which columns pushed each prediction up or down, and how much.
    Image models: per image the answer and the region of the photo it rests on (occlusion
    heat map; `-o why.png` draws it over the photo)."""
    from shipml.cli.explain_images import explain_images_command, wants_heat_map
    from shipml.errors import UsageError

    model = _tabular(ref, registry_uri)
    if model._image_only():
        return explain_images_command(model, data, output=output, as_json=as_json, rows=rows,
                                      grid=grid)  # fmt: skip
    if wants_heat_map(output):
        raise UsageError(
            f"{ref} reads no image column (or predicts numbers): a heat map (-o {output}) is for "
            "image classifiers; -o writes this model's reasons as CSV (e.g. -o "
            f"{output.with_suffix('.csv')})"
        )
    records = model.explain_records(data, top=top)
    if as_json:
        sys.stdout.write(json.dumps(records, indent=1, default=str) + "\n")
        return
    if output is not None:
        _write_reasons(model, records, output)
    unit = "target units" if model.task == "regression" else "log-odds"
    for i, item in enumerate(records[:rows]):
        console.print(_reasons_table(i, item, unit))
    if len(records) > rows:
        console.print(f"... {len(records) - rows} more rows (use --output or --json for all)")


def _write_reasons(model, records: list[dict], output: Path) -> None:
    """All rows' reasons as CSV (with the top words when the model reads text)."""
    from shipml.model import explanation_frame

    words = any(c.kind == "text" for c in model.schema.features)
    write_csv(explanation_frame(records, words=words), output)
    console.print(f"wrote reasons for {len(records):,} rows to {output}")


def _reasons_table(i: int, item: dict, unit: str):
    """Row `i`'s reasons: column, value, signed contribution (and top words for text)."""
    from rich.markup import escape
    from rich.table import Table

    from shipml.explain_text import compact

    table = Table(title=f"row {i + 1}: prediction {fmt(item['prediction'])}", title_justify="left")
    table.add_column("column")
    table.add_column("value")
    table.add_column(f"contribution ({unit})", justify="right")
    words = any("words" in r for r in item["reasons"])
    if words:
        table.add_column("top words")
    for reason in item["reasons"]:
        c = reason["contribution"]
        style = "green" if c > 0 else "red"
        cells = [
            escape(reason["column"]),
            escape(fmt(reason["value"])),
            f"[{style}]{c:+.4f}[/{style}]",
        ]
        if words:
            cells.append(escape(compact(reason.get("words", []))))
        table.add_row(*cells)
    return table
