"""The evaluation protocol: which events a recommender trains on, is chosen on (validation)
and is scored on (test) — decided from the log, overridable, and stated in words.

Two protocols (`split_log(inter, how=...)`):

- **global time split** ("time"): events after a test cut-off time are the test, the window
  before it the validation; a model only ever sees events from before the window it is scored
  on, as in production. Chosen by "auto" when the log has times and enough users are active on
  both sides of both cut-offs (`_TIME_MIN_USERS`, and `_TIME_MIN_SHARE` of the users
  leave-last-out would score: a log where most users come once, as MovieLens, falls back).
- **leave-last-out by time** ("leave-last-out"): each user's last event is the test, the one
  before it the validation; users with too few events only train.

Either way a held-out item is a *target* only when the user did not have it before (the
ranking excludes the user's own items, so a repeat could never be found) and the item exists
in the training events (nobody can rank an item no one has seen); users unknown at the
cut-off are cold-start visitors, not scored here. All of these are counted in `counts` and in
the description. Validation users are subsampled (seeded) so that the search's (users x items)
score matrices stay under `max_val_cells`; the test is scored in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shipml.errors import DataError, UsageError
from shipml.recommend.interactions import Interactions, RankTargets

__all__ = ["RecSplit", "split_log", "held_out_targets", "describe", "HOWS", "MAX_VAL_CELLS"]

HOWS = ("auto", "leave-last-out", "time")
MAX_VAL_CELLS = 20_000_000  # validation users x items: one score matrix of the search
_TEST_SHARE = 0.1  # the last 10 % of the events (by time) are the test window
_VAL_SHARE = 0.1  # the 10 % before them the validation window
_TIME_MIN_USERS = 50
_TIME_MIN_SHARE = 0.2


@dataclass
class RecSplit:
    """`train` -> chosen on `val`; `train_val` (train + the validation events) -> scored on
    `test`; the served model refits on every event. `counts`: the numbers the description
    states (JSON-able)."""

    kind: str  # "leave-last-out" or "time"
    train: Interactions
    val: RankTargets
    train_val: Interactions
    test: RankTargets
    description: str
    counts: dict = field(default_factory=dict)


@dataclass
class _Part:
    """Held-out events turned into RankTargets, and what was left out of them."""

    targets: RankTargets
    counts: dict


def split_log(inter: Interactions, how: str = "auto", *, seed: int = 0,
              max_val_cells: int = MAX_VAL_CELLS) -> RecSplit:  # fmt: skip
    """Split `inter` into train / validation / test by time (see the module docstring).
    `how`: "auto" (decided from the data), "leave-last-out" or "time"."""
    if how not in HOWS:
        raise UsageError(f"unknown split {how!r}; expected one of {', '.join(HOWS)}")
    if inter.n_events == 0:
        raise DataError("the log has no events to split")
    if how == "time" and inter.time is None:
        raise UsageError("a time split needs the log's time column (time=...); this log has none")
    timed = _time_split(inter, seed, max_val_cells) if inter.time is not None else None
    why = _time_verdict(inter, timed)
    if how == "time" or (how == "auto" and why is None):
        if timed is None or timed.counts["test"]["users"] == 0 or timed.counts["val"]["users"] == 0:
            raise DataError(f"a time split of this log scores nobody: {why}")
        timed.counts["decision"] = "asked for" if how == "time" else _why_time(timed.counts)
        timed.description = describe(timed.counts)
        return timed
    split = _leave_last_out(inter, seed, max_val_cells)
    if not len(split.test) or not len(split.val):
        raise DataError(
            "this log has too few events per user to evaluate a recommender: leave-last-out "
            f"scores {len(split.val):,} validation and {len(split.test):,} test users (a user "
            "needs 3 events, the last ones new to them); add events or users"
        )
    split.counts["decision"] = "asked for" if how == "leave-last-out" else why
    split.description = describe(split.counts)
    return split


# --------------------------------------------------------------------------------------------
# the two protocols


def _leave_last_out(inter: Interactions, seed: int, max_cells: int) -> RecSplit:
    test_idx = _last_per_user(inter)
    train_val = inter.take(_without(inter.n_events, test_idx))
    val_idx = _last_per_user(train_val)
    train = train_val.take(_without(train_val.n_events, val_idx))
    val = _held_out(train, train_val.take(val_idx), seed, max_cells)
    test = _held_out(train_val, inter.take(test_idx), seed, None)
    counts = _counts("leave-last-out", inter, train, train_val, val, test)
    return RecSplit("leave-last-out", train, val.targets, train_val, test.targets, "", counts)


def _time_split(inter: Interactions, seed: int, max_cells: int) -> RecSplit | None:
    """The global time split, or None when the times do not spread over three windows."""
    t = inter.time
    t_val, t_test = np.quantile(t, [1 - _TEST_SHARE - _VAL_SHARE, 1 - _TEST_SHARE],
                                method="lower")  # fmt: skip
    if not t_val < t_test < t.max():
        return None
    train, train_val = inter.take(t <= t_val), inter.take(t <= t_test)
    val = _held_out(train, inter.take((t > t_val) & (t <= t_test)), seed, max_cells)
    test = _held_out(train_val, inter.take(t > t_test), seed, None)
    counts = _counts("time", inter, train, train_val, val, test)
    counts["cutoffs"] = {"validation": float(t_val), "test": float(t_test)}
    return RecSplit("time", train, val.targets, train_val, test.targets, "", counts)


def _time_verdict(inter: Interactions, timed: RecSplit | None) -> str | None:
    """None when the time split suits this log; else why not, in words."""
    if inter.time is None:
        return "the log has no times, so the file's order is the time order"
    if timed is None:
        return "the times do not spread over three windows (too many events share a time)"
    c = timed.counts
    both = min(c["test"]["users"], c["val"]["users"])
    enough = max(_TIME_MIN_USERS, _TIME_MIN_SHARE * c["users_with_two_events"])
    if both < enough:
        who = f"{both:,} user" + (" is" if both == 1 else "s are")
        return (f"only {who} active on both sides of the time cut-offs (a time "
                f"split needs {int(np.ceil(enough)):,}: {_TIME_MIN_USERS} and "
                f"{_TIME_MIN_SHARE:.0%} of the {c['users_with_two_events']:,} users with two "
                "events or more)")  # fmt: skip
    return None


def _why_time(c: dict) -> str:
    return (f"{min(c['test']['users'], c['val']['users']):,} users are active on both sides "
            f"of the time cut-offs (at least {_TIME_MIN_USERS} and {_TIME_MIN_SHARE:.0%} of "
            f"the {c['users_with_two_events']:,} users with two events or more)")  # fmt: skip


def held_out_targets(history: Interactions, later: Interactions) -> tuple[RankTargets, dict]:
    """The RankTargets of `later` events (coded with the same ID maps as `history`, e.g. new
    purchases scored against a trained model's events) under this protocol's rules: known
    users only, items new to the user and known to `history`; and the counts of what was left
    out ("new_users", "repeats", "new_items", "users", "targets", ...)."""
    part = _held_out(history, later, 0, None)
    return part.targets, part.counts


# --------------------------------------------------------------------------------------------
# building blocks


def _last_per_user(inter: Interactions) -> np.ndarray:
    """Index of each user's last event (users with at least two events), in event order."""
    last = np.full(inter.n_users, -1)
    last[inter.user] = np.arange(inter.n_events)  # events are in time order: the last wins
    counts = np.bincount(inter.user, minlength=inter.n_users)
    return np.sort(last[(last >= 0) & (counts >= 2)])


def _without(n: int, idx: np.ndarray) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[idx] = False
    return keep


def _held_out(history: Interactions, held: Interactions, seed: int,
              max_cells: int | None) -> _Part:  # fmt: skip
    """The targets of `held` (events after `history`): known users only, items the user did
    not have and the history knows; validation users subsampled to `max_cells`."""
    n_items = history.n_items
    known_user = np.bincount(history.user, minlength=history.n_users) > 0
    known_item = np.bincount(history.item, minlength=n_items) > 0
    pairs = np.unique(held.user.astype(np.int64) * n_items + held.item)
    seen = np.unique(history.user.astype(np.int64) * n_items + history.item)
    users, items = pairs // n_items, pairs % n_items
    new_user = ~known_user[users]
    repeat = np.isin(pairs, seen, assume_unique=True)
    new_item = ~known_item[items] & ~new_user
    keep = ~new_user & ~repeat & ~new_item
    kept_users = np.unique(users[keep])
    counts = {
        "events": int(held.n_events),
        "window_users": int(len(np.unique(held.user))),
        "new_users": int(len(np.unique(users[new_user]))),
        "repeats": int(repeat.sum()),
        "new_items": int(new_item.sum()),
        "eligible_users": int(len(kept_users)),
    }
    if max_cells is not None and len(kept_users) * n_items > max_cells:
        n = max(1, max_cells // n_items)
        kept_users = np.sort(np.random.default_rng(seed).choice(kept_users, n, replace=False))
        keep &= np.isin(users, kept_users)
        counts.update(subsampled_to=int(n), max_cells=int(max_cells))
    row = np.searchsorted(kept_users, users[keep])
    target = sp.csr_matrix((np.ones(len(row), np.float32), (row, items[keep])),
                           shape=(len(kept_users), n_items))  # fmt: skip
    counts.update(users=int(len(kept_users)), targets=int(target.nnz))
    return _Part(RankTargets(history.histories(kept_users), target), counts)


def _counts(kind: str, inter, train, train_val, val: _Part, test: _Part) -> dict:
    def part(x: Interactions) -> dict:
        return {"events": int(x.n_events), "users": int(len(np.unique(x.user))),
                "items": int(len(np.unique(x.item)))}  # fmt: skip

    per_user = np.bincount(inter.user, minlength=inter.n_users)
    return {
        "kind": kind,
        "log": part(inter),
        "catalogue": int(inter.n_items),
        "users_with_two_events": int((per_user >= 2).sum()),
        "train": part(train),
        "train_val": part(train_val),
        "val": val.counts,
        "test": test.counts,
    }


def describe(c: dict) -> str:
    """The protocol in words, with its numbers (what the report and the model card say)."""
    log, train, v, t = c["log"], c["train"], c["val"], c["test"]
    if c["kind"] == "time":
        how = (
            "Global time split: the events after the test cut-off (the last "
            f"{_TEST_SHARE:.0%} of the log by time, {t['events']:,} events) are the test, "
            f"the {_VAL_SHARE:.0%} before it ({v['events']:,} events) the validation; a "
            "model is only ever scored on events later than every event it learned from."
        )
    else:
        how = (
            "Leave-last-out by time: each user's last event is the test, the one before it "
            "the validation; users with fewer than two events (three for the validation) "
            "only train. Other users' later events stay in training (no global cut-off)."
        )
    why = c.get("decision") or ""
    why = "Chosen because it was asked for." if why == "asked for" else f"Chosen because {why}."
    sub = ""
    if "subsampled_to" in v:
        sub = (
            f" (a seeded sample of the {v['eligible_users']:,} eligible, so that the "
            f"search's score matrices stay under {v['max_cells'] / 1e6:g} M cells)"
        )
    return " ".join([
        how, why,
        f"Log: {log['events']:,} events of {log['users']:,} users on {c['catalogue']:,} items.",
        f"Training: {train['events']:,} events of {train['users']:,} users.",
        f"Validation: {v['users']:,} users{sub}, {v['targets']:,} held-out items.",
        f"Test: {t['users']:,} users, {t['targets']:,} held-out items, ranked by the model "
        f"refitted on training + validation ({c['train_val']['events']:,} events).",
        "Every item is ranked (full ranking), the user's earlier items excluded; a held-out "
        "item the user already had is not a target "
        f"({v['repeats']:,} in validation, {t['repeats']:,} in test), nor is an item absent "
        f"from the training events ({v['new_items']:,} and {t['new_items']:,}); users "
        f"unknown at the cut-off are cold start, not scored here ({v['new_users']:,} and "
        f"{t['new_users']:,}).",
    ])  # fmt: skip
