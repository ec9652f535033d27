"""The Typer application: one module per command group."""

from __future__ import annotations

import typer

from shipml.cli import (
    answer,
    bundle,
    keys,
    models,
    monitor,
    recommend,
    retrain,
    serve,
    train,
    use,
    zeroshot,
)

app = typer.Typer(
    name="shipml",
    help="From a CSV to a trained, evaluated, versioned model. One command per step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what shipml does."),
) -> None:
    """shipml: train, evaluate, predict, explain and version models from tables."""
    if verbose or debug:
        import logging

        from rich.logging import RichHandler

        logging.basicConfig(level=logging.INFO, handlers=[RichHandler(show_path=False)])


train.register(app)
use.register(app)
recommend.register(app)
answer.register(app)
serve.register(app)
bundle.register(app)
monitor.register(app)
retrain.register(app)
zeroshot.register(app)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
models.register_report(app)
