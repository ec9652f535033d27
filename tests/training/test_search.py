"""The search (search.py) driven through the family contract: fake families whose fits cost
seconds of a fake clock, so the deadline, the order (the floor first, then the baselines) and
the pool's diversity are exact; and the real registry with a family switched off."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from conftest import FakeClock
from shipml.data.split import plan_validation
from shipml.learners import registry
from shipml.learners.base import Budget, Candidate, Config, TrainData
from shipml.search import run_search


@dataclass(frozen=True)
class FakeFamily:
    """Each fit advances `clock` by `cost` seconds; its out-of-fold scores are the signal times
    `quality` (its configurations' or the suggested one) plus fixed noise."""

    name: str
    clock: FakeClock = field(compare=False)
    cost: float = 2.0
    qualities: tuple[float, ...] = (1.0,)
    searched: bool = False
    floor: bool = False
    baseline: bool = False
    keep: int = 2
    refits: bool = False
    stops_at_deadline: bool = False
    kind: str = "fake"
    missing: str | None = None

    def available(self):
        return self.missing

    def configs(self, data):
        return [Config(f"{self.name}({q:g})", {"quality": q}) for q in self.qualities]

    def suggest(self, trial, task, transforms):
        if not self.searched:
            return None
        return {"quality": trial.suggest_float("quality", 0.0, 3.0)}

    def fit(self, folds, config, budget, trial=None) -> Candidate:
        from shipml.scoring import score

        self.clock.advance(self.cost)
        rows = folds.plan.scored_rows
        y = folds.data.y[rows]
        noise = np.random.default_rng(len(self.name)).normal(size=len(rows))
        oof = config.params["quality"] * (y - 0.5) + noise
        value = score(folds.metric, "binary", y, oof)
        return Candidate(self.name, dict(config.params), value, oof, None, 0.0)

    def refit(self, cand, data, seed, budget):
        return cand

    def load(self, meta, reader, task):
        raise NotImplementedError


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    return TrainData(rng.normal(size=(400, 3)), y, "binary", 2)


@pytest.fixture()
def fakes(monkeypatch):
    """Replace the registry by fake families on one fake clock (registry order: as given)."""
    clock = FakeClock()

    def install(*families):
        fams = {f.name: f for f in families}
        monkeypatch.setattr(registry, "FAMILIES", fams)
        monkeypatch.setitem(registry.KINDS, "supervised", fams)  # what select() reads
        monkeypatch.delenv("SHIPML_FAMILIES", raising=False)

    return clock, install


def _search(data, clock, seconds, **kw):
    plan = plan_validation(data.y, "binary", seed=0)
    return run_search(data, plan, metric="roc_auc", budget=Budget(clock() + seconds, clock), **kw)


def test_search_stops_at_the_deadline_of_a_fake_clock(data, fakes):
    clock, install = fakes
    install(FakeFamily("boost", clock, cost=2.0, searched=True, floor=True, keep=8))
    start = clock()
    result = _search(data, clock, 11.0)
    # the floor ends at 2 s, then trials end at 4, 6, 8, 10 and 12 s: the one that ends past
    # the deadline (11 s) is the last; none starts after it
    assert [t["name"] for t in result.trials] == ["boost(1)"] + [f"boost#{i}" for i in range(5)]
    assert clock() - start == pytest.approx(12.0)
    assert [t["elapsed_s"] for t in result.trials] == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]


def test_the_floor_runs_first_and_finishes_past_the_deadline(data, fakes):
    clock, install = fakes
    install(FakeFamily("lin", clock, cost=1.0, baseline=True, qualities=(0.5, 1.0)),
            FakeFamily("boost", clock, cost=5.0, searched=True, floor=True))  # fmt: skip
    result = _search(data, clock, 3.0)  # less than the floor's 5 s
    assert [t["name"] for t in result.trials] == ["boost(1)"]  # nothing else fits after it
    assert result.best.name == "boost(1)" and result.best.complete
    # on text (defaults_first=False) the baselines run first and the floor keeps the deadline
    later = _search(data, clock, 3.0, defaults_first=False)
    assert [t["name"] for t in later.trials][:2] == ["lin(0.5)", "lin(1)"]


def test_n_trials_counts_the_floor_and_the_searched_trials(data, fakes):
    clock, install = fakes
    install(FakeFamily("lin", clock, cost=0.1, baseline=True, qualities=(0.2, 0.4, 0.6)),
            FakeFamily("boost", clock, cost=0.1, searched=True, floor=True, keep=8))  # fmt: skip
    result = _search(data, clock, 1e9, n_trials=4)
    names = [t["name"] for t in result.trials]
    assert names == ["boost(1)", "lin(0.2)", "lin(0.4)", "lin(0.6)"] + [
        f"boost#{i}" for i in range(3)
    ]


def test_the_pool_keeps_each_family_diverse(data, fakes):
    clock, install = fakes
    install(FakeFamily("lin", clock, cost=0.1, baseline=True, qualities=(0.1, 0.2, 0.3, 0.4)),
            FakeFamily("boost", clock, cost=0.1, searched=True, floor=True, keep=8,
                       qualities=(3.0,)))  # fmt: skip
    result = _search(data, clock, 1e9, n_trials=12)
    families = [c.family for c in result.candidates]
    assert families.count("boost") == 8  # the searched family's top 8 of 12
    # the two best linear ones stay though every boosting trial beats them
    assert [c.name for c in result.candidates if c.family == "lin"] == ["lin(0.4)", "lin(0.3)"]
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)


