"""The monitoring report: one self-contained HTML file, the same style as the training report.

Summary on top (drift verdict, share of drifted feature columns, prediction drift, live score
against the validation score), then the live metrics, the prediction drift, a table of every
feature column with its test, and plots of the most drifted columns. Built from the JSON result
of ``check.monitor`` plus the reference and the logged values the plots need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from shipml.evaluate.markup import (
    atomic_write,
    esc,
    figure,
    fmt,
    kv_table,
    metric_name,
    page,
    pct,
    table,
)

__all__ = ["write_monitor_report", "MAX_PLOTS"]

MAX_PLOTS = 8  # drift plots of the most drifted columns
_DRIFT_STYLE = ' style="background:#b45309;border-color:#b45309"'
_METHODS = {
    "KS": "Kolmogorov-Smirnov test: drift when its p-value is at most 0.05",
    "chi-square": "chi-square test of the category counts: drift when its p-value is at most 0.05",
    "Z-test": "test of the difference of two proportions: drift when its p-value is at most 0.05",
    "Wasserstein": "Wasserstein distance divided by the reference's standard deviation: drift "
    "from 0.1 up",
    "Jensen-Shannon": "Jensen-Shannon distance between the category shares: drift from 0.1 up",
}


def write_monitor_report(
    path: str | os.PathLike[str],
    result: dict,
    reference: dict | None = None,
    current: pd.DataFrame | None = None,
    predictions: pd.Series | None = None,
) -> Path:
    """Write the report of ``result`` (from ``monitor``) to ``path`` and return the path.

    ``reference`` is the saved drift reference, ``current`` the typed logged inputs and
    ``predictions`` the logged predictions; without them the plots are left out.
    """
    title = f"{result['model']} — monitoring"
    parts: list[tuple[str, str, str]] = []
    if result["status"] != "no_data":
        parts.append(("checked", "What was checked", _checked(result)))
        if result.get("live"):
            parts.append(("live", "Live performance", _live(result["live"])))
        parts.append(
            ("predictions", "Prediction drift", _predictions(result, reference, predictions))
        )
        parts.append(("features", "Feature drift", _features(result)))
        plots = _plots(result, reference, current)
        if plots:
            parts.append(("plots", "Drifted columns", plots))
    if result.get("notes"):
        items = "".join(f"<li>{esc(n)}</li>" for n in result["notes"])
        parts.append(("notes", "Notes", f'<ul class="notes">{items}</ul>'))
    body = _header(result, title, [(a, h) for a, h, _ in parts])
    for anchor, heading, content in parts:
        body += f'<section id="{anchor}"><h2>{heading}</h2>{content}</section>\n'
    return atomic_write(Path(path), page(title, body))


# -- sections --------------------------------------------------------------------------------
def _header(result: dict, title: str, toc: list[tuple[str, str]]) -> str:
    window = result["window"]
    since = _day(window.get("since")) or "the beginning"
    eyebrow = f"shipml monitoring report · {esc(since)} → {esc(_day(window.get('until')))}"
    if result.get("version") is not None:
        eyebrow += f'<span class="badge">version {esc(result["version"])}</span>'
    if result["status"] == "no_data":
        cards = _card(
            "Verdict", "—", "nothing to check: no predictions in the window", primary=True
        )
    else:
        data, pred = result["dataset"], result["prediction"]
        drift = result["drift_detected"]
        cards = _card(
            "Verdict",
            "Drift" if drift else "No drift",
            f"{result['n_predictions']:,} predictions checked",
            primary=True,
            style=_DRIFT_STYLE if drift else "",
        )
        share = pct(100 * data["share_drifted"]) if data["n_columns"] else "—"
        cards += _card(
            "Drifted features",
            f"{data['n_drifted']} of {data['n_columns']}",
            f"{share}; the dataset drifts from {pct(100 * data['share_threshold'])}",
        )
        cards += _card(
            "Prediction drift",
            "yes" if pred["drift"] else "no",
            _test_words(pred) or "not tested",
        )
        comparison = (result.get("live") or {}).get("comparison") or []
        if comparison:
            first = comparison[0]
            hint = (
                f"{fmt(first['offline'], True)} at validation"
                if first["offline"] is not None
                else "no validation score"
            )
            cards += _card(f"Live {metric_name(first['metric'])}", fmt(first["live"], True), hint)
        else:
            cards += _card("Live score", "—", "no true labels sent back yet")
    links = "".join(f'<a href="#{a}">{esc(h)}</a>' for a, h in toc)
    return (
        '<header class="hero">'
        f'<div class="eyebrow">{eyebrow}</div>'
        f"<h1>{esc(title)}</h1>"
        f'<div class="cards">{cards}</div>'
        f'<p class="validation"><strong>In short:</strong> {esc(result.get("message", ""))}</p>'
        f'<nav class="toc">{links}</nav>'
        "</header>\n"
    )


def _card(label: str, value: str, hint: str, *, primary: bool = False, style: str = "") -> str:
    return (
        f'<div class="card{" primary" if primary else ""}"{style}>'
        f'<div class="label">{esc(label)}</div><div class="value">{esc(value)}</div>'
        f'<div class="hint">{esc(hint)}</div></div>'
    )


def _checked(result: dict) -> str:
    ref = result.get("reference") or {}
    data = result["dataset"]
    facts = {
        "model": f"{result['model']} version {result['version']} ({result.get('task')})",
        "window": f"{_day(result['window'].get('since')) or 'the beginning'} → "
        f"{_day(result['window'].get('until'))}",
        "predictions checked": f"{result['n_predictions']:,}",
        "first / last prediction": f"{_day(result.get('first_prediction'))} / "
        f"{_day(result.get('last_prediction'))}",
        "compared with": f"a sample of {ref.get('n_sample') or 0:,} of the "
        f"{ref.get('n_rows') or 0:,} training rows of version {result['version']}",
        "predictions of other versions": ", ".join(
            f"{n:,} by version {v}" for v, n in result.get("other_versions", {}).items()
        ),
        "columns not checked (personal data)": ", ".join(result.get("pii_excluded") or []),
    }
    intro = (
        '<p class="intro">Each column of the logged inputs is compared with the same column in '
        "the training data, using the test Evidently picks by default: with up to 1,000 "
        "reference values a statistical test (drift when p ≤ 0.05), with more a distance "
        f"(drift from 0.1 up). The data as a whole drifts when at least "
        f"{pct(100 * data['share_threshold'])} of the columns do.</p>"
    )
    return intro + kv_table(facts)


def _live(live: dict) -> str:
    out = [
        f'<p class="intro">{live["n_feedback"]:,} of the checked predictions received their true '
        f"label; {live['n_scored']:,} could be scored. The validation score is the one measured "
        "at training time on rows the model had not seen. A live score much worse than it means "
        "the model has become less reliable.</p>"
    ]
    if live["n_unmatched"]:
        examples = ", ".join(esc(repr(x)) for x in live["unmatched_examples"])
        out.append(
            f'<p><span class="warn">{live["n_unmatched"]:,} label(s) sent back are not values the '
            f"model knows</span> (e.g. {examples}); they were left out of the scores.</p>"
        )
    rows = []
    for c in live["comparison"]:
        change = "—" if c["change"] is None else f"{c['change']:+.4f}"
        if c["worse"]:
            change = f'<span class="warn">{change} (worse)</span>'
        rows.append(
            f"<tr><td class=name>{esc(metric_name(c['metric']))}</td>"
            f"<td class=num>{fmt(c['live'], True)}</td>"
            f"<td class=num>{fmt(c['offline'], True)}</td><td class=num>{change}</td></tr>"
        )
    if rows:
        head = (
            "<tr><th>Metric</th><th class=num>Live</th><th class=num>Validation</th>"
            "<th class=num>Change</th></tr>"
        )
        out.append(table(head, rows))
    return "".join(out)


def _predictions(result: dict, reference: dict | None, predictions: pd.Series | None) -> str:
    pred = result["prediction"]
    what = "predicted values" if pred["kind"] == "numeric" else "predicted classes"
    verdict = (
        f'<span class="warn">The {what} have drifted</span>'
        if pred["drift"]
        else f"The {what} look like those at validation"
    )
    text = (
        f"<p>{verdict}: {esc(_test_words(pred) or 'too few predictions to test')}. The reference "
        "is what the model answered for its validation rows during training. Prediction drift "
        "means the model now answers differently, because its inputs changed or because the "
        "world did.</p>"
    )
    if reference is None or predictions is None or "prediction" not in reference:
        return text
    from shipml.monitor.drift import drift_png

    current = pd.Series(list(predictions), dtype=object, name="prediction")
    if pred["kind"] == "numeric":
        current = pd.to_numeric(current, errors="coerce")
    png = drift_png(reference["prediction"], current, pred["kind"], title="prediction")
    how = (
        "Blue: share of each answer at validation; orange: share in the checked window. "
        "Bars or curves far apart mean the model answers differently now."
    )
    return text + figure(png, "Predictions: reference vs current", how)


def _features(result: dict) -> str:
    columns = sorted(result["dataset"]["columns"], key=lambda c: (not c["drift"], c["column"]))
    rows = []
    for c in columns:
        drifted = '<span class="warn">yes</span>' if c["drift"] else "no"
        value = c["p_value"] if c["p_value"] is not None else c["statistic"]
        which = "p-value" if c["p_value"] is not None else "distance"
        rows.append(
            f"<tr><td>{esc(c['column'])}</td>"
            f"<td><span class=kind>{esc(c['kind'])}</span></td>"
            f"<td>{esc(c['method'])}</td>"
            f"<td class=num>{fmt(value)}{'' if value is None else f' <small>{which}</small>'}</td>"
            f"<td class=num>{fmt(c['threshold'])}</td><td>{drifted}</td>"
            f"<td class=num>{_share(c['reference_missing'])}</td>"
            f"<td class=num>{_share(c['current_missing'])}</td></tr>"
        )
    head = (
        "<tr><th>Column</th><th>Kind</th><th>Test</th><th class=num>Statistic</th>"
        "<th class=num>Threshold</th><th>Drifted</th><th class=num>Missing (training)</th>"
        "<th class=num>Missing (now)</th></tr>"
    )
    used = sorted({c["method"] for c in columns if c["method"] in _METHODS})
    legend = "".join(f"<li><b>{esc(m)}</b>: {esc(_METHODS[m])}.</li>" for m in used)
    intro = (
        '<p class="intro">Every column the model uses, drifted ones first. A drifted column is '
        "not always a problem: check that the change is real (a new product, a new region) and "
        "not a bug upstream (a unit or format change), then retrain on recent data if it is.</p>"
    )
    return intro + table(head, rows) + (f'<ul class="notes">{legend}</ul>' if legend else "")


def _plots(result: dict, reference: dict | None, current: pd.DataFrame | None) -> str:
    if reference is None or current is None:
        return ""
    from shipml.monitor.drift import drift_png

    figures = []
    kinds = {c["column"]: c["kind"] for c in result["dataset"]["columns"]}
    for name in result.get("drifted_columns", [])[:MAX_PLOTS]:
        if name not in current.columns or name not in reference.get("columns", {}):
            continue
        png = drift_png(reference["columns"][name], current[name], kinds[name], title=name)
        how = (
            "Blue: the training data; orange: the inputs in the checked window, as shares of "
            "their values so that both compare whatever their size."
        )
        figures.append(figure(png, f"{name}: reference vs current", how))
    more = len(result.get("drifted_columns", [])) - MAX_PLOTS
    if figures and more > 0:
        figures.append(f'<p class="muted">{more} more drifted column(s) are in the table.</p>')
    return "".join(figures)


# -- words -----------------------------------------------------------------------------------
def _test_words(test: dict) -> str:
    if test.get("method") in (None, "too few values"):
        return ""
    if test.get("p_value") is not None:
        return f"{test['method']} p-value {num(test['p_value'])} (threshold {test['threshold']})"
    return f"{test['method']} distance {num(test['statistic'])} (threshold {test['threshold']})"


def num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def _share(value: float | None) -> str:
    return '<span class="na">—</span>' if value is None else pct(100 * value)


def _day(iso: str | None) -> str:
    if not iso:
        return ""
    return pd.Timestamp(iso).strftime("%Y-%m-%d %H:%M UTC")
