"""`shipml train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.options import RegistryUri
from shipml.cli.render import console, fmt, metrics_table, scope_lines, threshold_lines

# The options of `shipml train`, in the order of its --help.
_Data = Annotated[
    Path,
    typer.Argument(
        help="Training table: CSV, TSV, Parquet, Excel, JSONL; --task answer: an FAQ table "
        "(question, answer) or a folder of .md/.txt/.html pages."
    ),
]
_Target = Annotated[
    str | None,
    typer.Option("--target", "-t", help="Column to predict (not with --task recommend)."),
]
_Name = Annotated[str | None, typer.Option("--name", "-n", help="Model name (default: file name).")]
_TimeBudget = Annotated[
    float, typer.Option("--time-budget", "-b", help="Wall-clock seconds for the whole run.")
]
_Task = Annotated[
    str | None,
    typer.Option(
        help="binary, multiclass or regression (default: inferred); recommend: a "
        "recommender from a log of who bought, clicked or rated what (--user, --item); "
        "answer: an FAQ assistant that answers questions or hands over to a person."
    ),
]
_Metric = Annotated[
    str | None,
    typer.Option(
        help="Metric to optimize (default: roc_auc / log_loss / rmse). Binary: a label "
        "metric (accuracy, f1, balanced_accuracy, mcc, f1_macro) also sets the decision "
        "threshold that maximizes it on validation; roc_auc and log_loss keep 0.5."
    ),
]
_TimeColumn = Annotated[
    str | None,
    typer.Option(
        "--time-column",
        "--time",
        help="Validate on the most recent rows by this column (a log: its timestamps).",
    ),
]
_GroupColumn = Annotated[
    str | None, typer.Option(help="Keep each group (e.g. customer) on one side of a split.")
]
_Drop = Annotated[list[str] | None, typer.Option("--drop", help="Column to ignore (repeatable).")]
_Kind = Annotated[
    list[str] | None,
    typer.Option("--kind", help="Force a column's kind, e.g. --kind zip=categorical."),
]
_Pii = Annotated[
    list[str] | None,
    typer.Option(
        "--pii",
        help="Column with personal data (besides those detected): left out, logged only "
        "hashed (repeatable).",
    ),
]
_KeepPii = Annotated[
    list[str] | None,
    typer.Option(
        "--keep-pii",
        help="Column of personal data to use as a feature anyway, as keyed hashes of its "
        "values (repeatable).",
    ),
]
_Seed = Annotated[int, typer.Option(help="Random seed.")]
_Trials = Annotated[
    int | None, typer.Option(help="Stop after this many LightGBM trials (reproducible).")
]
_NoReport = Annotated[bool, typer.Option("--no-report", help="Skip the HTML report.")]
_Mode = Annotated[
    str,
    typer.Option(
        help="Text columns: auto (picked from data size and budget), embed (frozen "
        "sentence embeddings), finetune (train the encoder), fewshot (contrastive, for "
        "a few examples per class) or tfidf. Images: auto, embed (a frozen pretrained "
        "network), scratch (a small CNN on the pixels) or finetune (train the network's "
        "last block)."
    ),
]
_Encoder = Annotated[
    str | None,
    typer.Option(
        help="Sentence encoder for text: a model folder or hub id "
        "(default: packaged all-MiniLM-L6-v2)."
    ),
]
_TextColumn = Annotated[
    str | None, typer.Option(help="Treat this column as free text (default: detected).")
]
_ImageColumn = Annotated[
    str | None,
    typer.Option(
        help="This column holds image file paths, relative to the table (default: "
        "detected from the file names)."
    ),
]
_User = Annotated[str | None, typer.Option(help="--task recommend: the user column of the log.")]
_Item = Annotated[str | None, typer.Option(help="--task recommend: the item column of the log.")]
_Weight = Annotated[
    str | None,
    typer.Option(help="--task recommend: quantity, price, rating or watch time column."),
]
_Event = Annotated[
    str | None,
    typer.Option(help="--task recommend: event type column (view < cart < purchase)."),
]
_Items = Annotated[
    Path | None,
    typer.Option(help="--task recommend: item table (names, category, price, text)."),
]
_MinPrecision = Annotated[
    float | None,
    typer.Option(
        "--min-precision",
        help="--task answer: the precision the hand-over threshold keeps on validation "
        "(default 0.9).",
        show_default=False,
    ),
]
_Questions = Annotated[
    Path | None,
    typer.Option(
        help="--task answer: labelled real questions (CSV: question, expected_id; "
        '"none" = no answer) to validate on.'
    ),
]
_OutOfScope = Annotated[
    str | None,
    typer.Option(
        "--out-of-scope",
        help="Classifiers: the target's label of rows that belong to no class (\"none of "
        'these"); also answered below a confidence threshold chosen on validation.',
    ),
]
_Reject = Annotated[
    bool,
    typer.Option(
        "--reject",
        help="Classifiers without out-of-scope rows: answer none below a confidence "
        "threshold chosen on validation.",
    ),
]
_MaxInScopeLoss = Annotated[
    float,
    typer.Option(
        "--max-in-scope-loss",
        help="With --out-of-scope or --reject: in-scope accuracy the threshold may lose.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    data: _Data,
    target: _Target = None,
    name: _Name = None,
    time_budget: _TimeBudget = 60.0,
    task: _Task = None,
    metric: _Metric = None,
    time_column: _TimeColumn = None,
    group_column: _GroupColumn = None,
    drop: _Drop = None,
    kind: _Kind = None,
    pii: _Pii = None,
    keep_pii: _KeepPii = None,
    seed: _Seed = 0,
    trials: _Trials = None,
    no_report: _NoReport = False,
    mode: _Mode = "auto",
    encoder: _Encoder = None,
    text_column: _TextColumn = None,
    image_column: _ImageColumn = None,
    user: _User = None,
    item: _Item = None,
    weight: _Weight = None,
    event: _Event = None,
    items: _Items = None,
    min_precision: _MinPrecision = None,
    questions: _Questions = None,
    out_of_scope: _OutOfScope = None,
    reject: _Reject = False,
    max_in_scope_loss: _MaxInScopeLoss = 0.01,
    registry_uri: RegistryUri = None,
) -> None:
    """Train the best model for TARGET within the time budget, validate it, register it.
    With --task recommend: a recommender from a log of events (--user, --item, --time).
    With --task answer: an FAQ assistant from an FAQ table or a folder of documents."""
    import shipml

    log_options = {"--user": user, "--item": item, "--weight": weight, "--event": event,
                   "--items": items}  # fmt: skip
    if task == "answer":
        _train_answerer(data, target, name, time_budget, min_precision, questions, seed,
                        registry_uri, no_report, log_options)  # fmt: skip
        return
    answer_options = {"--min-precision": min_precision, "--questions": questions}
    _refuse_given(answer_options, "FAQ answering", "--task answer")
    if task == "recommend":
        _refuse_target_for_log(target)
        from shipml.cli.recommend import train_recommender_cli

        train_recommender_cli(data, name=name or _default_name(data), time_budget=time_budget,
                              user=user, item=item, time=time_column, weight=weight,
                              event=event, items=items, seed=seed, trials=trials,
                              registry_uri=registry_uri, no_report=no_report,
                              metric=metric)  # fmt: skip
        return
    _refuse_given(log_options, "logs", "--task recommend")
    _require_target(data, target)
    kinds = _parse_kinds(kind)
    model = shipml.train(
        data, target, name=name or _default_name(data), time_budget=time_budget, task=task,
        metric=metric, time_column=time_column, group_column=group_column,
        drop=tuple(drop or ()), kinds=kinds, pii=tuple(pii or ()),
        keep_pii=tuple(keep_pii or ()), seed=seed, n_trials=trials, registry_uri=registry_uri,
        progress=True, report=not no_report, mode=mode, encoder=encoder,
        text_column=text_column, image_column=image_column, out_of_scope=out_of_scope,
        reject=reject, max_in_scope_loss=max_in_scope_loss,
    )  # fmt: skip
    show_trained(model)


def _refuse_given(options: dict, purpose: str, fix: str) -> None:
    """UsageError naming the flags of `options` that were given: they are for `purpose` only."""
    from shipml.errors import UsageError

    given = [flag for flag, value in options.items() if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for {purpose}: "
                         f"add {fix}")  # fmt: skip


def _refuse_target_for_log(target) -> None:
    from shipml.errors import UsageError

    if target is not None:
        raise UsageError("--target is for tables: a recommender learns from --user and "
                         "--item (and --time) of the log")  # fmt: skip


def _require_target(data, target) -> None:
    from shipml.errors import UsageError

    if target is None and not _images_by_folder(data):
        raise UsageError("--target is required: the column to predict (or --task recommend "
                         "with --user and --item for a recommender, or a folder of images "
                         "with one sub-folder per label)")  # fmt: skip


def _parse_kinds(kind: list[str] | None) -> dict[str, str] | None:
    """--kind COLUMN=KIND (repeatable) as {column: kind}; None when not given."""
    from shipml.errors import UsageError

    kinds = {}
    for text in kind or []:
        col, sep, value = text.rpartition("=")
        if not sep or not col:
            raise UsageError(f"--kind takes COLUMN=KIND, got {text!r}")
        kinds[col] = value
    return kinds or None


def _images_by_folder(data) -> bool:
    from shipml.images.sources import is_image_folder

    return is_image_folder(Path(data).expanduser())


def _train_answerer(data, target, name, time_budget, min_precision, questions, seed,
                    registry_uri, no_report, log_options) -> None:  # fmt: skip
    from shipml.cli.answer import train_answer_cli
    from shipml.errors import UsageError

    given = [flag for flag, value in log_options.items() if value is not None]
    if target is not None or given:
        flags = ", ".join(["--target"] * (target is not None) + given)
        raise UsageError(f"{flags}: not for --task answer (an FAQ needs the columns question "
                         "and answer, or a folder of documents)")  # fmt: skip
    train_answer_cli(data, name=name or _default_name(data), time_budget=time_budget,
                     min_precision=min_precision, questions=questions, seed=seed,
                     registry_uri=registry_uri, no_report=no_report)  # fmt: skip


def _default_name(path: Path) -> str:
    import re

    stem = path.name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "model"


def show_trained(model) -> None:
    m = model.metrics
    lineage = model.info["lineage"]
    say = _say
    say(
        f"[bold green]registered[/bold green] {model.name}/{model.version}  "
        f"({model.task}, {lineage['rows']:,} rows, {lineage['duration_s']:.1f}s)"
    )
    facts = {
        "validation": model.info.get("validation"),
        "ensemble": model.describe()["ensemble"],
        "text features": model.info.get("text_features"),
        "target transform": None if model.transform == "none" else model.transform,
    }
    for key, value in facts.items():
        if value is not None:
            say(f"[bold]{key}:[/bold] {fmt(value)}")
    for line in threshold_lines(model.threshold, model.info.get("threshold")):
        say(line)
    for line in scope_lines(model.scope):
        say(line)
    optimized = lineage.get("metric") or m.get("primary")
    console.print(metrics_table(m, title=f"validation ({optimized} optimized)"))
    top = list(model.info.get("importance", {}).items())[:5]
    if top:
        say("[bold]top columns:[/bold] " + ", ".join(f"{k} ({v:.3g})" for k, v in top))
    for note in model.info.get("notes", []):
        say(f"[yellow]note:[/yellow] {note}")
    personal = [c for c in model.schema.columns if c.pii]
    if personal:
        say("[bold]personal data[/bold] (values kept out of the model; hashed in the prediction "
            "log):")  # fmt: skip
        for col in personal:
            say(f"  {col.name}: {col.note}")
    if model.report_path:
        say(f"report: {model.report_path}")


def _say(text: str) -> None:
    """One line, never cut or wrapped in the middle of a path."""
    console.print(text, soft_wrap=True, highlight=False)
