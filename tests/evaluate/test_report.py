"""The HTML report (shipml.evaluate.report) and its plots, built from real models on real data."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from conftest import DATA
from shipml.errors import ShipmlError
from shipml.evaluate import plots
from shipml.evaluate.metrics import classification_metrics, regression_metrics
from shipml.evaluate.report import write_report

EVIL = "<script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n"
ALL_SECTIONS = [
    "Key metrics",
    "Plots",
    "Results per class",
    "Feature importance",
    "Search history",
    "Data summary",
    "Model information",
    "Notes",
]


def _summary(frame: pd.DataFrame, target: str, *, balance: bool) -> dict:
    columns = [
        {
            "name": c,
            "kind": "numeric" if pd.api.types.is_numeric_dtype(frame[c]) else "categorical",
            "missing_pct": float(frame[c].isna().mean() * 100),
            "note": "",
        }
        for c in frame.columns
        if c != target
    ]
    counts = frame[target].value_counts()
    return {
        "rows": len(frame),
        "target": target,
        "columns": columns,
        "class_balance": {str(k): int(v) for k, v in counts.items()} if balance else None,
        "dropped": [{"name": "customer_id", "reason": "identifier: unique for every row"}],
    }


def _trials(n: int = 15) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        state = "pruned" if i % 5 == 4 else "complete"
        value = float(rng.uniform(0.65, 0.78)) if state == "complete" else float("nan")
        out.append(
            {
                "number": i,
                "name": f"lightgbm#{i}",
                "value": value,
                "elapsed_s": 0.8 * i + 0.3,
                "state": state,
            }
        )
    return out


def _images(text: str) -> list[bytes]:
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    return [base64.b64decode(b) for b in found]


def _headings(text: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", text)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    # A user CSV with a hostile column name: it must come out escaped everywhere.
    return pd.read_csv(DATA / "german_credit.csv").rename(columns={"purpose": EVIL})


@pytest.fixture(scope="module")
def binary_report(out_dir, german):
    X = german.select_dtypes("number").drop(columns="credit_risk")
    y = german["credit_risk"].to_numpy()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xtr, ytr)
    proba = model.predict_proba(Xte)
    metrics = classification_metrics(yte, proba, [1, 2])
    # Importance: how much each column's values move the predicted probability.
    importance = {c: float(abs(np.corrcoef(Xte[c], proba[:, 1])[0, 1])) for c in X.columns}
    importance[EVIL] = 0.05
    path = write_report(
        out_dir / "binary.html",
        title=f"credit risk {EVIL}",
        task="binary",
        metrics=metrics,
        y_true=yte,
        y_pred=model.predict(Xte),
        proba=proba,
        classes=[1, 2],
        importance=importance,
        trials=_trials(),
        data_summary=_summary(german, "credit_risk", balance=True),
        validation="hold-out of 300 rows (30%), stratified",
        model_info={
            "name": "credit",
            "version": 3,
            "seed": 12345,
            "learners": ["lightgbm"],
            "libraries": {"scikit-learn": "1.x"},
            "threshold": None,
        },
        notes=[f"column {EVIL} is free text", "1 = good, 2 = bad"],
    )
    return path, path.read_text(encoding="utf-8"), metrics


@pytest.fixture(scope="module")
def multiclass_report(out_dir, german):
    # Labels a user CSV could hold: "$" (matplotlib math), leading "_" (hidden legend), HTML.
    labels = ["low $", "_mid", "<b>high</b>"]
    y = pd.qcut(german["credit_amount"], 3, labels=labels).astype(str).to_numpy()
    X = german.select_dtypes("number").drop(columns=["credit_risk", "credit_amount"])
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xtr, ytr)
    proba = model.predict_proba(Xte)
    classes = list(model.classes_)
    metrics = classification_metrics(yte, proba, classes)
    path = write_report(
        out_dir / "multiclass.html",
        title="credit amount band",
        task="multiclass",
        metrics=metrics,
        y_true=yte,
        y_pred=model.predict(Xte),
        proba=proba,
        classes=classes,
        validation="hold-out of 300 rows",
    )
    return path, path.read_text(encoding="utf-8"), metrics


@pytest.fixture(scope="module")
def regression_report(out_dir):
    frame = pd.read_csv(DATA / "ai4i_slice.csv", encoding="utf-8-sig")
    target = "Torque [Nm]"
    X = frame[["Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]"]]
    Xtr, Xte, ytr, yte = train_test_split(X, frame[target].to_numpy(), random_state=0)
    pred = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(Xtr, ytr).predict(Xte)
    metrics = regression_metrics(yte, pred)
    path = write_report(
        out_dir / "sub" / "regression.html",  # parent folders are created
        title="torque",
        task="regression",
        metrics=metrics,
        y_true=yte,
        y_pred=pred,
        data_summary=_summary(frame, target, balance=False),
        validation="hold-out of 500 rows",
    )
    return path, path.read_text(encoding="utf-8"), metrics


# --------------------------------------------------------------------------------------------
# binary: everything given


def test_binary_report_has_every_section_in_order(binary_report, out_dir):
    path, text, _ = binary_report
    assert path == out_dir / "binary.html" and path.is_file()
    assert _headings(text) == ALL_SECTIONS
    assert _leftovers(out_dir) == []


def test_binary_report_embeds_one_png_per_plot(binary_report):
    _, text, _ = binary_report
    images = _images(text)
    # confusion matrix, ROC, precision-recall, calibration, decision threshold, importance,
    # search, class balance
    assert len(images) == 8
    assert all(img.startswith(PNG) and len(img) > 5_000 for img in images)


def test_binary_report_is_self_contained(binary_report):
    _, text, _ = binary_report
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "<style>" in text  # the CSS is inlined


def test_binary_report_escapes_user_strings(binary_report):
    _, text, _ = binary_report
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert EVIL not in text
    assert text.count(escaped) >= 4  # title (twice: <title>, <h1>), column table, notes


def test_binary_report_shows_the_numbers(binary_report):
    _, text, metrics = binary_report
    assert f"{metrics['roc_auc']:#.4g}" in text  # headline card, 4 significant digits
    assert "hold-out of 300 rows (30%), stratified" in text
    assert "ROC AUC" in text and "0.5 = guessing" in text  # plain-English explanation
    assert "12345" in text and "Customer_id" not in text and "customer_id" in text
    assert "Threshold" not in text  # None values of model_info are left out


# --------------------------------------------------------------------------------------------
# multiclass, regression, minimal


def test_multiclass_report(multiclass_report):
    _, text, metrics = multiclass_report
    assert _headings(text) == ["Key metrics", "Plots", "Results per class"]
    assert len(_images(text)) == 3  # confusion matrix, ROC, precision-recall; no calibration
    assert "&lt;b&gt;high&lt;/b&gt;" in text and "<b>high</b>" not in text
    assert metrics["primary"] == "log_loss" and "Log loss" in text
    assert "Brier" not in text  # binary only


def test_regression_report(regression_report):
    path, text, metrics = regression_report
    assert path.parent.name == "sub"
    assert _headings(text) == ["Key metrics", "Plots", "Data summary"]
    assert len(_images(text)) == 1  # predicted vs actual + error histogram, one figure
    assert "Torque [Nm]" in text and "RMSE" in text and "R²" in text
    assert f"{metrics['rmse']:#.4g}" in text
    assert "https://" not in text and "http://" not in text


def test_minimal_report_without_optional_inputs(out_dir, binary_report):
    _, _, metrics = binary_report
    y = np.array([1, 2, 1, 1, 2])
    path = write_report(
        out_dir / "minimal.html",
        title="minimal",
        task="binary",
        metrics=metrics,
        y_true=y,
        y_pred=np.array([1, 2, 2, 1, 1]),
    )
    text = path.read_text(encoding="utf-8")
    assert _headings(text) == ["Key metrics", "Plots", "Results per class"]
    assert len(_images(text)) == 1  # the confusion matrix only
    assert "No predicted probabilities" in text
    assert "How the score was measured was not recorded." in text


def test_confusion_matrix_from_labels_when_metrics_lack_it(out_dir):
    y = np.array(["a", "b", "b", "c"])
    path = write_report(
        out_dir / "labels.html",
        title="labels only",
        task="multiclass",
        metrics={"accuracy": 0.5, "primary": "accuracy"},
        y_true=y,
        y_pred=np.array(["a", "b", "c", "c"]),
    )
    text = path.read_text(encoding="utf-8")
    assert len(_images(text)) == 1 and "0.5000" in text


def test_failed_write_keeps_the_old_report_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "r.html"
    path.write_text("the previous report", encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("shipml.evaluate.report.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(path, title="new", task="binary", metrics={}, y_true=[1, 2], y_pred=[1, 1])
    assert path.read_text(encoding="utf-8") == "the previous report"
    assert _leftovers(tmp_path) == []


def test_bad_arguments_are_user_errors(tmp_path):
    with pytest.raises(ShipmlError, match="unknown task"):
        write_report(
            tmp_path / "r.html", title="t", task="ranking", metrics={}, y_true=[1], y_pred=[1]
        )
    with pytest.raises(ShipmlError, match="folder"):
        write_report(tmp_path, title="t", task="regression", metrics={}, y_true=[1], y_pred=[1])


# --------------------------------------------------------------------------------------------
# plots on degenerate input: a picture with a message, never an exception


def test_plots_survive_degenerate_input():
    y = np.array([1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    pictures = [
        plots.roc_curve_png(y, proba, [1, 2]),  # a single class: no curve
        plots.trials_png([{"number": 0, "value": None, "state": "FAIL"}], "roc_auc"),
        plots.residuals_png([5.0, 5.0], [5.0, 5.0]),  # zero-width ranges
        plots.class_balance_png({f"class {i}": i + 1 for i in range(32)}),  # 3 go to "other"
    ]
    assert all(p.startswith(PNG) for p in pictures)