def test_a_family_switched_off_or_unavailable_is_not_tried(data, fakes, monkeypatch):
    clock, install = fakes
    install(FakeFamily("lin", clock, cost=0.1, baseline=True),
            FakeFamily("tree", clock, cost=0.1, qualities=(2.0,)),
            FakeFamily("net", clock, cost=0.1, missing='PyTorch is not installed: pip install '
                       '"shipml[text]"'),
            FakeFamily("boost", clock, cost=0.1, searched=True, floor=True))  # fmt: skip
    result = _search(data, clock, 1e9, n_trials=2, families="-tree")
    assert {c.family for c in result.candidates} == {"lin", "boost"}
    assert result.notes == ['learner family net skipped: PyTorch is not installed: pip install '
                            '"shipml[text]"']  # fmt: skip
    monkeypatch.setenv("SHIPML_FAMILIES", "lin,tree")
    result = _search(data, clock, 1e9, n_trials=2)
    assert [t["name"] for t in result.trials] == ["lin(1)", "tree(2)"]  # no floor, no study


def test_unknown_family_names_are_usage_errors():
    from shipml.errors import UsageError

    with pytest.raises(UsageError, match=r"unknown learner family 'mpl'; known: linear, forest"):
        registry.select("-mpl")
    with pytest.raises(UsageError, match="leaves no learner family to search"):
        registry.select(",".join(f"-{name}" for name in registry.FAMILIES))
    assert registry.select("-forest") == tuple(n for n in registry.FAMILIES if n != "forest")
    assert registry.select(["lightgbm", "linear"]) == ("linear", "lightgbm")  # registry order


def test_real_search_without_forests(german_tdata):
    data, plan = german_tdata
    result = run_search(data, plan, metric="roc_auc", budget=Budget.seconds(300), n_trials=2,
                        families="-forest,-mlp")  # fmt: skip
    names = [t["name"] for t in result.trials]
    assert names[0] == "lightgbm(defaults)" and not any(n.startswith("forest") for n in names)
    assert {c.family for c in result.candidates} == {"lightgbm", "linear"}
    assert names[1:4] == ["linear(C=0.05)", "linear(C=0.5)", "linear(C=5)"]


def test_strengths_replace_the_linear_familys_own(german_tdata):
    data, plan = german_tdata
    result = run_search(data, plan, metric="roc_auc", budget=Budget.seconds(300), n_trials=1,
                        families="linear", strengths=(0.002,))  # fmt: skip
    assert [t["name"] for t in result.trials] == ["linear(C=0.002)"]
    assert result.best.params["strength"] == 0.002


def test_library_options_pass_through_to_every_configuration(german_tdata):
    data, plan = german_tdata
    result = run_search(data, plan, metric="roc_auc", budget=Budget.seconds(300), n_trials=2,
                        families="lightgbm", options={"lightgbm__num_leaves": 5})  # fmt: skip
    assert len(result.candidates) == 2
    for cand in result.candidates:
        assert cand.params["num_leaves"] == 5
        trees = cand.fitted.boosters[0].dump_model()["tree_info"]
        assert max(t["num_leaves"] for t in trees) <= 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_leaves": 5}, "option 'num_leaves' must be <family>__<option>"),
        ({"linear__C": 1.0}, "learner family linear takes no pass-through options"),
        ({"lgbm__num_leaves": 5}, "unknown learner family 'lgbm'"),
    ],
)
def test_library_options_name_their_family(options, message):
    from shipml.errors import UsageError

    with pytest.raises(UsageError, match=message):
        registry.configured(("linear", "lightgbm"), options)


@pytest.fixture(scope="module")
def german_tdata():
    import pandas as pd

    from conftest import GERMAN
    from shipml.training import prepare

    _, schema, _, data, _ = prepare(pd.read_csv(GERMAN), "credit_risk")
    return data, plan_validation(data.y, schema.task, seed=0)


def test_lineage_records_the_families_and_options_trained_with(tmp_path):
    """The stored model says which families its search was given and the options passed through
    to their libraries, with SHIPML_FAMILIES resolved (the suite's "-mlp"): enough to train it
    again the same way."""
    import pandas as pd

    import shipml
    from conftest import GERMAN

    frame = pd.read_csv(GERMAN)
    uri = str(tmp_path / "registry")
    shipml.train(frame, "credit_risk", name="chosen", time_budget=60, n_trials=2,
                 families="lightgbm,linear", options={"lightgbm__num_leaves": 7},
                 registry_uri=uri, progress=False, report=False)  # fmt: skip
    lineage = shipml.load("chosen", registry_uri=uri).info["lineage"]
    assert lineage["families"] == ["linear", "lightgbm"]  # registry order
    assert lineage["options"] == {"lightgbm__num_leaves": 7}
    default = shipml.train(frame, "credit_risk", time_budget=60, n_trials=1, progress=False)
    assert default.info["lineage"]["families"] == list(registry.select())
    assert "mlp" not in default.info["lineage"]["families"]
    assert default.info["lineage"]["options"] == {}
