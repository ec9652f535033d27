"""HTML building blocks shared by the training and monitoring reports: escaping, number
formatting, tables, figures, the page shell and the atomic write. Every string from the user's
data goes through `esc`.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np

from shipml.evaluate.metrics import METRIC_NAMES
from shipml.files import atomic_write  # re-exported: the reports write through it

__all__ = [
    "atomic_write",
    "esc",
    "figure",
    "fmt",
    "humanize",
    "info_value",
    "is_nan",
    "kv_table",
    "metric_name",
    "metric_value",
    "num",
    "page",
    "pct",
    "table",
]


def kv_table(info: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><th>{esc(humanize(k))}</th><td>{info_value(v)}</td></tr>"
        for k, v in info.items()
        if v is not None and v != "" and v != [] and v != {}
    ]
    return f'<div class="table-wrap"><table class="kv"><tbody>{"".join(rows)}</tbody></table></div>'


def figure(png: bytes, alt: str, how: str, *, wide: bool = False, raw_html: bool = False) -> str:
    """A plot with its 'how to read it' text (trusted HTML from this module only)."""
    data = base64.b64encode(png).decode("ascii")
    text = how if raw_html else f"<p>{how}</p>"
    return (
        f'<div class="plot{" wide" if wide else ""}">'
        f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
        f'<div class="how"><h3>How to read it</h3>{text}</div></div>'
    )


def table(head: str, rows: list[str]) -> str:
    return (
        f'<div class="table-wrap"><table><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def page(title: str, body: str) -> str:
    css = resources.files("shipml.evaluate").joinpath("report.css").read_text(encoding="utf-8")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="shipml">'
        f"<title>{esc(title)}</title><style>{css}</style></head>\n"
        f"<body><main>\n{body}"
        f"<footer>Made by shipml {_version()} on {when}. This file is self-contained: "
        "it can be shared as is and opened offline.</footer>\n"
        "</main></body></html>\n"
    )


def _version() -> str:
    try:
        from shipml import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return ""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt(x: Any, keep_zeros: bool = False) -> str:
    """4 significant digits; thousands separators from 1,000 up; '—' when missing.

    ``keep_zeros`` keeps trailing zeros (0.6830) so that a column of scores lines up.
    """
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    f = num(x)
    if f is None:
        return '<span class="na">—</span>' if x is None or is_nan(x) else esc(x)
    if f == 0:
        return "0"
    if abs(f) >= 1000:
        return f"{f:,.0f}"
    if abs(f) < 1e-4:
        return f"{f:.3e}"
    return f"{f:#.4g}" if keep_zeros else f"{f:.4g}"


def metric_value(name: str, value: Any) -> str:
    if name == "mape" and num(value) is not None:
        return pct(float(value) * 100)
    return fmt(value, keep_zeros=True)


def pct(x: float) -> str:
    if x == 0:
        return "0%"
    if abs(x) < 0.1:
        return "&lt;0.1%"
    return f"{x:.3g}%" if abs(x) < 100 else f"{x:,.0f}%"


def is_nan(x: Any) -> bool:
    try:
        return math.isnan(x)
    except TypeError:
        return False


def metric_name(name: str) -> str:
    return METRIC_NAMES.get(name) or humanize(name)


def humanize(key: Any) -> str:
    s = str(key).replace("_", " ").strip()
    return s[:1].upper() + s[1:]


def info_value(v: Any) -> str:
    """A model_info value: numbers formatted, lists joined, dicts as 'key: value' lines."""
    if isinstance(v, Mapping):
        return "<br>".join(f"{esc(k)}: {info_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple, set)):
        return ", ".join(info_value(x) for x in v)
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))  # a seed or a version, not a quantity: no thousands separator
    if isinstance(v, (bool, float, np.number)):
        return fmt(v)
    return esc(v)
