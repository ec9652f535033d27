"""`shipml monitor` on real data: a model trained on the Adult training slice, served (its
prediction log written as the server writes it) on the held-out Adult test slice, as is and
with a realistic shift injected.

Log windows (relative to now): calm rows 10 days ago (with feedback), shifted rows 1 hour ago,
nothing between 3 and 5 days ago.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ADULT, ADULT_TEST, AI4I, AI4I_LEAKS, GERMAN, run_cli
from shipml.data.schema import infer_schema
from shipml.monitor.drift import dataset_drift
from shipml.monitor.log import PredictionLog, add_feedback
from shipml.monitor.reference import ARTIFACT, build_reference

NUMERIC_SHIFTED = {"age", "hours_per_week", "capital_gain", "education_num"}  # 4 of 6
CATEGORICAL_SHIFTED = {"workclass", "marital_status", "relationship", "occupation"}
SHIFTED = NUMERIC_SHIFTED | CATEGORICAL_SHIFTED
UNTOUCHED = {"fnlwgt", "capital_loss", "race", "sex", "native_country"}
NOW = dt.datetime.now(dt.timezone.utc)
CALM_AT = NOW - dt.timedelta(days=10)
SHIFTED_AT = NOW - dt.timedelta(hours=1)
CALM = ["--since", "12d", "--until", "8d"]
RECENT = ["--since", "1d"]
N_FEEDBACK = 300
BAD_LABELS = ["maybe", ">50k?", "maybe"]


def _shift(frame: pd.DataFrame) -> pd.DataFrame:
    """A new population: older, longer hours, more graduates and capital gains, more
    self-employed; two categories swapped in marital status and relationship."""
    rng = np.random.default_rng(7)
    out = frame.copy()
    n = len(out)
    out["age"] = out["age"] + 15
    out["hours_per_week"] = (out["hours_per_week"] * 1.5).round()
    out["capital_gain"] = out["capital_gain"] * 3 + np.where(rng.random(n) < 0.3, 1000, 0)
    out.loc[rng.random(n) < 0.7, "education_num"] = 13
    out.loc[rng.random(n) < 0.8, "workclass"] = "Self-emp-not-inc"
    out.loc[rng.random(n) < 0.5, "occupation"] = "Prof-specialty"
    swap = {"Married-civ-spouse": "Never-married", "Never-married": "Married-civ-spouse"}
    out["marital_status"] = out["marital_status"].replace(swap)
    swap = {"Husband": "Own-child", "Own-child": "Husband"}
    out["relationship"] = out["relationship"].replace(swap)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The Adult model, registered, and its prediction log: ids of the calm rows, the model."""
    import shipml
    from shipml.registry.store import Registry

    folder = tmp_path_factory.mktemp("monitor-registry")
    # labels at the balanced-accuracy threshold: a richer population then moves the predicted
    # labels as well as the probabilities (at 0.5 the rare class stays rare in both)
    model = shipml.train(ADULT, target="income", name="adult", time_budget=15, n_trials=2,
                         metric="balanced_accuracy", registry_uri=str(folder), progress=False,
                         report=False)  # fmt: skip
    registry = Registry(folder)
    test = pd.read_csv(ADULT_TEST)
    calm_ids = _log(registry, model, test, CALM_AT)
    _log(registry, model, _shift(test), SHIFTED_AT)
    for i, label in zip(calm_ids, test["income"].head(N_FEEDBACK)):
        add_feedback(registry.engine, i, label, key_name="crm")
    for i, label in zip(calm_ids[N_FEEDBACK:], BAD_LABELS):
        add_feedback(registry.engine, i, label, key_name="crm")
    return {"dir": folder, "registry": registry, "model": model, "test": test, "ids": calm_ids}


