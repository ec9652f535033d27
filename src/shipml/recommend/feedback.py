"""The clicks and purchases a served recommender got back, as events `shipml retrain` adds.

Each recommendation answer is logged with the model's own key of the request's user
(`logged_user`: the salted hash the model stores its users under, model.user_key) and an id of
that salt; a request without a user id is a session, known by its prediction id. A feedback
event on that answer (monitor/recommend.py `add_event`) then becomes one event of that user or
session: the item clicked or bought, the time of the feedback, its event type weighted as the
training log weighs it (a log without an event column: every event counts 1).

Answers logged under another salt (a model of that name trained anew, not retrained) cannot be
joined to the model's users: they are left out and counted in a note. A feedback event the
stored events or `--data` already hold — the same user, item and weight within
`DUPLICATE_S` seconds (a log without time: the same user, item and weight) — is dropped, so
that retraining twice, or exporting the same clicks in `--data`, never counts an event twice.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from shipml.recommend.interactions import Interactions

__all__ = ["logged_user", "salt_id", "feedback_events", "drop_known", "DUPLICATE_S"]

DUPLICATE_S = 60.0
_SESSION = "session:"


def salt_id(salt: str | None) -> str | None:
    """A short public id of a model's salt (which versions' user keys can be joined)."""
    if salt is None:
        return None
    return hashlib.sha256(f"shipml-salt-id\x00{salt}".encode()).hexdigest()[:12]


def logged_user(model, user) -> dict:
    """What the prediction log keeps of a request's user besides the server's hash: the
    model's key of it (None without a user) and the id of the model's salt."""
    from shipml.recommend.model import user_key

    salt = getattr(model, "salt", None)
    if salt is None:  # a model without a salt keys users by their raw ID: never logged
        return {"user_key": None, "salt_id": None}
    key = None if user is None else user_key(salt, str(user))
    return {"user_key": key, "salt_id": salt_id(salt)}


def feedback_events(engine, name: str, salt: str | None, spec: dict):
    """(Interactions of the feedback events on `name`'s logged answers, or None when there
    are none; notes). Users are model keys (or "session:<prediction id>"), times epoch
    seconds."""
    from shipml.monitor.recommend import read_answers

    wanted, rows, other_salt, unkeyed = salt_id(salt), [], 0, 0
    for answer in read_answers(engine, name):
        if not answer["events"]:
            continue
        if answer["salt_id"] is None and wanted is not None:
            unkeyed += len(answer["events"])
            continue
        if answer["salt_id"] != wanted:
            other_salt += len(answer["events"])
            continue
        who = answer["user_key"] or _SESSION + answer["id"]
        for e in answer["events"]:
            rows.append((who, str(e["item"]), _seconds(e.get("at")), str(e["event"])))
    notes = []
    if unkeyed:
        notes.append(f"{unkeyed:,} feedback events on answers logged without the model's user "
                     "key (by an older server) were left out")  # fmt: skip
    if other_salt:
        notes.append(f"{other_salt:,} feedback events on answers of a model trained anew (its "
                     "users keyed otherwise) were left out")  # fmt: skip
    if not rows:
        return None, notes
    frame = pd.DataFrame(rows, columns=["user", "item", "time", "event"])
    return _interactions(frame, spec), notes


def _seconds(at) -> float:
    if at is None:
        return float("nan")
    return pd.Timestamp(at).tz_convert("UTC").timestamp()


def _interactions(frame: pd.DataFrame, spec: dict) -> Interactions:
    from shipml.recommend.log_weights import _CANONICAL, DEFAULT_EVENTS, name_key

    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    users, user = np.unique(frame["user"].to_numpy(str), return_inverse=True)
    items, item = np.unique(frame["item"].to_numpy(str), return_inverse=True)
    if spec.get("event"):
        # the weight the training log gave each kind ("buy" 4 -> purchase 4), else the default
        table = {
            _CANONICAL.get(name_key(k)): float(v) for k, v in (spec.get("events") or {}).items()
        }
        weight = [table.get(e, DEFAULT_EVENTS[e]) for e in frame["event"]]
    else:
        weight = np.ones(len(frame))
    time = frame["time"].to_numpy(np.float64) if spec.get("time") else None
    return Interactions(users.astype(object), items.astype(object), user.astype(np.int32),
                        item.astype(np.int32), np.asarray(weight, np.float32), time)  # fmt: skip


def drop_known(feedback: Interactions, known: list[Interactions]) -> tuple[Interactions, int]:
    """`feedback` without the events one of `known` already holds (see the module docstring),
    and how many were dropped."""
    fb = _frame(feedback)
    seen = pd.concat([_frame(k) for k in known if k is not None and k.n_events], ignore_index=True)
    if seen.empty or fb.empty:
        return feedback, 0
    pairs = fb.reset_index().merge(seen, on=["user", "item", "weight"], suffixes=("", "_seen"))
    if feedback.time is not None and "time_seen" in pairs and pairs["time_seen"].notna().all():
        pairs = pairs[(pairs["time"] - pairs["time_seen"]).abs() <= DUPLICATE_S]
    dup = np.zeros(feedback.n_events, dtype=bool)
    dup[pairs["index"].to_numpy(int)] = True
    return feedback.take(~dup), int(dup.sum())


def _frame(inter: Interactions) -> pd.DataFrame:
    out = pd.DataFrame({
        "user": inter.users.astype(str)[inter.user],
        "item": inter.items.astype(str)[inter.item],
        "weight": np.round(inter.weight.astype(np.float64), 4),
    })  # fmt: skip
    if inter.time is not None:
        out["time"] = inter.time
    return out
