"""The binary decision threshold (issue 13, item 12): labels follow the metric the user asks
for, the default never loses to 0.5 on both accuracy and F1, `--threshold` overrides, and the
report shows the trade-off. Real data: German credit, the bank marketing and AI4I slices."""

import doctest

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import shipml
import shipml.evaluate.threshold as threshold_module
from conftest import AI4I, BANK, BANKING, BANKING_TEST, GERMAN, run_cli
from shipml.errors import DataError, ShipmlError
from shipml.evaluate.threshold import GRID, choose_threshold, threshold_curve
from shipml.scoring import check_metric


def _train(frame, target, monkeypatch, **kwargs):
    """A small fixed search; returns (model, validation y as 0/1, validation P(positive)): the
    out-of-fold predictions the threshold was chosen on."""
    seen = {}
    real = threshold_module.choose_threshold

    def spy(y, p, metric, **kw):
        seen.update(y=np.asarray(y), p=np.asarray(p), metric=metric)
        return real(y, p, metric, **kw)

    monkeypatch.setattr(threshold_module, "choose_threshold", spy)
    model = shipml.train(frame, target, time_budget=60, n_trials=3, progress=False,
                         report=False, **kwargs)  # fmt: skip
    return model, seen["y"], seen["p"]


def _acc_f1(y, p, t):
    pred = (p >= t).astype(int)
    return skm.accuracy_score(y, pred), skm.f1_score(y, pred, zero_division=0)


@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    return pd.read_csv(BANK, sep=";")


@pytest.fixture(scope="module")
def age_limit() -> pd.DataFrame:
    """Texts (BANKING77, train + test slices): is this message about the age limit? 25 of 500
    rows (5 %): a rare class that TF-IDF ranks well, like spam in a mail table."""
    frame = pd.concat([pd.read_csv(BANKING), pd.read_csv(BANKING_TEST)], ignore_index=True)
    return pd.DataFrame(
        {"text": frame["text"], "target": np.where(frame["category"] == "age_limit", "yes", "no")}
    )


def test_the_curve_is_what_sklearn_computes(bank):
    y = (bank["y"] == "yes").to_numpy().astype(int)
    p = np.clip(bank["duration"].to_numpy() / 2000, 0, 1)  # a real, imperfect score
    curve = threshold_curve(y, p)
    for i in range(0, len(GRID), 17):
        pred = (p >= GRID[i]).astype(int)
        assert curve["f1"][i] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
        assert curve["precision"][i] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
        assert curve["recall"][i] == pytest.approx(skm.recall_score(y, pred))
        assert curve["accuracy"][i] == pytest.approx(skm.accuracy_score(y, pred))
        assert curve["balanced_accuracy"][i] == pytest.approx(skm.balanced_accuracy_score(y, pred))
        assert curve["mcc"][i] == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)
        assert curve["f1_macro"][i] == pytest.approx(
            skm.f1_score(y, pred, average="macro", zero_division=0)
        )


def test_module_examples_run():
    assert doctest.testmod(threshold_module).failed == 0


@pytest.mark.parametrize("which", ["bank", "age_limit"])
def test_default_metric_never_loses_to_argmax_on_both_accuracy_and_f1(
    which, bank, age_limit, monkeypatch
):
    """Fails on the old rule (the balanced-accuracy threshold for imbalanced classes): on the
    age-limit texts it chose 0.009, which flagged many other messages: validation accuracy
    0.982 -> 0.960 and F1 0.78 -> 0.71 against 0.5."""
    if which == "bank":
        model, y, p = _train(bank, "y", monkeypatch)
    else:
        model, y, p = _train(age_limit, "target", monkeypatch, mode="tfidf")
    assert model.info["lineage"]["metric"] == "roc_auc"
    acc_half, f1_half = _acc_f1(y, p, 0.5)
    acc, f1 = _acc_f1(y, p, model.threshold)
    assert not (acc < acc_half and f1 < f1_half), (model.threshold, acc, f1, acc_half, f1_half)
    # what the model reports is what it does: validation metrics at the threshold used
    assert model.metrics["accuracy"] == pytest.approx(acc)
    assert model.metrics["f1"] == pytest.approx(f1)
    decision = model.info["threshold"]
    assert decision["at_argmax"] == pytest.approx({"accuracy": acc_half, "f1": f1_half})
    assert "roc_auc" in decision["reason"] and "--metric f1" in decision["reason"]


def test_metric_f1_picks_the_threshold_that_maximizes_f1_on_validation(bank, monkeypatch, capsys):
    from shipml.cli.train import show_trained

    model, y, p = _train(bank, "y", monkeypatch, metric="f1")
    grid = np.round(np.arange(1, 100) / 100, 2)
    brute = [skm.f1_score(y, (p >= t).astype(int), zero_division=0) for t in grid]
    _, f1 = _acc_f1(y, p, model.threshold)
    _, f1_half = _acc_f1(y, p, 0.5)
    # the middle of the smoothed plateau: within a hair of the raw maximum, well above 0.5's
    # (measured 0.541 against 0.495 since the linear design logs skewed numbers)
    assert f1 >= max(brute) - 0.01, (model.threshold, f1, max(brute))
    assert f1 > f1_half + 0.03
    assert model.threshold < 0.5 and model.info["threshold"]["metric"] == "f1"
    assert model.metrics["f1"] == pytest.approx(f1)
    show_trained(model)
    out = capsys.readouterr().out
    assert f"decision threshold: {model.threshold:g} — maximizes f1 on validation" in out
    assert f"at {model.threshold:g}: accuracy" in out and "(f1 optimized)" in out