def _log(registry, model, frame, when, name="adult", *, logged: pd.DataFrame | None = None):
    """Log predictions as the server does: inputs as received (``logged``: as the server stores
    them, PII hashed), label and probabilities. Returns the prediction ids."""
    features = [c.name for c in model.schema.features]
    logged = frame if logged is None else logged
    inputs = json.loads(logged[features].to_json(orient="records"))
    proba = model.predict_proba(frame)
    labels = model.labels_from_proba(proba.to_numpy()).tolist()
    rows = []
    for i, record in enumerate(inputs):
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "model": name,
                "version": 1,
                "created_at": when + dt.timedelta(seconds=i),
                "inputs": record,
                "outputs": {
                    "label": labels[i],
                    "probabilities": {str(c): float(proba.iloc[i][c]) for c in proba.columns},
                },
                "latency_ms": 2.0,
                "key_name": "test",
            }
        )
    log = PredictionLog(registry.engine)
    log.append(rows)
    log.flush()
    assert log.dropped == 0
    return [r["id"] for r in rows]


def _monitor(served, args, capsys, tmp_path):
    args = ["monitor", *args, "-o", tmp_path, "--registry-uri", served["dir"]]
    return run_cli(args, capsys)


# -- the reference saved at training time ----------------------------------------------------
def test_every_trained_model_saves_a_drift_reference(served):
    registry = served["registry"]
    info = registry.resolve("adult")
    reader = registry.open(info)
    assert ARTIFACT in reader.files  # listed in the manifest with its sha256
    ref = reader.read_json(ARTIFACT)
    assert ref["n_rows"] == 3000 and ref["task"] == "binary"
    assert set(ref["columns"]) == {c.name for c in served["model"].schema.features}
    assert ref["pii_excluded"] == []
    # the out-of-fold predicted labels of the training rows
    counts = ref["prediction"]["counts"]
    assert set(counts) == {"<=50K", ">50K"} and sum(counts.values()) == 3000


# -- (a) held-out real data: no drift, exit 0 ------------------------------------------------
def test_held_out_rows_do_not_drift(served, capsys, tmp_path):
    code, out, err = _monitor(served, ["adult", *CALM, "--json"], capsys, tmp_path)
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "no_drift" and result["drift_detected"] is False
    assert result["n_predictions"] == 1000 and result["version"] == 1
    data = result["dataset"]
    assert data["dataset_drift"] is False and data["share_drifted"] < 0.3
    assert data["n_columns"] == 14 and data["n_reference"] == 3000
    methods = {c["column"]: c["method"] for c in data["columns"]}  # 3000 reference rows
    assert methods["age"] == "Wasserstein" and methods["workclass"] == "Jensen-Shannon"
    assert result["prediction"]["drift"] is False
    assert result["prediction"]["method"] == "Jensen-Shannon"
    # both files written, the JSON one equal to what was printed
    html = tmp_path / result["report_path"].rsplit("/", 1)[-1]
    assert html.is_file() and html.name.startswith("monitor-adult-")
    assert json.loads(Path(result["json_path"]).read_text()) == result


def test_rich_summary_without_json(served, capsys, tmp_path):
    code, out, _ = _monitor(served, ["adult", *CALM], capsys, tmp_path)
    assert code == 0
    assert "no drift in 1,000 predictions of adult/1" in out
    assert "live metrics" in out and "report:" in out and "json:" in out


# -- (b) injected drift: exit 1, the drifted columns named -----------------------------------
def test_injected_drift_is_detected(served, capsys, tmp_path):
    code, out, _ = _monitor(served, ["adult", *RECENT, "--json"], capsys, tmp_path)
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "drift" and result["drift_detected"] is True
    assert result["dataset"]["dataset_drift"] is True
    assert set(result["drifted_columns"]) == SHIFTED
    assert not set(result["drifted_columns"]) & UNTOUCHED
    assert result["dataset"]["n_drifted"] == len(SHIFTED)
    assert result["prediction"]["drift"] is True  # an older, richer population earns more
    assert result["live"] is None  # no feedback for these rows
    html = Path(result["report_path"]).read_text(encoding="utf-8")
    for section in ("What was checked", "Prediction drift", "Feature drift", "Drifted columns"):
        assert f"<h2>{section}</h2>" in html
    assert html.count("data:image/png;base64,") == 1 + len(SHIFTED)  # predictions + columns
    assert ">Drift<" in html and "8 of 14" in html
    assert "http://" not in html and "https://" not in html  # self-contained

    code, out, _ = _monitor(served, ["adult", *RECENT], capsys, tmp_path)
    assert code == 1 and "DRIFT" in out and "drifted columns" in out and "workclass" in out


