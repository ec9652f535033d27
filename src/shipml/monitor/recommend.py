"""Watching a served recommender: clicks and purchases on what it recommended.

The server logs one row per recommendation answer (serve/recommend.py): ``inputs`` holds the
route ("recommend" or "similar"), the request's items and the user id as a keyed hash;
``outputs`` the returned item ids, the fallback used ("popular", "session", "text" or None) and
the unknown item ids. Clicks and purchases sent to ``/v1/feedback`` with the answer's id are
kept in the feedback row of that prediction as a list of events (``add_event``).

``recommendation_monitor`` counts, over a window: the answers, those with feedback, and

- hit rate: the share of answers with a click or a purchase on one of the items they returned;
- CTR: the share of answers with a click on a returned item; purchase rate likewise;

overall and by fallback (personal recommendations against popular ones). Data drift and
prediction drift (monitor/drift.py) compare feature columns and predicted labels with a training
table: a recommender has neither, so they are skipped and the result says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from shipml.errors import FeedbackError
from shipml.monitor.log import note_version_span

__all__ = ["add_event", "recommendation_monitor", "EVENTS", "MAX_EVENTS"]

EVENTS = ("click", "purchase")
MAX_EVENTS = 100  # events kept per recommendation answer
_ROUTES = ("recommend", "similar")


def add_event(engine: sa.Engine, prediction_id: str, item: str, event: str, *,
              key_name: str | None) -> dict:  # fmt: skip
    """Store a click or purchase on `item` for the recommendation answer `prediction_id`.

    Several events per answer (a click, then a purchase); the same event on the same item twice
    is stored once. FeedbackError: 404 no such prediction, 422 not a recommendation or a bad
    event, 409 past MAX_EVENTS."""
    if event not in EVENTS:
        raise FeedbackError(f"event must be one of {', '.join(EVENTS)}, got {event!r}", 422)
    now = dt.datetime.now(dt.timezone.utc)
    new = {"item": item, "event": event}
    with engine.begin() as conn:
        row = _recommendation(conn, prediction_id)
        stored, events = _stored_events(conn, prediction_id)
        duplicate = any(e["item"] == item and e["event"] == event for e in events)
        if not duplicate:
            if len(events) >= MAX_EVENTS:
                raise FeedbackError(
                    f"prediction {prediction_id!r} already has {MAX_EVENTS} events", 409
                )
            label = {"events": [*events, {**new, "at": now.isoformat()}]}
            _save(conn, prediction_id, label, insert=not stored, now=now, key_name=key_name)
    return {"prediction_id": prediction_id, "model": row.model, "version": row.version,
            **new, "recommended": item in row.outputs["items"],
            "duplicate": duplicate}  # fmt: skip


def _recommendation(conn, prediction_id: str):
    """The logged row of a recommendation answer (model, version, outputs), else
    FeedbackError 404 (no such prediction) or 422 (not a recommendation)."""
    from shipml.registry import tables as t

    row = conn.execute(
        sa.select(t.predictions.c.model, t.predictions.c.version, t.predictions.c.outputs)
        .where(t.predictions.c.id == prediction_id)
    ).first()  # fmt: skip
    if row is None:
        raise FeedbackError(f"no logged prediction has id {prediction_id!r}", 404)
    if not isinstance((row.outputs or {}).get("items"), list):
        raise FeedbackError(
            f"prediction {prediction_id!r} is not a recommendation: send its true "
            '"label" instead of "item" and "event"',
            422,
        )
    return row


def _stored_events(conn, prediction_id: str) -> tuple[bool, list[dict]]:
    """(whether the answer has a feedback row, its events), the row locked for the update."""
    from shipml.registry import tables as t

    stored = conn.execute(
        sa.select(t.feedback.c.label)
        .where(t.feedback.c.prediction_id == prediction_id)
        .with_for_update()
    ).first()  # fmt: skip
    return stored is not None, _events(stored.label) if stored is not None else []


def _save(conn, prediction_id: str, label: dict, *, insert: bool, now, key_name) -> None:
    from shipml.registry import tables as t

    if insert:
        conn.execute(t.feedback.insert().values(prediction_id=prediction_id, label=label,
                                                created_at=now, key_name=key_name))  # fmt: skip
    else:
        conn.execute(t.feedback.update().where(t.feedback.c.prediction_id == prediction_id)
                     .values(label=label))  # fmt: skip


def _events(label) -> list[dict]:
    if isinstance(label, dict) and isinstance(label.get("events"), list):
        return [e for e in label["events"] if isinstance(e, dict) and "item" in e]
    return []


def read_answers(engine: sa.Engine, model: str, *, since=None, until=None,
                 version: int | None = None) -> list[dict]:  # fmt: skip
    """The logged recommendation answers of `model` in [since, until), oldest first: id,
    version, route, returned items, fallback, feedback events and the model's key of the
    request's user (None without one or when logged before keys were) with its salt's id."""
    from shipml.monitor.log import logged_rows

    rows = logged_rows(engine, model, since=since, until=until, version=version)
    out = []
    for row in rows:
        outputs, inputs = row.outputs or {}, row.inputs or {}
        if not isinstance(outputs.get("items"), list):
            continue  # not a recommendation answer
        out.append({"id": row.id, "version": int(row.version), "created_at": row.created_at,
                    "route": inputs.get("route", "recommend"), "items": outputs["items"],
                    "fallback": outputs.get("fallback"), "events": _events(row.label),
                    "user_key": inputs.get("user_key"),
                    "salt_id": inputs.get("salt_id")})  # fmt: skip
    return out


def hit_rates(answers: list[dict]) -> dict[str, Any]:
    """Counts and rates of `answers` (see the module docstring)."""
    n = len(answers)
    hit = click = purchase = with_feedback = outside = 0
    for a in answers:
        returned = set(map(str, a["items"]))
        on = [e for e in a["events"] if str(e["item"]) in returned]
        outside += len(a["events"]) - len(on)
        with_feedback += bool(a["events"])
        hit += bool(on)
        click += any(e["event"] == "click" for e in on)
        purchase += any(e["event"] == "purchase" for e in on)
    return {
        "n_answers": n,
        "n_with_feedback": with_feedback,
        "n_hits": hit,
        "n_clicked": click,
        "n_purchased": purchase,
        "n_events_elsewhere": outside,  # events on items the answer did not return
        "hit_rate": hit / n if n else None,
        "ctr": click / n if n else None,
        "purchase_rate": purchase / n if n else None,
    }


def recommendation_monitor(engine, result: dict, *, start, end, version, offline: dict) -> dict:
    """Fill `result` (check.monitor's, for a recommender) from the logged answers."""
    answers = read_answers(engine, result["model"], since=start, until=end, version=version)
    result["task"] = "recommend"
    if not answers:
        return result
    checked = version if version is not None else max(a["version"] for a in answers)
    others: dict[str, int] = {}
    for a in answers:
        if a["version"] != checked:
            others[str(a["version"])] = others.get(str(a["version"]), 0) + 1
    rows = [a for a in answers if a["version"] == checked]
    stats = hit_rates(rows)
    by_fallback = {}
    for kind in sorted({a["fallback"] or "personal" for a in rows}):
        part = [a for a in rows if (a["fallback"] or "personal") == kind]
        by_fallback[kind] = {k: hit_rates(part)[k] for k in ("n_answers", "hit_rate", "ctr")}
    stats["by_fallback"] = by_fallback
    stats["by_route"] = {r: sum(a["route"] == r for a in rows) for r in _ROUTES}
    stats["offline"] = {k: v for k, v in offline.items() if k.startswith(("hr@", "ndcg@"))}
    result.update(version=checked, n_predictions=len(rows), other_versions=others,
                  status="checked", recommendations=stats)  # fmt: skip
    note_version_span(result, rows, checked, others)
    result["notes"].append(
        "Data and prediction drift were not checked: they compare feature columns and predicted "
        "labels with the training table, and a recommender has neither. Hit rate and CTR are "
        "the live measures of a recommender."
    )
    result["message"] = _summary(result["model"], checked, stats)
    return result


def _summary(model: str, version: int, s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    return (
        f"{s['n_answers']:,} recommendation answers of {model}/{version}: hit rate "
        f"{pct(s['hit_rate'])} (a click or purchase on a returned item), CTR {pct(s['ctr'])}, "
        f"purchases {pct(s['purchase_rate'])}; {s['n_with_feedback']:,} with feedback"
    )
