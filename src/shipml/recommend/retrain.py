"""`shipml retrain` of a recommender: the new events — those of `--data` and the clicks and
purchases its served answers got back as feedback (feedback.py) — are added to the ones the
model stores, and a new version trains with the same settings (log columns, budget, seed,
families, metric, split, item table). With feedback, `--data` may be left out.

The newest share of the new events (20 % by default) is kept out of training when there are
enough of them: both versions are scored on it (RecModel.evaluate_events), so the comparison is
on recent behaviour neither model saw. Nothing is promoted.
"""

from __future__ import annotations

import numpy as np

from shipml.errors import DataError
from shipml.recommend.interactions import Interactions

__all__ = ["retrain_recommender", "merge_events"]

_MIN_COMPARE_EVENTS = 10
_LOG_COLUMNS = ("user", "item", "time", "weight", "event")


def merge_events(old: Interactions, new: Interactions) -> Interactions:
    """`old` then `new` events as one log in time order (stable: at equal times, old first),
    with the union of their users and items (`old`'s codes kept) and `old`'s item table."""
    users = np.array(list(dict.fromkeys([*map(str, old.users), *map(str, new.users)])), object)
    items = np.array(list(dict.fromkeys([*map(str, old.items), *map(str, new.items)])), object)
    u_index = {u: i for i, u in enumerate(users)}
    i_index = {t: i for i, t in enumerate(items)}
    new_user = np.array([u_index[str(u)] for u in new.users], dtype=np.int32)[new.user]
    new_item = np.array([i_index[str(t)] for t in new.items], dtype=np.int32)[new.item]
    user = np.concatenate([old.user, new_user]).astype(np.int32)
    item = np.concatenate([old.item, new_item]).astype(np.int32)
    weight = np.concatenate([old.weight, new.weight]).astype(np.float32)
    time = None
    order = np.arange(len(user))
    if old.time is not None and new.time is not None:
        time = np.concatenate([old.time, new.time]).astype(np.float64)
        order = np.argsort(time, kind="stable")
        time = time[order]
    table = old.item_table if old.item_table is not None else new.item_table
    return Interactions(users, items, user[order], item[order], weight[order], time, table)


def retrain_recommender(current, info, reg, *, data, time_budget=None, compare_share=0.2,
                        progress=None):  # fmt: skip
    """A new version of the recommender `current` (registered as `info`) trained on its
    stored events plus the new ones: those of `data` (a log with the training log's columns)
    and the clicks and purchases that came back as feedback on its served answers."""
    from shipml.recommend.training import train_recommender
    from shipml.retrain import Retrained

    if not 0 <= compare_share < 1:
        raise DataError(f"compare_share must be in [0, 1), got {compare_share}")
    new, counts, notes = _new_events(current, info, reg, data)
    train_part, recent, held_notes = _held_out(new, compare_share)
    notes += held_notes
    merged = merge_events(current.events, train_part)
    lineage = current.info.get("lineage", {})
    prepared = (merged, current.info.get("log") or {}, current.salt,
                *_source(lineage, data, counts["feedback"]))  # fmt: skip
    model = train_recommender(
        None, prepared=prepared, name=info.name, registry=reg,
        time_budget=time_budget or lineage.get("time_budget_s") or 60.0,
        seed=int(lineage.get("seed", 0)), families=lineage.get("families"),
        n_trials=lineage.get("n_trials"), metric=lineage.get("metric") or "ndcg@10",
        split=lineage.get("split") or "auto", progress=progress,
    )  # fmt: skip
    model.info.setdefault("notes", []).append(
        f"retrained from version {info.version}: {current.events.n_events:,} stored events + "
        f"{train_part.n_events:,} new ones ({counts['feedback']:,} new events from feedback)"
    )
    result = Retrained(name=info.name, current=info.version, new=model.version,
                       rows_original=current.events.n_events,
                       rows_feedback_train=train_part.n_events,
                       rows_feedback_compare=0 if recent is None else recent.n_events,
                       rows_from_feedback=counts["feedback"], notes=notes,
                       model=model)  # fmt: skip
    result.offline = {str(info.version): current.metrics, str(model.version): model.metrics}
    if recent is not None:
        for label, m in ((str(info.version), current), (str(model.version), model)):
            result.recent[label] = _scored(m, recent, notes, label)
    return result


def _new_events(current, info, reg, data) -> tuple[Interactions, dict, list[str]]:
    """(the new events of `data` and of the feedback, in time order; counts; notes)."""
    from shipml.recommend.feedback import drop_known, feedback_events
    from shipml.recommend.log import read_log
    from shipml.recommend.training import pseudonymized

    spec = current.info.get("log") or {}
    given = None
    if data is not None:
        given, _ = read_log(data, **{c: spec.get(c) for c in _LOG_COLUMNS})
        given = pseudonymized(given, current.salt)
    feedback, notes = feedback_events(reg.engine, info.name, current.salt, spec)
    dropped = 0
    if feedback is not None:
        feedback, dropped = drop_known(feedback, [current.events, given])
    if given is None and (feedback is None or not feedback.n_events):
        why = ("every feedback event is already in its stored events" if feedback is not None
               else "; ".join(notes) or "its served answers got no click or purchase "
               "feedback")  # fmt: skip
        raise DataError(f"nothing new to retrain '{info.name}' on: give the new events with "
                        f"--data (a log with the columns it was trained on), or let its served "
                        f"answers get feedback (POST /v1/feedback with an item and an event); "
                        f"{why}")  # fmt: skip
    n_feedback = 0 if feedback is None else feedback.n_events
    notes.append(f"{n_feedback:,} new events came from feedback (clicks and purchases on "
                 f"served recommendations)" + (f"; {dropped:,} feedback events already known "
                 "were left out" if dropped else ""))  # fmt: skip
    if given is None:
        return feedback, {"feedback": n_feedback}, notes
    new = given if not n_feedback else merge_events(given, feedback)
    return new, {"feedback": n_feedback}, notes


def _source(lineage: dict, data, n_feedback: int) -> tuple[str, str | None]:
    """(what the new version was trained on, the sha256 of `data`)."""
    from shipml.recommend.training import _identity

    parts = [str(lineage.get("data_source"))]
    sha = None
    if data is not None:
        source, sha = _identity(data)
        parts.append(source)
    if n_feedback:
        parts.append(f"{n_feedback} feedback events")
    return " + ".join(parts), sha


def _held_out(new: Interactions, share: float):
    """(events to train on, the newest `share` to compare on or None, notes)."""
    n_compare = int(round(new.n_events * share))
    if n_compare < _MIN_COMPARE_EVENTS:
        note = (f"only {new.n_events} new events: all are used for training, and the "
                "comparison is on each version's own test scores only")  # fmt: skip
        return new, None, [note]
    cut = new.n_events - n_compare  # events are in time order
    return new.take(np.arange(cut)), new.take(np.arange(cut, new.n_events)), []


def _scored(model, recent: Interactions, notes: list[str], label: str) -> dict:
    """The full-ranking metrics of `model` on the recent events (flat, as the CLI shows).
    Their users are already the model's keys (pseudonymized `--data`, feedback): scored on a
    copy of the model that looks them up as they are (no salt)."""
    import copy

    keyed = copy.copy(model)
    keyed.salt = None
    try:
        return dict(keyed.evaluate_events(recent)["model"]["full"])
    except DataError as exc:
        notes.append(f"version {label} not scored on the recent events: {exc}")
        return {}