# -- (c) feedback: live metrics next to the validation score ---------------------------------
def test_live_metrics_from_feedback(served, capsys, tmp_path):
    from sklearn.metrics import roc_auc_score

    code, out, _ = _monitor(served, ["adult", *CALM, "--json"], capsys, tmp_path)
    live = json.loads(out)["live"]
    assert live["n_feedback"] == N_FEEDBACK + len(BAD_LABELS)
    assert live["n_scored"] == N_FEEDBACK and live["n_unmatched"] == len(BAD_LABELS)
    assert live["unmatched_examples"] == ["maybe", ">50k?"]
    # by hand: the logged predictions of the first 300 rows against their real labels
    model, test = served["model"], served["test"].head(N_FEEDBACK)
    proba = model.predict_proba(test)
    predicted = model.labels_from_proba(proba.to_numpy())
    truth = test["income"].to_numpy()
    accuracy = float(np.mean(predicted == truth))
    auc = roc_auc_score(truth == ">50K", proba[">50K"])
    comparison = {c["metric"]: c for c in live["comparison"]}
    assert list(comparison) == ["accuracy", "roc_auc", "f1_macro"]
    assert comparison["accuracy"]["live"] == pytest.approx(accuracy, abs=1e-12)
    assert comparison["roc_auc"]["live"] == pytest.approx(auc, abs=1e-9)
    assert comparison["accuracy"]["offline"] == model.metrics["accuracy"]
    assert comparison["accuracy"]["change"] == pytest.approx(accuracy - model.metrics["accuracy"])
    assert 0.7 < accuracy < 0.95  # a real model on real held-out rows
    html = Path(json.loads(out)["report_path"]).read_text(encoding="utf-8")
    assert "<h2>Live performance</h2>" in html and "not values the model knows" in html


# -- (d) a version trained before references existed ----------------------------------------
def test_version_without_reference_is_a_clear_error(served, capsys, tmp_path):
    registry, model = served["registry"], served["model"]
    writer = registry.writer()
    model.write(writer)  # the files an older shipml saved: no drift reference
    writer.finish()
    registry.register("adult-old", writer, task=model.task, metrics=model.metrics,
                      lineage=model.info["lineage"], schema=model.schema.to_dict())  # fmt: skip
    _log(registry, model, served["test"].head(50), SHIFTED_AT, name="adult-old")
    code, _, err = _monitor(served, ["adult-old", *RECENT], capsys, tmp_path)
    assert code == 2
    assert "adult-old/1 has no drift reference" in err and "Retrain" in err
    assert "Traceback" not in err
    # asked for by version, it fails even when the window holds no prediction
    code, _, err = _monitor(served, ["adult-old", "--version", "1", *CALM], capsys, tmp_path)
    assert code == 2 and "no drift reference" in err
    code, out, _ = _monitor(served, ["adult-old", *CALM], capsys, tmp_path)
    assert code == 0 and "nothing to check" in out


# -- (e) empty window, unknown model, bad options ----------------------------------------------
def test_empty_window_is_nothing_to_check(served, capsys, tmp_path):
    code, out, _ = _monitor(served, ["adult", "--since", "5d", "--until", "3d"], capsys, tmp_path)
    assert code == 0 and "nothing to check" in out
    code, out, _ = _monitor(
        served, ["adult", "--since", "5d", "--until", "3d", "--json"], capsys, tmp_path
    )
    result = json.loads(out)
    assert result["status"] == "no_data" and result["n_predictions"] == 0
    assert "nothing to check" in Path(result["report_path"]).read_text(encoding="utf-8")


