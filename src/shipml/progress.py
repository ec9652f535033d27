"""A rich progress bar for the search: elapsed time against the budget, trials, best score."""

from __future__ import annotations

import math
import time


class SearchProgress:
    """Callable receiving search events; renders on stderr. Call close() at the end."""

    def __init__(self, budget: float, metric: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.metric = metric
        self.start = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]searching"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("search", total=budget, status="starting")
        self.progress.start()

    def __call__(self, event: dict) -> None:
        if event.get("event") == "tune":  # a text encoder being fine-tuned
            status = (
                f"{event['mode']} step {event['step']}/{event['steps']}  "
                f"{event['steps_per_s']:.2f} steps/s  valid {event['valid']:.4f}"
            )
            self.progress.update(self.task, completed=time.monotonic() - self.start, status=status)
            return
        best = event.get("best")
        best_txt = f"{best:.4f}" if best is not None and math.isfinite(best) else "-"
        status = f"trials {event['trial']}  best {self.metric} {best_txt}  last {event['name']}"
        self.progress.update(self.task, completed=event["elapsed_s"], status=status)

    def close(self) -> None:
        self.progress.update(self.task, completed=self.progress.tasks[0].total)
        self.progress.stop()


def search_reporter(progress, budget: float, metric: str):
    """What `train(progress=...)` reports to: a callable as given, None for no progress,
    else a SearchProgress bar (default: when stderr is a terminal)."""
    if callable(progress):
        return progress
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    if not progress:
        return None
    return SearchProgress(budget, metric)


def library_versions(*names: str) -> dict[str, str]:
    """The installed version of each named distribution (those not installed are left out),
    for a model's lineage."""
    import importlib.metadata as md

    libs = {}
    for lib in names:
        try:
            libs[lib] = md.version(lib)
        except md.PackageNotFoundError:
            continue
    return libs
