"""Drift detection on real data: Adult (training slice vs test slice) and Bank marketing.

The natural difference between two samples of the same population must not raise an alarm;
a realistic shift (older, longer hours, one employer type, more graduates) must, in both of
Evidently's regimes: p-value tests for a reference of <= 1000 values, distances above.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from conftest import ADULT, ADULT_TEST, BANK
from shipml.data.io import read_table
from shipml.data.schema import infer_schema
from shipml.errors import DataError
from shipml.monitor.drift import column_drift, dataset_drift, drift_png, prediction_drift
from shipml.monitor.reference import build_reference, prediction_reference

NUMERIC_CHANGED = {"age", "hours_per_week", "capital_gain", "education_num"}
CATEGORICAL_CHANGED = {"workclass", "education", "marital_status", "occupation"}
CHANGED = NUMERIC_CHANGED | CATEGORICAL_CHANGED
UNTOUCHED = {"fnlwgt", "sex", "race", "relationship", "capital_loss", "native_country"}
# reference size -> (numeric method, categorical method with > 2 values, with 2 values)
METHODS = {800: ("KS", "chi-square", "Z-test"), 3000: ("Wasserstein", "Jensen-Shannon", None)}


def _with_profile(frame: pd.DataFrame) -> pd.DataFrame:
    """A free-text column written from real columns."""
    frame = frame.copy()
    frame["profile"] = (
        frame["occupation"].fillna("Unknown")
        + " working "
        + frame["hours_per_week"].astype(str)
        + " hours a week in "
        + frame["native_country"].fillna("an unknown country")
    )
    return frame


def _shift(raw: pd.DataFrame) -> pd.DataFrame:
    """A realistic new population: older, longer hours, mostly self-employed, more graduates."""
    rng = np.random.default_rng(1)
    out = raw.copy()
    n = len(out)
    num = {c: pd.to_numeric(out[c]) for c in NUMERIC_CHANGED}
    out["age"] = (num["age"] + 15).astype(str)
    out["hours_per_week"] = (num["hours_per_week"] * 1.5).round().astype(str)
    bonus = np.where(rng.random(n) < 0.3, 1000, 0)
    out["capital_gain"] = (num["capital_gain"] * 3 + bonus).astype(str)
    out.loc[rng.random(n) < 0.8, "workclass"] = "Self-emp-not-inc"
    graduates = rng.random(n) < 0.7
    out.loc[graduates, "education"] = "Bachelors"
    out.loc[graduates, "education_num"] = "13"
    out.loc[rng.random(n) < 0.6, "marital_status"] = "Never-married"
    out.loc[rng.random(n) < 0.5, "occupation"] = "Prof-specialty"
    return _with_profile(out)


@pytest.fixture(scope="module")
def adult():
    train = _with_profile(read_table(ADULT).frame)
    test = _with_profile(read_table(ADULT_TEST).frame)
    schema = infer_schema(train, "income", kinds={"profile": "text"})
    return {
        "schema": schema,
        "raw_train": train,
        "train": schema.coerce(train, strict=False),
        "test": schema.coerce(test, strict=False),
        "shifted": schema.coerce(_shift(read_table(ADULT_TEST).frame), strict=False),
    }


@pytest.fixture(scope="module", params=[800, 3000], ids=["small-reference", "large-reference"])
def reference(request, adult):
    return build_reference(adult["train"], adult["schema"], max_rows=request.param)


def _by_column(result: dict) -> dict:
    return {c["column"]: c for c in result["columns"]}


# -- reference -------------------------------------------------------------------------------
def test_reference_is_compact_json_without_raw_text(adult):
    ref = build_reference(adult["train"], adult["schema"], max_rows=800, seed=3)
    again = json.loads(json.dumps(ref, allow_nan=False))
    assert again == ref
    assert ref["n_rows"] == 3000 and ref["n_sample"] == 800
    cols = ref["columns"]
    assert set(cols) == {c.name for c in adult["schema"].features}
    age = cols["age"]["values"]
    assert len(age) == 800 and age == sorted(age) and 17 <= age[0] <= age[-1] <= 90
    # missing shares are measured on all training rows
    expected = adult["train"]["workclass"].isna().mean()
    assert cols["workclass"]["missing"] == pytest.approx(expected, abs=1e-6) and expected > 0
    sampled = sum(cols["workclass"]["counts"].values())
    assert 700 < sampled <= 800
    # free text: lengths only, never a sentence
    text = json.dumps(ref)
    assert set(cols["profile"]) == {"kind", "missing", "lengths", "length_mean", "length_quantiles"}
    assert not any(t in text for t in adult["raw_train"]["profile"].head(200))
    assert cols["profile"]["length_quantiles"]["0.5"] == pytest.approx(
        adult["raw_train"]["profile"].str.len().median()
    )
    # same seed, same reference; another seed, another sample
    assert build_reference(adult["train"], adult["schema"], max_rows=800, seed=3) == ref
    assert build_reference(adult["train"], adult["schema"], max_rows=800, seed=4) != ref


def test_categories_beyond_the_top_200_are_folded():
    values = pd.Series([f"c{i % 300}" for i in range(3000)] + [None] * 10, dtype=object)
    frame = pd.DataFrame({"shop": values, "y": ["a", "b"] * 1505})
    schema = infer_schema(frame, "y", kinds={"shop": "categorical"})
    ref = build_reference(schema.coerce(frame, strict=False), schema)
    counts = ref["columns"]["shop"]["counts"]
    assert len(counts) == 201 and counts["__other__"] == 1000
    assert ref["columns"]["shop"]["n_categories"] == 300
    # an unseen shop counts as "__other__", not as a brand-new category
    current = pd.Series([f"c{i % 300}" for i in range(300)] + ["c999"], name="shop")
    assert not column_drift(ref["columns"]["shop"], current, "categorical")["drift"]


# -- dataset drift ---------------------------------------------------------------------------
def test_natural_sample_difference_is_not_drift(adult, reference):
    result = dataset_drift(reference, adult["test"], adult["schema"])
    assert result["dataset_drift"] is False
    assert result["share_drifted"] < 0.3
    assert result["n_columns"] == len(adult["schema"].features) == 15
    assert result["n_reference"] == 3000 and result["n_current"] == 1000
    num, cat, binary = METHODS[reference["n_sample"]]
    cols = _by_column(result)
    assert cols["age"]["method"] == cols["capital_gain"]["method"] == num
    assert cols["workclass"]["method"] == cols["native_country"]["method"] == cat
    assert cols["sex"]["method"] == (binary or cat)
    assert cols["profile"]["method"] == f"length-{'KS' if num == 'KS' else 'Wasserstein'}"
    assert set(cols["age"]) == {
        "column", "kind", "method", "statistic", "threshold", "p_value", "drift",
        "reference_missing", "current_missing", "n_current",
    }  # fmt: skip
    json.dumps(result, allow_nan=False)


def test_injected_drift_is_found_column_by_column(adult, reference):
    result = dataset_drift(reference, adult["shifted"], adult["schema"])
    assert result["dataset_drift"] is True
    drifted = {c["column"] for c in result["columns"] if c["drift"]}
    assert drifted == CHANGED | {"profile"}  # hours are in the text: longer numbers, longer text
    assert not drifted & UNTOUCHED
    assert result["n_drifted"] == len(drifted) and result["share_drifted"] >= 0.5
    cols = _by_column(result)
    small = reference["n_sample"] <= 1000
    for name in CHANGED:
        col = cols[name]
        if small:
            assert col["p_value"] < 0.05 and col["threshold"] == 0.05
        else:
            assert col["p_value"] is None and col["statistic"] >= 0.1 == col["threshold"]
    json.dumps(result, allow_nan=False)


def test_share_sets_the_dataset_verdict(adult, reference):
    result = dataset_drift(reference, adult["shifted"], adult["schema"], share=0.9)
    assert result["dataset_drift"] is False and result["n_drifted"] == len(CHANGED) + 1
    with pytest.raises(DataError, match="share"):
        dataset_drift(reference, adult["shifted"], adult["schema"], share=0)


# -- statistics against scipy ----------------------------------------------------------------
def test_statistics_equal_scipys_on_the_same_arrays(adult):
    small = build_reference(adult["train"], adult["schema"], max_rows=800)
    large = build_reference(adult["train"], adult["schema"], max_rows=3000)
    current = adult["shifted"]
    ages = current["age"].dropna().to_numpy()

    ks = column_drift(small["columns"]["age"], current["age"], "numeric")
    expected = stats.ks_2samp(small["columns"]["age"]["values"], ages)
    assert ks["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert ks["statistic"] == pytest.approx(expected.statistic)

    ref_ages = np.asarray(large["columns"]["age"]["values"])
    wd = column_drift(large["columns"]["age"], current["age"], "numeric")
    expected = stats.wasserstein_distance(ref_ages, ages) / ref_ages.std()
    assert wd["statistic"] == pytest.approx(expected, rel=1e-12)

    counts = large["columns"]["workclass"]["counts"]
    now = current["workclass"].value_counts()
    keys = sorted(set(counts) | set(now.index))
    p = np.array([counts.get(k, 0) for k in keys], float)
    q = np.array([now.get(k, 0) for k in keys], float)
    js = column_drift(large["columns"]["workclass"], current["workclass"], "categorical")
    assert js["statistic"] == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()), rel=1e-9)

    counts = small["columns"]["education"]["counts"]
    now = adult["test"]["education"].value_counts()
    keys = sorted(set(counts) | set(now.index))
    table = [[counts.get(k, 0) for k in keys], [now.get(k, 0) for k in keys]]
    chi = column_drift(small["columns"]["education"], adult["test"]["education"], "categorical")
    assert chi["p_value"] == pytest.approx(stats.chi2_contingency(table).pvalue, rel=1e-9)

    # Evidently's Z-test of two proportions is the chi-square test without Yates' correction
    counts = small["columns"]["sex"]["counts"]
    now = adult["shifted"]["sex"].value_counts()
    table = [[counts[k] for k in ("Female", "Male")], [now[k] for k in ("Female", "Male")]]
    z = column_drift(small["columns"]["sex"], adult["shifted"]["sex"], "categorical")
    assert z["method"] == "Z-test"
    assert z["p_value"] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)


# -- other kinds: text, boolean, datetime, few distinct values -------------------------------
def test_text_is_compared_by_length(adult, reference):
    col = reference["columns"]["profile"]
    longer = adult["test"]["profile"] + " and studying at night"
    result = column_drift(col, longer, "text")
    assert result["drift"] and result["method"].startswith("length-")
    assert not column_drift(col, adult["test"]["profile"], "text")["drift"]


@pytest.fixture(scope="module")
def bank():
    frame = read_table(BANK).frame
    frame["contact_date"] = "2008-" + frame["month"] + "-" + frame["day"]
    frame["calls"] = pd.to_numeric(frame["campaign"]).clip(upper=4).astype(str)  # 1, 2, 3, 4+
    schema = infer_schema(frame, "y")
    halves = np.random.default_rng(0).permutation(len(frame))
    first, second = frame.iloc[halves[:1000]], frame.iloc[halves[1000:]]
    return schema, first, second


def test_boolean_and_datetime_columns(bank):
    schema, first, second = bank
    assert schema.column("housing").kind == "boolean"
    assert schema.column("contact_date").kind == "datetime"
    assert schema.column("calls").kind == "numeric"
    ref = build_reference(schema.coerce(first, strict=False), schema)
    assert ref["n_rows"] == 1000  # <= 1000: the p-value tests
    natural = dataset_drift(ref, schema.coerce(second, strict=False), schema)
    # at p <= 0.05 over 18 columns a chance flag or two is expected; the dataset verdict holds
    assert not natural["dataset_drift"] and natural["share_drifted"] < 0.3
    calm = _by_column(natural)
    assert calm["housing"]["method"] == "Z-test" and not calm["housing"]["drift"]
    assert calm["contact_date"]["method"] == "KS" and not calm["contact_date"]["drift"]
    assert calm["calls"]["method"] == "chi-square" and not calm["calls"]["drift"]

    moved = second.copy()
    moved["housing"] = np.where(np.arange(len(moved)) % 5 == 0, "no", "yes")
    moved["contact_date"] = "2009-" + moved["month"] + "-" + moved["day"]
    moved["calls"] = "1"
    result = dataset_drift(ref, schema.coerce(moved, strict=False), schema)
    cols = _by_column(result)
    assert cols["housing"]["drift"] and cols["contact_date"]["drift"]
    # numbers with at most 5 distinct values are compared as categories (chi-square)
    assert cols["calls"]["method"] == "chi-square" and cols["calls"]["drift"]
    drifted = {c["column"] for c in result["columns"] if c["drift"]}
    chance = {c["column"] for c in natural["columns"] if c["drift"]}
    assert drifted - chance == {"housing", "contact_date", "calls"}
    json.dumps(result, allow_nan=False)


def test_too_few_current_values_are_not_tested(adult, reference):
    few = adult["test"].head(3)
    result = dataset_drift(reference, few, adult["schema"])
    assert result["dataset_drift"] is False and result["n_drifted"] == 0
    assert {c["method"] for c in result["columns"]} == {"too few values"}
    empty = adult["test"].assign(age=np.nan)
    age = _by_column(dataset_drift(reference, empty, adult["schema"]))["age"]
    assert age["method"] == "too few values" and age["current_missing"] == 1.0
    none = dataset_drift(reference, adult["test"].head(0), adult["schema"])
    assert none["columns"][0]["current_missing"] is None
    json.dumps([result, none], allow_nan=False)


def test_mistakes_are_named(adult, reference):
    with pytest.raises(DataError, match="'age'"):
        dataset_drift(reference, adult["test"].drop(columns="age"), adult["schema"])
    with pytest.raises(DataError, match="reference was built as numeric"):
        column_drift(reference["columns"]["age"], adult["test"]["age"], "categorical")
    with pytest.raises(DataError, match="task"):
        prediction_drift([1, 2], [1, 2], "ranking")


# -- predictions -----------------------------------------------------------------------------
def _numbers(typed: pd.DataFrame) -> np.ndarray:
    cols = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    return typed[cols].fillna(0).to_numpy()


def test_prediction_drift_on_labels_and_floats(adult):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _numbers(adult["train"])
    labels = adult["raw_train"]["income"].to_numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression())
    oof = cross_val_predict(clf, x, labels, cv=3)
    clf.fit(x, labels)
    calm = prediction_drift(list(oof), clf.predict(_numbers(adult["test"])), "binary")
    moved = prediction_drift(list(oof), clf.predict(_numbers(adult["shifted"])), "binary")
    assert calm["method"] == moved["method"] == "Jensen-Shannon"
    assert not calm["drift"] and moved["drift"]
    assert calm["column"] == "prediction" and calm["kind"] == "categorical"

    # regression: fnlwgt is not shifted, the inputs of the model are
    target = adult["train"]["fnlwgt"].to_numpy()
    reg = make_pipeline(StandardScaler(), Ridge())
    oof = cross_val_predict(reg, x, target, cv=3)
    reg.fit(x, target)
    saved = prediction_reference(oof, "regression", max_rows=800)
    assert saved["kind"] == "numeric" and len(saved["values"]) == 800
    saved = json.loads(json.dumps(saved, allow_nan=False))
    calm = prediction_drift(saved, reg.predict(_numbers(adult["test"])), "regression")
    moved = prediction_drift(saved, reg.predict(_numbers(adult["shifted"])), "regression")
    assert calm["method"] == "KS" and not calm["drift"] and moved["drift"]
    json.dumps([calm, moved], allow_nan=False)


# -- plot ------------------------------------------------------------------------------------
def test_drift_png(adult, bank):
    ref = build_reference(adult["train"], adult["schema"], max_rows=800)
    for name, kind in [("age", "numeric"), ("workclass", "categorical"), ("profile", "text")]:
        png = drift_png(ref["columns"][name], adult["shifted"][name], kind)
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    schema, first, second = bank
    ref = build_reference(schema.coerce(first, strict=False), schema)
    typed = schema.coerce(second, strict=False)
    for name in ("contact_date", "housing"):
        png = drift_png(ref["columns"][name], typed[name], schema.column(name).kind)
        assert png.startswith(b"\x89PNG")
    empty = drift_png(ref["columns"]["age"], typed["age"].head(0), "numeric", title="age")
    assert empty.startswith(b"\x89PNG")