def test_user_errors_exit_2(served, capsys, tmp_path):
    code, _, err = _monitor(served, ["adlut", *RECENT], capsys, tmp_path)
    assert code == 2 and "no model named 'adlut'. Did you mean 'adult'?" in err
    code, _, err = _monitor(served, ["adult", "--version", "9"], capsys, tmp_path)
    assert code == 2 and "no version 9" in err
    code, _, err = _monitor(served, ["adult", "--since", "last week"], capsys, tmp_path)
    assert code == 2 and "--since 'last week' is not understood" in err
    code, _, err = _monitor(served, ["adult", "--since", "1d", "--until", "2d"], capsys, tmp_path)
    assert code == 2 and "must be before --until" in err


def test_few_rows_and_versions_by_reference(served, capsys, tmp_path):
    from shipml.monitor.check import monitor

    registry = served["registry"]
    few = monitor(registry, "adult", since=SHIFTED_AT, until=SHIFTED_AT + dt.timedelta(seconds=3))
    assert few["n_predictions"] == 3 and few["status"] == "no_drift"
    assert {c["method"] for c in few["dataset"]["columns"]} == {"too few values"}
    assert any("Only 3 predictions" in n for n in few["notes"])
    pinned = monitor(registry, "adult/1", since="1d")  # a version reference checks that version
    assert pinned["version"] == 1 and pinned["status"] == "drift"
    json.dumps([few, pinned], allow_nan=False)


# -- (f) personal data stays out of the reference and of the checks --------------------------
def test_pii_columns_are_left_out():
    frame = pd.read_csv(ADULT)
    frame["email"] = [f"person{i}@example.com" for i in range(len(frame))]
    schema = infer_schema(frame, "income", kinds={"email": "categorical"})
    schema.column("email").pii = True
    ref = build_reference(schema.coerce(frame, strict=False), schema)
    assert "email" not in ref["columns"] and ref["pii_excluded"] == ["email"]
    assert "example.com" not in json.dumps(ref)
    # the log holds keyed hashes for it: never compared, listed as excluded
    current = pd.read_csv(ADULT_TEST).assign(email=[f"hmac:{i:064x}" for i in range(1000)])
    result = dataset_drift(ref, schema.coerce(current, strict=False), schema)
    assert "email" not in {c["column"] for c in result["columns"]}
    assert result["pii_excluded"] == ["email"] and result["n_columns"] == 14
    assert result["dataset_drift"] is False


def test_pii_column_of_a_trained_model_is_never_stored_nor_checked(tmp_path):
    import shipml
    from shipml.monitor.check import monitor
    from shipml.registry.store import Registry

    sensitive = "personal_status_sex"  # a real feature, marked as personal data by the user
    frame = pd.read_csv(GERMAN)
    train, live = frame.iloc[:800], frame.iloc[800:]
    model = shipml.train(train, target="credit_risk", name="credit-pii", keep_pii=[sensitive],
                         time_budget=10, n_trials=1, registry_uri=str(tmp_path), progress=False,
                         report=False)  # fmt: skip
    assert model.schema.column(sensitive).pii and model.schema.column(sensitive).used
    registry = Registry(tmp_path)
    reader = registry.open(registry.resolve("credit-pii"))
    ref = reader.read_json(ARTIFACT)
    assert sensitive not in ref["columns"] and ref["pii_excluded"] == [sensitive]
    assert not any(f'"{v}"' in reader.read_text(ARTIFACT) for v in set(train[sensitive]))
    # the server logs keyed hashes for it: never compared, and the result says so
    hashed = live.assign(**{sensitive: [f"hmac:{i:064x}" for i in range(len(live))]})
    _log(registry, model, live, SHIFTED_AT, name="credit-pii", logged=hashed)
    result = monitor(registry, "credit-pii", since="1d")
    assert result["pii_excluded"] == [sensitive] and result["n_predictions"] == 200
    assert sensitive not in {c["column"] for c in result["dataset"]["columns"]}
    assert result["dataset"]["n_columns"] == len(model.schema.features) - 1
    assert any("personal data" in n and sensitive in n for n in result["notes"])
    assert result["status"] == "no_drift"