def test_noise_is_not_mistaken_for_a_better_threshold(bank):
    """Labels drawn from the probabilities themselves (so they are calibrated and 0.5 is the
    best threshold for accuracy): whatever the search finds is noise, and 0.5 is kept, on
    200 rows and on 2,000. On the real labels, a real gain (MCC) passes the same guard."""
    duration = bank["duration"].to_numpy()
    p = duration / (duration + 300.0)  # a real, spread-out score (median 0.37)
    kept = 0
    for seed in range(10):
        y = (np.random.default_rng(seed).random(len(p)) < p).astype(int)
        for n in (200, 2000):
            kept += choose_threshold(y[:n], p[:n], "accuracy", seed=seed).threshold == 0.5
    assert kept >= 18  # of 20
    y_real = (bank["y"] == "yes").to_numpy().astype(int)
    decision = choose_threshold(y_real, np.clip(duration / 2000, 0, 1), "mcc")
    assert decision.threshold != 0.5 and "out of sample" in decision.reason
    assert decision.at_threshold["f1"] > decision.at_argmax["f1"]


def test_a_chosen_metric_that_loses_on_both_accuracy_and_f1_says_so():
    """Balanced accuracy asked for: a rare class whose last tenth hides among the negatives.
    Catching it costs more false alarms than it gains: the labels follow the metric asked
    for, and the reason says what that costs."""
    y = np.array([0] * 900 + [1] * 100)
    p = np.r_[np.full(870, 0.05), np.full(30, 0.12), np.full(90, 0.9), np.full(10, 0.12)]
    decision = choose_threshold(y, p, "balanced_accuracy")
    assert 0.05 < decision.threshold <= 0.12
    assert decision.at_threshold["accuracy"] < decision.at_argmax["accuracy"]
    assert decision.at_threshold["f1"] < decision.at_argmax["f1"]
    assert "both lower than at 0.5" in decision.reason


def test_predict_threshold_overrides_the_labels(credit_model, german, registry_dir, tmp_path,
                                                capsys):  # fmt: skip
    rows = german.drop(columns="credit_risk")
    proba = credit_model.predict_proba(rows)[2].to_numpy()
    labels = credit_model.predict(rows, threshold=0.3)
    np.testing.assert_array_equal(labels, np.where(proba >= 0.3, 2, 1))
    assert (labels != credit_model.predict(rows, threshold=0.7)).any()
    out = tmp_path / "scored.csv"
    reg = ["--registry-uri", str(registry_dir)]
    code, _, _ = run_cli(["predict", "credit", GERMAN, "--threshold", "0.3", "-o", out, *reg],
                         capsys)  # fmt: skip
    scored = pd.read_csv(out)
    assert code == 0
    np.testing.assert_array_equal(
        scored["prediction"], np.where(scored["probability_2"] >= 0.3, 2, 1)
    )
    np.testing.assert_array_equal(scored["prediction"], labels)
    code, _, err = run_cli(["predict", "credit", GERMAN, "--threshold", "1.5", *reg], capsys)
    assert code == 2 and "threshold must be between 0 and 1" in err
    with pytest.raises(DataError, match="between 0 and 1"):
        credit_model.predict(rows, threshold=float("nan"))


def test_threshold_is_for_binary_models(torque_model):
    with pytest.raises(DataError, match="binary models"):
        torque_model.predict(pd.read_csv(AI4I, encoding="utf-8-sig").head(3), threshold=0.3)


def test_report_plots_precision_recall_f1_against_the_threshold(credit_model):
    import base64
    import re

    html = credit_model.report_path.read_text(encoding="utf-8")
    found = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="Decision '
                      r'threshold">', html)  # fmt: skip
    assert found is not None
    assert base64.b64decode(found.group(1)).startswith(b"\x89PNG")
    assert f"threshold the labels use ({credit_model.threshold:g})" in html


def test_train_output_and_models_show_give_the_threshold_and_its_reason(
    credit_model, registry_dir, capsys
):
    from shipml.cli.train import show_trained

    show_trained(credit_model)
    out = capsys.readouterr().out
    t = credit_model.threshold
    assert f"decision threshold: {t:g}" in out and "roc_auc scores probabilities" in out
    assert "validation at 0.5: accuracy" in out
    code, out, _ = run_cli(["models", "show", "credit", "--registry-uri", registry_dir], capsys)
    assert code == 0 and f"decision threshold: {t:g}" in out and "at 0.5: accuracy" in out


def test_metric_must_fit_the_task():
    check_metric("f1", "binary")
    with pytest.raises(ShipmlError, match="f1_macro"):
        check_metric("f1", "multiclass")
    with pytest.raises(ShipmlError, match="does not apply to a binary"):
        check_metric("rmse", "binary")
    with pytest.raises(ShipmlError, match="unknown metric"):
        check_metric("speed", "binary")
