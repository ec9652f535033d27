"""The HTML of the three reports (training/evaluation and monitoring), built on real data with
hostile names: every user string comes out as text, and a real browser shows every report
whole, offline, with nothing wider than the page.

The browser check needs Chromium and Python's playwright; .ci/run installs both and sets
SHIPML_TEST_BROWSER=1, which turns a missing browser into a failure instead of a skip.
"""

from __future__ import annotations

import html.parser
import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from conftest import DATA, ROOT
from shipml.data.schema import infer_schema
from shipml.evaluate.metrics import classification_metrics, regression_metrics
from shipml.evaluate.report import write_report
from shipml.monitor.drift import dataset_drift, prediction_drift
from shipml.monitor.reference import build_reference, prediction_reference
from shipml.monitor.report import write_monitor_report

EVIL = "<script>alert(1)</script>"
ODD = "&<>\"'"  # a class label and a category a CSV can hold
TOOLS = ROOT / "tools"


class _Page(html.parser.HTMLParser):
    """What a browser would show: the text, the attribute values and the tags."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attrs: list[str] = []
        self.tags: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [v for _, v in attrs if v is not None]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("html")


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "german_credit.csv").rename(columns={"purpose": EVIL})
    frame["credit_risk"] = frame["credit_risk"].map({1: "good", 2: ODD})
    frame[EVIL] = frame[EVIL].where(frame.index % 7 != 0, ODD)  # a category value too
    return frame


@pytest.fixture(scope="module")
def model_report(out_dir, german) -> str:
    """A binary report whose positive class is ``&<>"'`` and with a column named <script>."""
    X = german.select_dtypes("number")
    y = german["credit_risk"].to_numpy()
    Xtr, Xte, ytr, yte, _, text_te = train_test_split(
        X, y, german[[EVIL]], test_size=0.3, random_state=0, stratify=y
    )
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xtr, ytr)
    assert list(model.classes_) == [ODD, "good"]
    classes = ["good", ODD]  # the hostile label is the positive class
    proba = model.predict_proba(Xte)[:, ::-1]
    summary = {
        "rows": len(german),
        "target": "credit_risk",
        "columns": [{"name": EVIL, "kind": "categorical", "missing_pct": 0.0, "note": EVIL}],
        "class_balance": german["credit_risk"].value_counts().to_dict(),
        "dropped": [{"name": ODD, "reason": EVIL}],
    }
    path = write_report(
        out_dir / "model.html",
        title=f"credit {EVIL}",
        task="binary",
        metrics=classification_metrics(yte, proba, classes),
        y_true=yte,
        y_pred=model.predict(Xte),
        proba=proba,
        classes=classes,
        importance={EVIL: 0.3, ODD: 0.2, "age": 0.1},
        trials=[{"number": 0, "name": EVIL, "value": 0.7, "elapsed_s": 1.0, "state": EVIL}],
        data_summary=summary,
        validation=f"hold-out {EVIL}",
        model_info={EVIL: ODD, "learners": [EVIL], "libraries": {ODD: EVIL}},
        notes=[EVIL, ODD],
        examples=text_te.reset_index(drop=True),
        threshold=0.4,
    )
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def monitor_report(out_dir, german) -> str:
    """A monitoring report with drift in a column named <script> holding the value &<>"'."""
    schema = infer_schema(german, target="credit_risk")
    reference = build_reference(schema.coerce(german, strict=False), schema, seed=0)
    reference["prediction"] = prediction_reference(list(german["credit_risk"]), "binary")
    current = german.sample(300, random_state=1).reset_index(drop=True)
    current[EVIL] = ODD  # every row now says &<>"'
    current["age_years"] = current["age_years"] + 20
    typed = schema.coerce(current, strict=False)
    dataset = dataset_drift(reference, typed, schema)
    predictions = pd.Series([ODD] * 200 + ["good"] * 100)
    drifted = [c["column"] for c in dataset["columns"] if c["drift"]]
    assert EVIL in drifted and "age_years" in drifted
    result = {
        "model": EVIL,
        "version": 1,
        "task": "binary",
        "window": {"since": "2026-01-01T00:00:00+00:00", "until": "2026-01-08T00:00:00+00:00"},
        "status": "drift",
        "drift_detected": True,
        "n_predictions": 300,
        "first_prediction": "2026-01-01T10:00:00+00:00",
        "last_prediction": "2026-01-07T10:00:00+00:00",
        "other_versions": {},
        "reference": {"version": 1, "n_rows": len(german), "n_sample": len(german)},
        "dataset": dataset,
        "pii_excluded": [],
        "drifted_columns": drifted,
        "prediction": prediction_drift(reference["prediction"], predictions, "binary"),
        "live": {
            "n_feedback": 3,
            "n_scored": 2,
            "n_unmatched": 2,
            "unmatched_examples": [EVIL, ODD],
            "comparison": [
                {"metric": "accuracy", "live": 0.5, "offline": 0.7, "change": -0.2, "worse": True}
            ],
        },
        "notes": [EVIL, ODD],
        "message": f"drift in {EVIL}",
    }
    path = write_monitor_report(out_dir / "monitor.html", result, reference, typed, predictions)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("which", ["model_report", "monitor_report"])
