"""Answer models on the command line: `shipml ask`, and the answer side of
`shipml train --task answer` and `shipml evaluate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri
from shipml.cli.render import console, fmt

TASK = "answer"
_METRICS = ("hit@1", "hit@3", "mrr", "answer_rate", "precision", "handover_recall")


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


def load_answerer(ref: str, registry_uri: str | None):
    from shipml.cli.recommend import load_any
    from shipml.errors import UsageError

    model = load_any(ref, registry_uri)
    if getattr(model, "task", None) != TASK:
        raise UsageError(f"{ref} is a {model.task} model, not an answer model (trained with "
                         "`shipml train FAQ.csv --task answer`)")  # fmt: skip
    return model


def ask(
    ref: Annotated[
        str,
        typer.Argument(
            help='Answer model: "helpdesk" (latest), "helpdesk/3", "helpdesk@production".'
        ),  # fmt: skip
    ],
    question: Annotated[str, typer.Argument(help="The customer's question.")],
    k: Annotated[
        int,
        typer.Option(
            "--k", "-k", min=1, max=50, help="Entries shown (1-50): the best and k-1 alternatives."
        ),  # fmt: skip
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    registry_uri: RegistryUri = None,
) -> None:
    """The best FAQ answer to QUESTION, the entry it came from and a confidence, or "hand over
    to a person" when the model is not sure."""
    model = load_answerer(ref, registry_uri)
    result = model.answer(question, k=k)
    if as_json:
        from shipml.model import json_safe

        out = {"model": model.name, "version": model.version, **result}
        sys.stdout.write(json.dumps(json_safe(out), indent=1) + "\n")
        return
    show_answer(result, model)


def show_answer(result: dict, model) -> None:
    from rich.markup import escape

    say = _say
    confidence = f"confidence {result['confidence']:.2f}"
    if result["handover"]:
        say(f"[bold yellow]hand over to a person[/bold yellow] ({confidence}, below the "
            f"threshold {model.threshold:.2f} of {model.name}/{model.version})")  # fmt: skip
    else:
        say(f"[bold green]entry {escape(str(result['entry']))}[/bold green] ({confidence})")
        if result.get("question"):
            say(f"[bold]matched:[/bold] {escape(result['question'])}")
        say(escape(result["answer"]))
        source = {k: v for k, v in (result.get("source") or {}).items() if v}
        if source:
            say("[bold]source:[/bold] " + escape(", ".join(f"{k} {v}" for k, v in source.items())))
    alternatives = result.get("alternatives") or []
    if alternatives:
        head = "closest entries" if result["handover"] else "alternatives"
        say(f"[bold]{head}:[/bold]")
        for alt in alternatives:
            say(f"  {escape(str(alt['entry']))} ({alt['confidence']:.2f}) "
                f"{escape(alt.get('question') or '')}")  # fmt: skip


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


# -- train and evaluate ----------------------------------------------------------------------
def train_answer_cli(data: Path, *, name: str, time_budget: float, min_precision: float | None,
                     questions: Path | None, seed: int, registry_uri: str | None,
                     no_report: bool) -> None:  # fmt: skip
    """`shipml train FAQ --task answer ...`: train, register, print the summary."""
    import inspect

    import shipml
    from shipml.errors import UsageError

    if min_precision is not None and not 0 < min_precision <= 1:
        raise UsageError(f"--min-precision must be in (0, 1], got {min_precision:g}")
    if questions is not None and not questions.is_file():
        raise UsageError(f"--questions {questions}: no such file (a CSV with the columns "
                         "question and expected_id)")  # fmt: skip
    options = {"name": name, "time_budget": time_budget, "seed": seed, "questions": questions,
               "registry_uri": registry_uri, "progress": True, "report": not no_report}  # fmt: skip
    if min_precision is not None:
        options["min_precision"] = min_precision
    accepted = inspect.signature(shipml.train).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        options = {k: v for k, v in options.items() if k in accepted}
    model = shipml.train(data, task=TASK, **options)
    show_trained(model)


def show_trained(model) -> None:
    info = model.info
    duration = (info.get("lineage") or {}).get("duration_s")
    took = f", {duration:.1f}s" if isinstance(duration, (int, float)) else ""
    _say(f"[bold green]registered[/bold green] {model.name}/{model.version}  (answer, "
         f"{len(model.entries):,} entries{took})")  # fmt: skip
    _say(f"[bold]hand-over threshold:[/bold] {model.threshold:.3f} (confidence below it: hand "
         f"over to a person; chosen for precision >= {model.min_precision:g})")  # fmt: skip
    if info.get("validation"):
        _say(f"[bold]validation:[/bold] {fmt(info['validation'])}")
    if any(isinstance(model.metrics.get(k), (int, float)) for k in _METRICS):
        console.print(answer_table(model.metrics, title="validation"))
    for note in model.notes:
        _say(f"[yellow]note:[/yellow] {note}")
    if model.report_path:
        _say(f"report: {model.report_path}")


def answer_table(metrics: dict, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (*_METRICS, "n"):
        if isinstance(metrics.get(key), (int, float)):
            table.add_row(key, fmt(metrics[key]))
    return table


def evaluate_answerer(model, data: Path, as_json: bool) -> None:
    """`shipml evaluate HELPDESK --data questions.csv`: hit@1, hit@3, MRR, answer rate and
    precision on labelled questions (columns question, expected_id; "none": no answer)."""
    from shipml.model import as_frame, json_safe

    metrics = json_safe(model.evaluate(as_frame(data)))
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=1) + "\n")
        return
    console.print(answer_table(metrics, title=f"{model.name}/{model.version} on {data}"))
    _say(f"hand-over threshold {model.threshold:.3f}: answer rate is the share of questions "
         "answered, precision the share of those answered with the right entry")  # fmt: skip


def show_retrained(result) -> None:
    """`shipml retrain HELPDESK`: the questions added and both versions side by side."""
    from rich.table import Table

    old, new = str(result.current), str(result.new)
    _say(f"[bold]{result.name}/{new}[/bold]: {result.rows_feedback_train:,} confirmed "
         f"question(s) added as paraphrases to the {result.rows_original:,} entries of "
         f"version {old}")  # fmt: skip
    for title, scores in (
        (f"recent confirmed questions ({result.rows_feedback_compare:,} neither version had)",
         result.recent),
        ("validation at training time (the new version keeps version " + old + "'s settings)",
         result.offline),
    ):  # fmt: skip
        if not scores:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column("metric")
        table.add_column(f"current v{old}", justify="right")
        table.add_column(f"new v{new}", justify="right")
        for key in (*_METRICS, "n"):
            a, b = scores[old].get(key), scores[new].get(key)
            if a is not None or b is not None:
                table.add_row(key, fmt(a), fmt(b))
        console.print(table)
    for note in result.notes:
        _say(f"note: {note}")
    _say(f"promote it with: shipml models promote {result.name} {new} --alias production")