# -- several versions in one window -----------------------------------------------------------
def test_each_version_is_checked_against_its_own_reference(served, capsys, tmp_path):
    from shipml.monitor.check import monitor

    registry, model = served["registry"], served["model"]
    v1 = registry.resolve("adult/1")
    writer = registry.writer()
    model.write(writer)
    writer.write_json(ARTIFACT, registry.open(v1).read_json(ARTIFACT))
    writer.finish()
    facts = {"task": model.task, "metrics": model.metrics, "lineage": model.info["lineage"]}
    v2 = registry.register("adult", writer, schema=model.schema.to_dict(), **facts)
    when = NOW - dt.timedelta(days=30)
    test = served["test"]
    _log(registry, model, test.iloc[:40], when)
    ids = _log(registry, model, test.iloc[40:60], when + dt.timedelta(hours=1))
    with registry.engine.begin() as conn:  # as served by version 2
        from shipml.registry import tables

        conn.execute(
            tables.predictions.update()
            .where(tables.predictions.c.id.in_(ids))
            .values(version=v2.version)
        )
    window = {"since": when - dt.timedelta(hours=1), "until": when + dt.timedelta(hours=2)}
    newest = monitor(registry, "adult", **window)
    assert newest["version"] == 2 and newest["n_predictions"] == 20
    assert newest["other_versions"] == {"1": 40}
    assert any("40 by version 1 were left out" in n for n in newest["notes"])
    older = monitor(registry, "adult", version=1, **window)
    assert older["version"] == 1 and older["n_predictions"] == 40 and older["other_versions"] == {}
    assert monitor(registry, "adult/1", **window)["n_predictions"] == 40
    assert monitor(registry, "adult/2", version=1, **window)["version"] == 1


# -- regression: prediction drift on values, RMSE and MAE from feedback ----------------------
def test_regression_model(tmp_path):
    import shipml
    from shipml.monitor.check import monitor
    from shipml.registry.store import Registry

    frame = pd.read_csv(AI4I, encoding="utf-8-sig").drop(columns=AI4I_LEAKS + ["Machine_failure"])
    train, live = frame.iloc[:1500], frame.iloc[1500:]
    model = shipml.train(train, target="Torque [Nm]", name="torque", time_budget=10, n_trials=2,
                         registry_uri=str(tmp_path), progress=False, report=False)  # fmt: skip
    registry = Registry(tmp_path)
    features = [c.name for c in model.schema.features]
    inputs = json.loads(live[features].to_json(orient="records"))
    values = model.predict(live).tolist()
    rows = [
        {"id": str(uuid.uuid4()), "model": "torque", "version": 1, "created_at": SHIFTED_AT,
         "inputs": record, "outputs": {"value": value}, "latency_ms": 1.0}
        for record, value in zip(inputs, values)
    ]  # fmt: skip
    log = PredictionLog(registry.engine)
    log.append(rows)
    log.flush()
    truth = live["Torque [Nm]"].to_numpy()
    for row, value in zip(rows[:200], truth[:200]):
        add_feedback(registry.engine, row["id"], float(value), key_name=None)
    add_feedback(registry.engine, rows[300]["id"], "a lot", key_name=None)
    result = monitor(registry, "torque", since="1d")
    assert result["status"] == "no_drift" and result["n_predictions"] == 500
    assert result["prediction"]["kind"] == "numeric" and not result["prediction"]["drift"]
    live_metrics = {c["metric"]: c["live"] for c in result["live"]["comparison"]}
    errors = truth[:200] - np.asarray(values[:200])
    assert live_metrics["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert live_metrics["mae"] == pytest.approx(np.mean(np.abs(errors)))
    assert result["live"]["n_unmatched"] == 1 and result["live"]["unmatched_examples"] == ["a lot"]