def test_user_strings_show_as_text_never_as_markup(which, request):
    text = request.getfixturevalue(which)
    page = _Page(text)
    shown = "".join(page.text)
    assert EVIL not in text and "<script" not in text.lower() and "script" not in page.tags
    assert ODD not in text  # never raw in the HTML...
    assert EVIL in shown and ODD in shown  # ...but exactly what the reader sees
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&amp;&lt;&gt;&#34;&#39;" in text
    assert all(not a.startswith(("http", "//")) for a in page.attrs)  # nothing to fetch


def test_model_report_shows_each_hostile_string_where_it_belongs(model_report):
    shown = "".join(_Page(model_report).text)
    assert shown.count(EVIL) >= 8  # title x2, validation, notes, info, columns, errors, search
    assert f"positive class: {ODD}" in shown  # the badge
    assert f"Chance that a random “{ODD}” row" in shown  # the ROC AUC explanation
    assert f"Balance of precision and recall for “{ODD}” alone" in shown


def test_monitor_report_shows_each_hostile_string_where_it_belongs(monitor_report):
    shown = "".join(_Page(monitor_report).text)
    assert f"{EVIL} — monitoring" in shown and f"drift in {EVIL}" in shown
    assert f"{EVIL}: reference vs current" in _Page(monitor_report).attrs  # the plot's alt
    assert repr(EVIL) in shown  # an unknown label sent back
    assert "-0.2000 (worse)" in shown


# --------------------------------------------------------------------------------------------
# in a real browser


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    sys.path.insert(0, str(TOOLS))
    try:
        from report_screenshots import chromium_path
    finally:
        sys.path.remove(str(TOOLS))
    return None if chromium_path() else "no chromium (apt-get install -y chromium)"


@pytest.fixture(scope="module")
def browser_check():
    missing = _browser_missing()
    if missing and os.environ.get("SHIPML_TEST_BROWSER") == "1":
        pytest.fail(f"SHIPML_TEST_BROWSER=1 but {missing}")
    if missing:
        pytest.skip(missing)
    sys.path.insert(0, str(TOOLS))
    try:
        from report_screenshots import check_reports
    finally:
        sys.path.remove(str(TOOLS))
    return check_reports


@pytest.fixture(scope="module")
def more_reports(out_dir) -> list[Path]:
    """A multiclass report with many classes and a regression report, from real models."""
    frame = pd.read_csv(DATA / "ai4i_slice.csv", encoding="utf-8-sig")
    X = frame[["Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]"]]
    y = frame["Torque [Nm]"].to_numpy()
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    pred = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(Xtr, ytr).predict(Xte)
    regression = write_report(out_dir / "regression.html", title="torque", task="regression",
                              metrics=regression_metrics(yte, pred), y_true=yte, y_pred=pred,
                              importance=dict(zip(X.columns, [0.5, 0.3, 0.2])))  # fmt: skip
    bands = pd.qcut(frame["Torque [Nm]"], 12, labels=[f"band {i} {EVIL}" for i in range(12)])
    Xtr, Xte, ytr, yte = train_test_split(X, bands.astype(str).to_numpy(), random_state=0)
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(Xtr, ytr)
    proba = model.predict_proba(Xte)
    multiclass = write_report(
        out_dir / "multiclass.html",
        title="torque band",
        task="multiclass",
        metrics=classification_metrics(yte, proba, list(model.classes_)),
        y_true=yte,
        y_pred=model.predict(Xte),
        proba=proba,
        classes=list(model.classes_),
    )
    return [regression, multiclass]


def test_every_report_shows_whole_in_a_browser(browser_check, out_dir, model_report,
                                               monitor_report, more_reports):  # fmt: skip
    paths = [out_dir / "model.html", out_dir / "monitor.html", *more_reports]
    seen = browser_check(paths)
    for path in paths:
        assert seen[path]["problems"] == [], path.name  # no request, error, broken image, overflow
    assert seen[paths[0]]["title"] == f"credit {EVIL}"  # the browser reads it as text
    assert seen[paths[0]]["images"] == 8 and len(seen[paths[0]]["sections"]) == 9
    assert seen[paths[1]]["sections"] == [
        "What was checked",
        "Live performance",
        "Prediction drift",
        "Feature drift",
        "Drifted columns",
        "Notes",
    ]
    assert seen[paths[2]]["images"] == 2 and seen[paths[3]]["images"] == 3  # no importance
