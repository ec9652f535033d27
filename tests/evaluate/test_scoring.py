"""The metric registry and the search's scorers, checked against scikit-learn's definitions."""

import numpy as np
import pytest
from sklearn import metrics as skm

from shipml.errors import UsageError
from shipml.evaluate import metric_registry as registry
from shipml.evaluate.metrics import METRIC_DIRECTIONS, classification_metrics, regression_metrics
from shipml.learners.base import to_proba
from shipml.scoring import OPTIMIZE, better, binary_auc, check_metric, score, worst

RNG = np.random.default_rng(14)


def _scores_with_ties(n: int) -> np.ndarray:
    # rounded to 1 decimal: most values are shared by several rows
    return np.round(RNG.normal(size=n), 1)


@pytest.mark.parametrize("n", [2, 7, 50, 1000])
def test_binary_auc_equals_sklearn_on_random_data_with_ties(n):
    for _ in range(20):
        y = RNG.integers(0, 2, size=n)
        y[:2] = [0, 1]  # both classes
        s = _scores_with_ties(n)
        assert binary_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_binary_auc_constant_predictions_and_one_class():
    y = RNG.integers(0, 2, size=100)
    y[:2] = [0, 1]
    assert binary_auc(y, np.full(100, 0.3)) == skm.roc_auc_score(y, np.full(100, 0.3)) == 0.5
    # undefined for scikit-learn (an error or NaN); the search scores it 0.5 (no information)
    assert binary_auc(np.ones(10), RNG.normal(size=10)) == 0.5
    assert binary_auc(np.zeros(10), RNG.normal(size=10)) == 0.5


def test_binary_auc_perfect_and_reversed():
    y = np.array([0, 0, 1, 1])
    assert binary_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert binary_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def _binary_raw(n):
    y = RNG.integers(0, 2, size=n)
    y[:2] = [0, 1]
    return y, _scores_with_ties(n) * 3


def _multiclass_raw(n, k=4):
    y = RNG.integers(0, k, size=n)
    y[:k] = np.arange(k)
    return y, np.round(RNG.normal(size=(n, k)), 1)


def _sklearn_value(name, task, y, raw):
    """The metric by scikit-learn's own function: the definition the scorers must match."""
    if task == "regression":
        return {
            "rmse": skm.root_mean_squared_error,
            "mae": skm.mean_absolute_error,
            "r2": skm.r2_score,
        }[name](y, raw)
    proba = to_proba(raw, task)
    pred = proba.argmax(axis=1)
    labels = list(range(proba.shape[1]))
    if name == "roc_auc":
        if task == "binary":
            return skm.roc_auc_score(y, raw)
        # over the classes present, renormalized (all are present here: a no-op but for rounding)
        return skm.roc_auc_score(y, proba / proba.sum(axis=1, keepdims=True), multi_class="ovr")
    return {
        "log_loss": lambda: skm.log_loss(y, proba, labels=labels),
        "accuracy": lambda: skm.accuracy_score(y, pred),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, pred),
        "f1_macro": lambda: skm.f1_score(y, pred, average="macro", labels=labels),
        "f1": lambda: skm.f1_score(y, pred),
        "mcc": lambda: skm.matthews_corrcoef(y, pred),
    }[name]()


# the supervised tasks' scorers (the ranking metrics are tested in tests/recommend/)
CASES = [(name, task) for name in registry.searchable() for task in registry.get(name).search
         if task != "recommend"]  # fmt: skip


