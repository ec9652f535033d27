"""The monitoring report: one self-contained HTML file, the same style as the training report.

Summary on top (drift verdict, share of drifted feature columns, prediction drift, live score
against the validation score), then the live metrics, the prediction drift, a table of every
feature column with its test, and plots of the most drifted columns. Built from the JSON result
of ``check.monitor`` plus the reference and the logged values the plots need; the page is the
autoescaped template ``shipml/evaluate/templates/monitor_report.html.j2``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from shipml.evaluate.markup import atomic_write, fmt, info_rows, metric_name, pct, render

__all__ = ["write_monitor_report", "MAX_PLOTS"]

MAX_PLOTS = 8  # drift plots of the most drifted columns
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
    sections = []
    if result.get("recommendations"):
        sections.append(_section("recommendations", "Clicks and purchases",
                                 **_recommendations(result)))  # fmt: skip
    elif result.get("answers"):
        sections.append(_section("answers", "Answers and hand-overs", **_answers(result)))
    elif result["status"] != "no_data":
        sections.append(_section("checked", "What was checked", **_checked(result)))
        if result.get("live"):
            sections.append(_section("live", "Live performance", **_live(result["live"])))
        body = _predictions(result, reference, predictions)
        sections.append(_section("predictions", "Prediction drift", **body))
        sections.append(_section("features", "Feature drift", **_features(result)))
        plots = _plots(result, reference, current)
        if plots["plots"]:
            sections.append(_section("plots", "Drifted columns", **plots))
    if result.get("notes"):
        sections.append(_section("notes", "Notes", notes=[str(n) for n in result["notes"]]))
    window = result["window"]
    since = _day(window.get("since")) or "the beginning"
    page = render(
        "monitor_report.html.j2",
        title=f"{result['model']} — monitoring",
        eyebrow=f"shipml monitoring report · {since} → {_day(window.get('until'))}",
        badge=f"version {result['version']}" if result.get("version") is not None else "",
        cards=_cards(result),
        message=result.get("message", ""),
        sections=sections,
    )
    return atomic_write(Path(path), page)


def _section(anchor: str, heading: str, **data: Any) -> dict[str, Any]:
    return {"id": anchor, "heading": heading, "template": f"monitor/{anchor}.html.j2", **data}


# -- sections --------------------------------------------------------------------------------
def _cards(result: dict) -> list[dict[str, Any]]:
    if result["status"] == "no_data":
        return [_card("Verdict", "—", "nothing to check: no predictions in the window", True)]
    if result.get("recommendations"):
        return _recommendation_cards(result["recommendations"])
    if result.get("answers"):
        return _answer_cards(result["answers"])
    data, pred = result["dataset"], result["prediction"]
    drift = result["drift_detected"]
    share = pct(100 * data["share_drifted"]) if data["n_columns"] else "—"
    cards = [
        _card("Verdict", "Drift" if drift else "No drift",
              f"{result['n_predictions']:,} predictions checked", True, alarm=drift),
        _card("Drifted features", f"{data['n_drifted']} of {data['n_columns']}",
              f"{share}; the dataset drifts from {pct(100 * data['share_threshold'])}"),
        _card("Prediction drift", "yes" if pred["drift"] else "no",
              _test_words(pred) or "not tested"),
    ]  # fmt: skip
    comparison = (result.get("live") or {}).get("comparison") or []
    if comparison:
        first = comparison[0]
        hint = (
            f"{fmt(first['offline'], True)} at validation"
            if first["offline"] is not None
            else "no validation score"
        )
        label = f"Live {metric_name(first['metric'])}"
        cards.append(_card(label, fmt(first["live"], True), hint))
    else:
        cards.append(_card("Live score", "—", "no true labels sent back yet"))
    return cards


def _recommendation_cards(s: dict) -> list[dict[str, Any]]:
    def share(x):
        return "—" if x is None else pct(100 * x)

    return [
        _card("Hit rate", share(s["hit_rate"]), "answers with a click or purchase on a returned "
              "item", True),
        _card("CTR", share(s["ctr"]), f"{s['n_clicked']:,} answers clicked"),
        _card("Purchases", share(s["purchase_rate"]), f"{s['n_purchased']:,} answers bought from"),
        _card("Answers", f"{s['n_answers']:,}", f"{s['n_with_feedback']:,} with feedback"),
    ]  # fmt: skip


def _recommendations(result: dict) -> dict[str, Any]:
    s = result["recommendations"]
    facts = {
        "model": f"{result['model']} version {result['version']} (recommend)",
        "answers": f"{s['n_answers']:,} ({s['by_route']['recommend']:,} recommend, "
        f"{s['by_route']['similar']:,} similar)",
        "first / last answer": f"{_day(result.get('first_prediction'))} / "
        f"{_day(result.get('last_prediction'))}",
        "events on items not recommended": f"{s['n_events_elsewhere']:,}",
        "answers of other versions": ", ".join(
            f"{n:,} by version {v}" for v, n in result.get("other_versions", {}).items()
        ),
    }
    rows = [{"fallback": k, **v} for k, v in s["by_fallback"].items()]
    offline = [(metric_name(k), v) for k, v in s.get("offline", {}).items()]
    return {"facts": info_rows(facts), "by_fallback": rows, "offline": offline}


def _answer_cards(s: dict) -> list[dict[str, Any]]:
    def share(x):
        return "—" if x is None else pct(100 * x)

    return [
        _card("Answer rate", share(s["answer_rate"]), f"{s['n_answered']:,} of "
              f"{s['n_questions']:,} questions answered", True),
        _card("Hand-over rate", share(s["handover_rate"]), f"{s['n_handover']:,} handed over "
              "to a person"),
        _card("Helpful", share(s["helpful_share"]), f"of {s['n_feedback']:,} answers with "
              "feedback"),
        _card("Unanswered topics", f"{len(s['unanswered']):,}", "groups of similar questions"),
    ]  # fmt: skip


def _answers(result: dict) -> dict[str, Any]:
    s = result["answers"]
    facts = {
        "model": f"{result['model']} version {result['version']} (answer)",
        "questions": f"{s['n_questions']:,} ({s['n_answered']:,} answered, "
        f"{s['n_handover']:,} handed over)",
        "feedback": f"{s['n_feedback']:,} ({s['n_helpful']:,} helpful, {s['n_corrected']:,} "
        "with the right entry given)",
        "first / last question": f"{_day(result.get('first_prediction'))} / "
        f"{_day(result.get('last_prediction'))}",
        "answers of other versions": ", ".join(
            f"{n:,} by version {v}" for v, n in result.get("other_versions", {}).items()
        ),
    }
    offline = [(metric_name(k), v) for k, v in s.get("offline", {}).items()]
    return {"facts": info_rows(facts), "groups": s["unanswered"], "offline": offline}


def _card(label: str, value: str, hint: str, primary: bool = False, *, alarm: bool = False):
    return {"label": label, "value": value, "hint": hint, "primary": primary, "alarm": alarm}


def _checked(result: dict) -> dict[str, Any]:
    ref = result.get("reference") or {}
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
    return {"facts": info_rows(facts), "share_threshold": result["dataset"]["share_threshold"]}


def _live(live: dict) -> dict[str, Any]:
    comparison = [
        {
            "metric": c["metric"],
            "live": c["live"],
            "offline": c["offline"],
            "change": "—" if c["change"] is None else f"{c['change']:+.4f}",
            "worse": bool(c["worse"]),
        }
        for c in live["comparison"]
    ]
    return {
        "n_feedback": live["n_feedback"],
        "n_scored": live["n_scored"],
        "n_unmatched": live["n_unmatched"],
        "unmatched": [repr(x) for x in live["unmatched_examples"]] if live["n_unmatched"] else [],
        "comparison": comparison,
    }


def _predictions(result: dict, reference: dict | None, predictions: pd.Series | None) -> dict:
    pred = result["prediction"]
    out = {
        "what": "predicted values" if pred["kind"] == "numeric" else "predicted classes",
        "drift": bool(pred["drift"]),
        "test": _test_words(pred),
        "png": None,
    }
    if reference is None or predictions is None or "prediction" not in reference:
        return out
    from shipml.monitor.drift import drift_png

    current = pd.Series(list(predictions), dtype=object, name="prediction")
    if pred["kind"] == "numeric":
        current = pd.to_numeric(current, errors="coerce")
    out["png"] = drift_png(reference["prediction"], current, pred["kind"], title="prediction")
    return out


def _features(result: dict) -> dict[str, Any]:
    columns = sorted(result["dataset"]["columns"], key=lambda c: (not c["drift"], c["column"]))
    rows = [
        {
            **{k: c[k] for k in ("column", "kind", "method", "threshold", "drift")},
            "value": c["p_value"] if c["p_value"] is not None else c["statistic"],
            "which": "p-value" if c["p_value"] is not None else "distance",
            "reference_missing": c["reference_missing"],
            "current_missing": c["current_missing"],
        }
        for c in columns
    ]
    used = sorted({c["method"] for c in columns if c["method"] in _METHODS})
    return {"columns": rows, "legend": [(m, _METHODS[m]) for m in used]}


def _plots(result: dict, reference: dict | None, current: pd.DataFrame | None) -> dict:
    if reference is None or current is None:
        return {"plots": [], "more": 0}
    from shipml.monitor.drift import drift_png

    plots = []
    kinds = {c["column"]: c["kind"] for c in result["dataset"]["columns"]}
    for name in result.get("drifted_columns", [])[:MAX_PLOTS]:
        if name not in current.columns or name not in reference.get("columns", {}):
            continue
        png = drift_png(reference["columns"][name], current[name], kinds[name], title=name)
        plots.append({"column": name, "png": png})
    more = len(result.get("drifted_columns", [])) - MAX_PLOTS
    return {"plots": plots, "more": more if plots else 0}


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


def _day(iso: str | None) -> str:
    if not iso:
        return ""
    return pd.Timestamp(iso).strftime("%Y-%m-%d %H:%M UTC")
