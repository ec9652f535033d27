"""The evaluation protocol: which split for which log, the override, no leakage, the
repeats / new users / new items left out and counted, the description's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from shipml.errors import DataError, UsageError
from shipml.recommend.interactions import Interactions
from shipml.recommend.protocol import held_out_targets, split_log

from .logs_for_eval import DAY, shop_log


def pairs(inter: Interactions) -> set[tuple[int, int]]:
    return set(zip(inter.user.tolist(), inter.item.tolist()))


def target_pairs(targets) -> set[tuple[int, int]]:
    t = targets.target.tocoo()
    return set(zip(targets.history.users[t.row].tolist(), t.col.tolist()))


def assert_histories_are(targets, events: Interactions) -> None:
    """The held-out users' histories are exactly their events in `events`."""
    want = events.matrix()[targets.history.users]
    assert (targets.history.matrix != want).nnz == 0


def test_a_log_whose_users_return_gets_the_global_time_split():
    log = shop_log(seed=0)
    split = split_log(log)
    assert split.kind == "time"
    cut_val, cut_test = split.counts["cutoffs"]["validation"], split.counts["cutoffs"]["test"]
    assert split.train.time.max() <= cut_val < cut_test < log.time.max()
    assert split.train_val.time.max() <= cut_test
    # every event is in exactly one window; nothing after a cut-off reaches the training side
    assert split.train.n_events == int((log.time <= cut_val).sum())
    assert split.train_val.n_events == int((log.time <= cut_test).sum())
    assert_histories_are(split.val, split.train)
    assert_histories_are(split.test, split.train_val)
    after_test = log.take(log.time > cut_test)
    in_val = log.take((log.time > cut_val) & (log.time <= cut_test))
    assert target_pairs(split.test) <= pairs(after_test) - pairs(split.train_val)
    assert target_pairs(split.val) <= pairs(in_val) - pairs(split.train)
    # every pair of the test window new to a known user, on a known item, is a target
    known, stocked = set(split.train_val.user.tolist()), set(split.train_val.item.tolist())
    new = pairs(after_test) - pairs(split.train_val)
    expected = {(u, i) for u, i in new if u in known and i in stocked}
    assert target_pairs(split.test) == expected


def test_a_log_of_one_visit_per_user_gets_leave_last_out():
    log = shop_log(seed=1, bursts=True)
    split = split_log(log)
    assert split.kind == "leave-last-out"
    assert "only" in split.description and "active on both sides" in split.description
    seqs = log.sequences()
    last = {u: int(s[-1]) for u, s in enumerate(seqs) if len(s) >= 2}
    before = {u: int(s[-2]) for u, s in enumerate(seqs) if len(s) >= 3}
    # one test item per user: its last event, when it is new to the user
    for u, i in target_pairs(split.test):
        assert last[u] == i and i not in seqs[u][:-1]
    for u, i in target_pairs(split.val):
        assert before[u] == i and i not in seqs[u][:-2]
    n_test_users = sum(1 for u, i in last.items() if i not in seqs[u][:-1])
    assert len(split.test) == n_test_users
    # the test events never reach train_val, nor the validation events train
    counts = np.bincount(log.user, minlength=log.n_users)
    assert split.train_val.n_events == log.n_events - len(last)
    assert split.train.n_events == log.n_events - len(last) - int((counts >= 3).sum())
    assert_histories_are(split.test, split.train_val)
    assert_histories_are(split.val, split.train)


def test_a_log_without_times_gets_leave_last_out_and_cannot_be_split_by_time():
    log = shop_log(seed=2)
    log.time = None
    split = split_log(log)
    assert split.kind == "leave-last-out" and "no times" in split.description
    with pytest.raises(UsageError, match="time column"):
        split_log(log, how="time")


def test_the_override():
    returning, once = shop_log(seed=3), shop_log(seed=3, bursts=True)
    assert split_log(returning, how="leave-last-out").kind == "leave-last-out"
    forced = split_log(once, how="time")
    assert forced.kind == "time" and "asked for" in forced.description
    assert len(forced.test) < len(split_log(once).test)  # what auto avoided
    with pytest.raises(UsageError, match="leave-last-out"):
        split_log(returning, how="random")