@pytest.mark.parametrize("name,task", CASES)
def test_every_search_scorer_equals_sklearn(name, task):
    for n in (30, 500):
        if task == "binary":
            y, raw = _binary_raw(n)
        elif task == "multiclass":
            y, raw = _multiclass_raw(n)
        else:
            y, raw = RNG.normal(size=n) * 10, np.round(RNG.normal(size=n) * 10)
        got = score(name, task, y.astype(float), raw)
        assert got == pytest.approx(_sklearn_value(name, task, y, raw), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name,task", CASES)
def test_every_search_scorer_on_constant_predictions(name, task):
    n = 40
    if task == "regression":
        y = RNG.normal(size=n)
        raw = np.full(n, 0.5)
    elif task == "binary":
        y, _ = _binary_raw(n)
        raw = np.zeros(n)
    else:
        y, _ = _multiclass_raw(n)
        raw = np.zeros((n, 4))
    got = score(name, task, y.astype(float), raw)
    assert np.isfinite(got)
    if name == "roc_auc":
        assert got == 0.5
    else:
        assert got == pytest.approx(_sklearn_value(name, task, y, raw), rel=1e-9, abs=1e-12)


def test_multiclass_auc_with_a_class_missing_from_the_fold():
    y, raw = _multiclass_raw(200, k=4)
    keep = y != 2  # class 2 never appears: AUC over the classes present, renormalized
    y, raw = y[keep], raw[keep]
    proba = to_proba(raw, "multiclass")[:, [0, 1, 3]]
    proba /= proba.sum(axis=1, keepdims=True)
    expected = skm.roc_auc_score(np.searchsorted([0, 1, 3], y), proba, multi_class="ovr")
    assert score("roc_auc", "multiclass", y, raw) == pytest.approx(expected)
    # two classes present: the binary AUC of the renormalized scores
    two = np.isin(y, [0, 3])
    p = to_proba(raw[two], "multiclass")[:, [0, 3]]
    expected = skm.roc_auc_score(y[two] == 3, p[:, 1] / p.sum(axis=1))
    assert score("roc_auc", "multiclass", y[two], raw[two]) == pytest.approx(expected)


def test_one_class_only_auc_is_half():
    assert score("roc_auc", "binary", np.ones(20), RNG.normal(size=20)) == 0.5
    assert score("roc_auc", "multiclass", np.zeros(20), RNG.normal(size=(20, 3))) == 0.5


def test_regression_scores_untransform_and_reject_overflow():
    y = np.array([1.0, 10.0, 100.0])
    raw = np.log1p(np.array([2.0, 8.0, 110.0]))
    assert score("mae", "regression", y, raw, "log") == pytest.approx((1 + 2 + 10) / 3)
    with np.errstate(over="ignore"):
        assert score("rmse", "regression", y, np.array([1.0, 1e6, 1.0]), "log") == np.inf
        assert score("r2", "regression", y, np.array([1.0, 1e6, 1.0]), "log") == -np.inf


def _higher_value_when_better(name: str, task: str) -> bool:
    """From the definition: score a perfect prediction and a poor one with scikit-learn."""
    if task == "regression":
        y = np.array([1.0, 2.0, 3.0, 4.0])
        good, bad = y.copy(), y[::-1].copy()
    else:
        y = np.array([0, 1, 0, 1, 1, 0])
        good = np.where(y == 1, 2.0, -2.0)
        bad = -good
        if task == "multiclass":
            y = np.array([0, 1, 2, 0, 1, 2])
            good = np.eye(3)[y] * 4.0
            bad = np.eye(3)[(y + 1) % 3] * 4.0
    return _sklearn_value(name, task, y, good) > _sklearn_value(name, task, y, bad)


@pytest.mark.parametrize("name,task", CASES)
def test_every_direction_matches_its_definition(name, task):
    assert OPTIMIZE[name] is _higher_value_when_better(name, task)
    assert registry.get(name).maximize is OPTIMIZE[name]


def test_every_reported_direction_matches_sklearn():
    """The directions of the evaluation-only metrics, from scikit-learn's values."""
    y = [0, 1, 1, 0, 1, 0]
    good = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9], [0.6, 0.4]]
    bad = [row[::-1] for row in good]
    g, b = (classification_metrics(y, p, classes=[0, 1]) for p in (good, bad))
    for name in registry.display_order("binary"):
        assert (g[name] > b[name]) is registry.get(name).maximize, name
    y = [1.0, 2.0, 3.0, 5.0]
    g, b = regression_metrics(y, [1.1, 2.0, 2.9, 5.2]), regression_metrics(y, [3.0, 1.0, 5.0, 2.0])
    for name in registry.display_order("regression"):
        assert (g[name] > b[name]) is registry.get(name).maximize, name
    assert {m.name: m.direction for m in registry.METRICS} == METRIC_DIRECTIONS


@pytest.mark.parametrize("name", registry.names())
def test_better_and_worst_for_each_metric(name):
    spec = registry.get(name)
    hi, lo = 0.9, 0.1
    if name in OPTIMIZE:
        assert better(name, hi, lo) is spec.maximize
        assert better(name, lo, hi) is not spec.maximize
        assert not better(name, hi, hi)  # strictly
        assert worst(name) == (-np.inf if spec.maximize else np.inf)
        assert better(name, hi, worst(name)) and better(name, lo, worst(name))
    assert spec.better(hi, lo) is spec.maximize
    assert spec.better(lo, spec.worst())


def test_unknown_metric_is_a_usage_error_naming_the_allowed_ones():
    with pytest.raises(UsageError, match="unknown metric 'speed'.*roc_auc.*rmse") as info:
        check_metric("speed", "binary")
    for name in OPTIMIZE:
        assert name in str(info.value)
    assert info.value.status == 400
    with pytest.raises(UsageError, match="unknown metric 'speed'.*brier"):
        registry.get("speed")
    with pytest.raises(UsageError, match="does not apply to a regression target; .*rmse, mae, r2"):
        check_metric("roc_auc", "regression")
    with pytest.raises(ValueError, match="does not apply to classification"):
        score("rmse", "binary", np.array([0, 1]), np.array([0.1, 0.2]))


def test_registry_is_the_one_table():
    from shipml.cli.render import SUMMARY_METRICS
    from shipml.evaluate.metrics import METRIC_NAMES
    from shipml.evaluate.report import _ORDER

    assert set(METRIC_NAMES) == set(registry.names()) == set(METRIC_DIRECTIONS)
    assert set(SUMMARY_METRICS) <= set(registry.names())
    for task in registry.TASKS:
        if task in _ORDER:  # the supervised report (recommendation has its own)
            assert tuple(_ORDER[task]) == registry.display_order(task)
        positions = [registry.get(n).order[task] for n in registry.display_order(task)]
        assert sorted(positions) == list(range(len(positions)))  # no two share a row
        for name in registry.searchable(task):
            assert task in registry.get(name).tasks  # what the search optimizes is reported
    # the primary score leads each task's table
    assert [registry.display_order(t)[0] for t in registry.TASKS] == [
        "roc_auc", "log_loss", "rmse", "hr@5"]  # fmt: skip
