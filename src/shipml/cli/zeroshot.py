"""`shipml zero-shot`: label texts by their similarity to label names, without training."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipml.cli.render import console


def register(app: typer.Typer) -> None:
    app.command("zero-shot")(zero_shot)


def zero_shot(
    data: Annotated[Path, typer.Argument(help="Table of texts: CSV, TSV, Parquet, Excel, JSONL.")],
    labels: Annotated[
        str,
        typer.Option(
            "--labels",
            "-l",
            help='Comma-separated labels ("refund,card lost"), each optionally '
            '"label: description"; or a file with one label per line.',
        ),
    ],
    text_column: Annotated[
        str | None, typer.Option(help="Column holding the texts (default: the longest texts).")
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(help="Sentence encoder folder or hub id (default: all-MiniLM-L6-v2)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV to write (default: stdout).")
    ] = None,
    scores: Annotated[
        bool, typer.Option("--scores/--no-scores", help="Add a similarity column per label.")
    ] = True,
) -> None:
    """Label each text with the closest of LABELS (cosine similarity of sentence embeddings)."""
    from shipml.cli.use import write_csv
    from shipml.learners.zeroshot import zero_shot as classify

    result = classify(data, labels, text_column=text_column, encoder=encoder)
    if not scores:
        result = result[[c for c in result.columns if not str(c).startswith("score_")]]
    if output is None:
        result.to_csv(sys.stdout, index=False)
        return
    write_csv(result, output)
    console.print(f"wrote {len(result):,} labelled rows to {output}")
