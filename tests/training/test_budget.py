"""The time budget is the wall clock of the whole `train` call, and a short one still ends at
least as good as LightGBM's defaults (issue 13, item 11).

The planner is driven by a fake clock, so what it reserves and skips is exact; the real runs
assert what does not depend on the machine's speed: the search runs until its (planned)
deadline, the defaults are the first trial, and nothing chosen scores below them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import AI4I, AI4I_LEAKS, BANKING, FakeClock

MINILM_BYTES = 90_864_160  # all-MiniLM-L6-v2's weights


def test_plan_keeps_back_every_step_after_the_search():
    from shipml.planning import TimePlan, plan_text_steps, runtime_check_seconds, write_seconds

    clock = FakeClock()
    plan = TimePlan(60.0, clock=clock, cpu_clock=clock)
    plan.reserve("finish", 4.0)
    reserved = plan_text_steps(plan, MINILM_BYTES, rows=1000, per_text_s=0.004)
    check = runtime_check_seconds(MINILM_BYTES, 1000, 0.004)
    assert check <= 0.35 * 60  # fits its share: reserved up front
    assert plan.reserved["runtime"] == pytest.approx(check)
    assert reserved == pytest.approx(check + write_seconds(int(1.7 * MINILM_BYTES)))
    search = plan.search_budget()
    assert search.deadline == pytest.approx(160.0 - 4.0 - reserved)
    plan.reserve("refit", 5.0)  # re-estimated during the search: the deadline follows at once
    assert search.deadline == pytest.approx(160.0 - 4.0 - reserved - 5.0)
    clock.advance(search.deadline - clock() - 0.01)
    assert not search.expired
    clock.advance(0.02)
    assert search.expired
    # the refit may use its own reserve, never the int8 check's or the report's
    assert plan.budget("refit").deadline == pytest.approx(160.0 - 4.0 - reserved)
    plan.run("refit", lambda: clock.advance(3.0))
    assert "refit" not in plan.reserved and plan.spent["refit"] == pytest.approx(3.0)


def test_int8_check_is_skipped_when_it_does_not_fit_and_says_so():
    from shipml.planning import TimePlan, plan_text_steps, runtime_skip

    clock = FakeClock()
    plan = TimePlan(30.0, clock=clock, cpu_clock=clock)
    plan.reserve("finish", 3.0)
    plan_text_steps(plan, MINILM_BYTES, rows=1000, per_text_s=0.004)  # ~14 s: over 35% of 30
    assert "runtime" not in plan.reserved and plan.estimates["runtime"] > 0.35 * 30
    clock.advance(plan.search_budget().deadline - clock())  # the search ran to its deadline
    note = runtime_skip(plan)
    assert note.startswith("runtime: PyTorch (the int8 ONNX check, about 14s, did not fit")
    assert "of the 30s time budget" in note and plan.skipped["runtime"] == note

    # a search that ended early (a fixed number of trials) leaves it the time: it runs
    early = TimePlan(30.0, clock=clock, cpu_clock=clock)
    early.reserve("finish", 3.0)
    plan_text_steps(early, MINILM_BYTES, rows=1000, per_text_s=0.004)
    clock.advance(5.0)
    assert runtime_skip(early) is None and not early.skipped


def test_reserved_int8_check_runs_after_a_search_that_used_its_time():
    from shipml.planning import TimePlan, plan_text_steps, runtime_skip

    clock = FakeClock()
    plan = TimePlan(120.0, clock=clock, cpu_clock=clock)
    plan.reserve("finish", 5.0)
    plan_text_steps(plan, MINILM_BYTES, rows=1000, per_text_s=0.004)
    clock.advance(plan.search_budget().deadline - clock())
    assert runtime_skip(plan) is None


def test_slowdown_scales_the_per_core_estimates():
    from shipml.planning import TimePlan, post_search_seconds

    wall, cpu = FakeClock(), FakeClock()
    plan = TimePlan(600.0, clock=wall, cpu_clock=cpu)
    wall.advance(3.0)
    cpu.advance(1.0)  # other jobs took two of every three seconds
    assert plan.measure_slowdown() == pytest.approx(3.0)
    base = post_search_seconds(600.0, 2000, 10, True)
    assert post_search_seconds(600.0, 2000, 10, True, plan.slowdown) == pytest.approx(3 * base)
    wall.advance(30.0)
    assert plan.measure_slowdown() == 4.0  # capped
    assert post_search_seconds(10.0, 2000, 10, True, 4.0) == pytest.approx(4.0)  # 40% of 10 s


def test_boosting_stops_at_an_injected_deadline():
    from shipml.learners.base import Budget, TrainData
    from shipml.learners.lightgbm import lgb_dataset, lgb_params, out_of_time, train_booster

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    data = TrainData(X, X[:, 0] + rng.normal(size=300), "regression")
    clock = FakeClock(tick=1.0)  # each look at the clock is a second later
    budget = Budget(clock() + 20.0, clock)
    params = lgb_params("regression", 0, 0, num_boost_round=1000)
    booster, _ = train_booster(params, lgb_dataset(data, None), None, budget)
    assert out_of_time(booster) and booster.current_iteration() < 25


@pytest.fixture(scope="module")
def skewed() -> pd.DataFrame:
    """ai4i's machines, predicting the rotational speed: positive and right-skewed (skew 2),
    so the search also tries a log target."""
    frame = pd.read_csv(AI4I, encoding="utf-8-sig").drop(columns=AI4I_LEAKS + ["Machine_failure"])
    return frame


@pytest.fixture(scope="module")
def short_run(skewed):
    import shipml

    return shipml.train(skewed, target="Rotational speed [rpm]", time_budget=8, progress=False)


def test_short_budget_starts_with_lightgbm_defaults_on_the_raw_target(short_run):
    trials = short_run.info["trials"]
    assert trials[0]["name"] == "lightgbm(defaults)" and trials[0]["state"] == "complete"
    defaults = trials[0]["value"]
    assert short_run.metrics["rmse"] <= defaults + 1e-9  # never below the defaults
    logged = [t for t in trials if t["name"] == "lightgbm(defaults, log target)"]
    assert len(logged) == 1  # the same defaults, log1p target
    if short_run.transform == "log":  # kept only because it beat the raw target
        assert logged[0]["value"] < defaults
    others = [c for c in short_run.info["candidates"] if not c["name"].startswith("lightgbm(")]
    kept = short_run.transform
    assert all(c["params"].get("target_transform", kept) == kept for c in others)


def test_the_search_runs_until_its_planned_deadline(short_run):
    plan = short_run.info["lineage"]["time_plan"]
    marks = plan["marks_s"]
    # used to the end, and in-flight trials stop: within one candidate's time of the deadline
    # either way (the bound scales with the machine's speed, as the candidates' times do)
    longest = max(c["seconds"] for c in short_run.info["candidates"])
    assert marks["search_end"] >= marks["search_deadline"] - 2 * max(1.0, longest)
    assert marks["search_end"] - marks["search_deadline"] < max(2.5, longest)
    assert plan["budget_s"] == 8 and 1.0 <= plan["slowdown"] <= 4.0
    assert "finish" in plan["estimates_s"]


def test_short_text_budget_skips_the_int8_check_and_says_so(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import shipml

    monkeypatch.setenv("SHIPML_HOME", str(tmp_path))
    model = shipml.train(BANKING, target="category", time_budget=15, mode="embed",
                         progress=False, report=False)  # fmt: skip
    runtime = model.info["text_runtime"]
    assert runtime["runtime"] == "pytorch" and "score_onnx_int8" not in runtime
    assert runtime["note"].startswith("runtime: PyTorch (the int8 ONNX check, about")
    assert runtime["note"] in model.info["notes"]
    plan = model.info["lineage"]["time_plan"]
    assert "runtime" in plan["skipped"] and "runtime" not in plan["steps_s"]
    # the search either ran until its deadline, less what a next candidate needs (search.py
    # stops when under max(1 s, the last candidate's time) is left), or tried all it had: few
    # examples per class search linear heads only, one per strength
    from shipml.learners.linear import STRENGTHS as _LINEAR_STRENGTHS

    longest = max(c["seconds"] for c in model.info["candidates"])
    marks = plan["marks_s"]
    used_up = marks["search_end"] >= marks["search_deadline"] - 2 * max(1.0, longest)
    heads = [t for t in model.info["trials"] if t["name"].startswith("linear(")]  # all tried
    assert used_up or len(heads) == len(_LINEAR_STRENGTHS), (marks, heads)


class _SlowImportance:
    """A model whose importance costs `per_row` seconds of the fake clock per row."""

    def __init__(self, clock: FakeClock, per_row: float) -> None:
        self.clock, self.per_row, self.rows = clock, per_row, []

    def global_importance(self, X):
        self.rows.append(len(X))
        self.clock.advance(self.per_row * len(X))
        return {"a": 1.0}


@pytest.mark.parametrize(("per_row", "expected"), [(0.001, 300), (0.02, 125), (1.0, 30)])
def test_importance_takes_the_rows_the_plan_leaves_time_for(per_row, expected):
    """German credit's forests cost 22 ms a row in TreeSHAP (6.8 s for 300 rows, after the
    search had ended on time): the first 30 rows are timed, the rest fit what is left."""
    from shipml.planning import TimePlan
    from shipml.training import _importance

    clock = FakeClock()
    plan = TimePlan(20.0, clock=clock, cpu_clock=clock)
    plan.estimates["finish"] = 5.0
    clock.advance(14.0)  # 6 s left; 0.7 * 5 s kept for the report, reference and registry
    model = _SlowImportance(clock, per_row)
    _importance(model, np.zeros((300, 3)), plan)
    assert model.rows[0] == 30
    # 0.02 s a row: 30 rows take 0.6 s, then 20 - 14.6 - 3.5 = 1.9 s left -> 95 more rows
    assert abs(plan.estimates["importance_rows"] - expected) <= 1
    assert model.rows[-1] == plan.estimates["importance_rows"]


def test_auto_mode_skips_loading_the_encoder_when_even_its_floor_cannot_fit(tmp_path, monkeypatch):
    """sst2 at 15 s: loading PyTorch and the encoder took 3-10 s, only to choose TF-IDF after
    measuring its speed. Its fastest load and speed decide first; texts embedded before (in
    any encoder's cache) still load it, as embedding them again costs almost nothing."""
    import shipml.encoders
    from shipml.data.schema import infer_schema
    from shipml.encoders.cache import EmbeddingCache, text_key
    from shipml.learners.text import _LOAD_FLOOR_S, choose_text_mode

    monkeypatch.setenv("SHIPML_HOME", str(tmp_path))
    rows = pd.read_csv(BANKING)
    schema = infer_schema(rows, "category")
    chars = sum(len(t) for t in set(rows["text"]))
    rate = 1e-4
    floor = (_LOAD_FLOOR_S + rate * chars) * 2.0  # at a measured slowdown of 2

    def refused(*_a, **_k):
        raise AssertionError("the encoder was loaded")

    monkeypatch.setattr(shipml.encoders, "load_encoder", refused)
    choice = choose_text_mode("auto", None, schema, rows, floor / 0.8 - 0.1,
                              seconds_per_char=rate, slowdown=2.0)  # fmt: skip
    assert choice.mode == "tfidf" and choice.encoder is None
    assert choice.notes == [
        f"text columns: TF-IDF, as loading a sentence encoder and embedding {len(rows):,} texts "
        f"would take at least {floor:.0f}s of the {floor / 0.8 - 0.1:.0f}s left; give a larger "
        "--time-budget or --mode embed"
    ]
    # the same texts in some encoder's cache: the encoder is loaded (and measures itself)
    keys = [text_key(t) for t in dict.fromkeys(rows["text"])]
    EmbeddingCache.for_encoder("x" * 32, 4).put(keys, np.zeros((len(keys), 4)), np.zeros(len(keys)))
    with pytest.raises(AssertionError, match="was loaded"):
        choose_text_mode("auto", None, schema, rows, floor / 0.8 - 0.1,
                         seconds_per_char=rate, slowdown=2.0)  # fmt: skip
    # enough time for the floor: loaded too (it then measures what embedding really costs)
    other = tmp_path / "other"
    monkeypatch.setenv("SHIPML_HOME", str(other))
    with pytest.raises(AssertionError, match="was loaded"):
        choose_text_mode("auto", None, schema, rows, floor / 0.8 + 0.1,
                         seconds_per_char=rate, slowdown=2.0)  # fmt: skip


def test_auto_mode_falls_back_to_tfidf_when_embedding_passes_its_deadline(tmp_path, monkeypatch):
    """Under load the measured speed can be half the real one (sst2 at 30 s: 16.6 s to embed
    what fit the plan): auto mode stops embedding between batches at its deadline, keeps what
    it encoded in the cache, and trains on TF-IDF in the time left."""
    pytest.importorskip("torch")
    import shipml
    from shipml.encoders import load_encoder
    from shipml.encoders.cache import EmbeddingCache, text_key

    monkeypatch.setenv("SHIPML_HOME", str(tmp_path))
    encoder = load_encoder(None)
    encoder.seconds_per_char = 1e-6  # projected: embedding fits easily
    forward, calls = encoder._forward, []

    def slow_forward(encodings):  # the first batch "takes" the whole embedding deadline
        calls.append(len(encodings))
        encoder.deadline = 0.0 if encoder.deadline is not None else None
        return forward(encodings)

    monkeypatch.setattr(encoder, "_forward", slow_forward)
    rows = pd.read_csv(BANKING)
    model = shipml.train(rows, target="category", time_budget=30, n_trials=1, progress=False,
                         report=False, encoder=encoder)  # fmt: skip
    assert len(calls) == 1 and not model.encoder.embeds_text
    note = next(n for n in model.info["notes"] if "sentence embeddings stopped" in n)
    assert note.startswith(f"text columns: TF-IDF, as sentence embeddings stopped at the "
                           f"deadline after {calls[0]} of ")  # fmt: skip
    assert "runtime" not in model.info["lineage"]["time_plan"]["estimates_s"]
    cache = EmbeddingCache.for_encoder(encoder.id, encoder.dim)
    kept = cache.get([text_key(t) for t in dict.fromkeys(rows["text"])])
    assert len(kept) == calls[0]  # the next run starts from them
    assert encoder.deadline is None  # predictions are never cut
    assert len(model.predict(rows.head(3))) == 3
