"""What the training and monitoring reports share: the Jinja2 environment that renders the
templates in ``templates/`` (autoescaped: every string from the user's data comes out as text),
the filters that format numbers; pages are written with ``shipml.files.atomic_write``.

Filters return plain text; autoescaping turns ``<0.1%`` or a column named ``<script>`` into
text. Only the templates write markup.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from shipml.evaluate.metrics import METRIC_NAMES
from shipml.files import atomic_write  # re-exported: the reports write through it

__all__ = [
    "atomic_write",
    "fmt",
    "humanize",
    "info_rows",
    "metric_name",
    "metric_value",
    "num",
    "pct",
    "render",
]


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file of ``templates/``) filled with ``context``."""
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        _environment().get_template(template).render(version=_version(), generated=when, **context)
    )


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shipml.evaluate", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        fmt=fmt,
        pct=pct,
        metric_name=metric_name,
        metric_value=metric_value,
        humanize=humanize,
        data_uri=data_uri,
    )
    env.tests.update(missing=lambda x: num(x) is None and (x is None or is_nan(x)))
    return env


def _version() -> str:
    try:
        from shipml import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return ""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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
        return "—" if x is None or is_nan(x) else str(x)
    if f == 0:
        return "0"
    if abs(f) >= 1000:
        return f"{f:,.0f}"
    if abs(f) < 1e-4:
        return f"{f:.3e}"
    return f"{f:#.4g}" if keep_zeros else f"{f:.4g}"


def metric_value(value: Any, name: str) -> str:
    if name == "mape" and num(value) is not None:
        return pct(float(value) * 100)
    return fmt(value, keep_zeros=True)


def pct(x: float) -> str:
    if x == 0:
        return "0%"
    if abs(x) < 0.1:
        return "<0.1%"
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


def info_rows(info: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The lines of a key-value table: keys in words, empty values left out, values as plain
    Python (numpy scalars unwrapped, sets sorted) for the template's ``info`` macro."""
    return [
        (humanize(k), _plain(v))
        for k, v in info.items()
        if v is not None and v != "" and v != [] and v != {}
    ]


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (set, frozenset)):
        return [_plain(x) for x in sorted(v, key=str)]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v