def test_a_log_nobody_can_be_scored_on_is_an_error():
    log = shop_log(n_users=60, events=1, seed=4)
    log = log.take(np.unique(log.user, return_index=True)[1])  # one event per user
    log = log.take(np.argsort(log.time, kind="stable"))
    with pytest.raises(DataError, match="scores nobody"):
        split_log(log, how="time")
    with pytest.raises(DataError, match="too few events per user"):
        split_log(log)


def test_repeats_new_users_and_new_items_are_left_out_and_counted():
    log = shop_log(n_users=200, seed=5, repeat=0.3)
    # 30 newcomers whose only events come after the test cut-off, on 5 items never seen before
    t_end = log.time.max()
    rng = np.random.default_rng(5)
    n = 60
    user = np.concatenate([log.user, 200 + rng.integers(0, 30, n)]).astype(np.int32)
    item = np.concatenate([log.item, rng.integers(0, 5, n) + log.n_items]).astype(np.int32)
    time = np.concatenate([log.time, t_end + rng.uniform(1, DAY, n)])
    order = np.argsort(time, kind="stable")
    big = Interactions(
        np.array([f"u{u}" for u in range(230)], dtype=object),
        np.array([f"i{i}" for i in range(log.n_items + 5)], dtype=object),
        user[order],
        item[order],
        np.ones(len(user), np.float32),
        time[order],
    )
    split = split_log(big, how="time")
    test = split.counts["test"]
    assert test["new_users"] == len(np.unique(user[len(log.user) :]))
    after = big.take(big.time > split.counts["cutoffs"]["test"])
    known = set(split.train_val.user.tolist())
    had = pairs(split.train_val)
    window = pairs(after)
    assert test["repeats"] == len({p for p in window if p in had})
    seen_items = set(split.train_val.item.tolist())
    assert test["new_items"] == len(
        {(u, i) for u, i in window if u in known and i not in seen_items}
    )
    assert test["new_items"] == 0  # the new items were only taken by newcomers
    assert split.test.target.multiply(split.test.history.matrix).nnz == 0
    assert f"{test['repeats']:,} in test" in split.description


def test_validation_users_are_subsampled_under_the_cell_cap_seeded():
    log = shop_log(n_users=400, seed=6)
    full = split_log(log, how="leave-last-out")
    cap = 100 * log.n_items
    small = split_log(log, how="leave-last-out", max_val_cells=cap, seed=1)
    assert len(full.val) > 100 and len(small.val) == 100
    assert len(small.test) == len(full.test)  # the test is never subsampled
    assert set(small.val.history.users) <= set(full.val.history.users)
    again = split_log(log, how="leave-last-out", max_val_cells=cap, seed=1)
    other = split_log(log, how="leave-last-out", max_val_cells=cap, seed=2)
    assert np.array_equal(again.val.history.users, small.val.history.users)
    assert not np.array_equal(other.val.history.users, small.val.history.users)
    assert f"seeded sample of the {len(full.val):,} eligible" in small.description
    assert small.counts["val"]["subsampled_to"] == 100


@pytest.mark.parametrize("how", ["time", "leave-last-out"])
def test_the_description_states_the_numbers(how):
    log = shop_log(seed=7)
    s = split_log(log, how=how)
    d = s.description
    assert d.startswith("Global time split" if how == "time" else "Leave-last-out by time")
    assert f"Log: {log.n_events:,} events of {log.n_users:,} users on {log.n_items:,} items" in d
    assert f"Training: {s.train.n_events:,} events" in d
    assert f"Validation: {len(s.val):,} users, {s.val.target.nnz:,} held-out items" in d
    assert f"Test: {len(s.test):,} users, {s.test.target.nnz:,} held-out items" in d
    assert f"({s.train_val.n_events:,} events)" in d
    assert "full ranking" in d and "already had is not a target" in d


def test_held_out_targets_of_later_events_follow_the_same_rules():
    log = shop_log(n_users=120, seed=8)
    cut = np.quantile(log.time, 0.8)
    before, after = log.take(log.time <= cut), log.take(log.time > cut)
    targets, counts = held_out_targets(before, after)
    known, stocked = set(before.user.tolist()), set(before.item.tolist())
    new = pairs(after) - pairs(before)
    expected = {(u, i) for u, i in new if u in known and i in stocked}
    assert target_pairs(targets) == expected
    assert counts["new_items"] == len({(u, i) for u, i in new if u in known} - expected)
    assert counts["users"] == len(targets) and counts["targets"] == len(expected)
    assert counts["repeats"] == len(pairs(after) & pairs(before))
    assert_histories_are(targets, before)
