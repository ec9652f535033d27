"""Console output: tables of metrics and models, error lines."""

from __future__ import annotations

import sys
import traceback

from rich.console import Console
from rich.table import Table

from shipml.evaluate.metric_registry import summary_names

console = Console()
err_console = Console(stderr=True)


def fail(message: str, *, debug: bool = False, code: int = 2) -> None:
    if debug:
        traceback.print_exc()
    from rich.markup import escape  # a message may hold brackets: "[/tmp/...]", "[1, 2]"

    err_console.print(
        f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True
    )
    sys.exit(code)


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# Metrics shown in the summary, in this order, when present (the metric registry's).
SUMMARY_METRICS = summary_names()
# a classifier with out-of-scope answers (scope.py)
SCOPE_METRICS = ("in_scope_accuracy", "oos_recall", "oos_precision", "oos_f1", "rejected_rate")


def metrics_table(metrics: dict, title: str = "metrics") -> Table:
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in SUMMARY_METRICS + SCOPE_METRICS:
        if metrics.get(key) is not None:
            table.add_row(key, fmt(metrics[key]))
    return table


def kv_table(items: dict, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in items.items():
        if value not in (None, ""):
            table.add_row(str(key), fmt(value))
    return table


def threshold_lines(threshold: float | None, decision: dict | None) -> list[str]:
    """The decision threshold, its reason, and validation accuracy / F1 at 0.5 and at it."""
    if threshold is None:
        return []
    from rich.markup import escape

    lines = [f"[bold]decision threshold:[/bold] {threshold:g}"]
    if not decision:
        return lines
    lines[0] += f" — {escape(decision['reason'])}"
    half, at = decision["at_argmax"], decision["at_threshold"]
    where = f"at 0.5: accuracy {half['accuracy']:.3f}, F1 {half['f1']:.3f}"
    if threshold != 0.5:
        where += f"; at {threshold:g}: accuracy {at['accuracy']:.3f}, F1 {at['f1']:.3f}"
    lines.append(f"  validation {where}")
    return lines


def scope_lines(scope: dict | None) -> list[str]:
    """The out-of-scope decision (scope.py), its reason and the threshold table."""
    if not scope:
        return []
    from rich.markup import escape

    lines = [f"[bold]out of scope:[/bold] {escape(scope['reason'])}"]
    curve = scope.get("curve") or []
    if curve and "oos_recall" in curve[0]:
        lines.append("  threshold  in-scope acc  oos recall   (validation)")
        lines += [f"  {p['threshold']:>9.2f}  {p['in_scope_accuracy']:>12.3f}  "
                  f"{p['oos_recall']:>10.3f}" for p in curve]  # fmt: skip
    return lines
