"""Tabular benchmark: shipml against LightGBM defaults, HistGradientBoosting defaults and FLAML.

Every system gets the same train/test split of each dataset, in one run, so the numbers in a row
are comparable even on a noisy machine. Metrics are computed on the test split:

- binary: ROC AUC, the positive class being the minority class of the training labels;
- multiclass: accuracy (macro F1 in brackets);
- regression: RMSE (RMSE of log(target) in brackets).

Usage (from the repository root)::

    .venv/bin/python benchmarks/tabular.py                       # all datasets, all systems
    .venv/bin/python benchmarks/tabular.py --systems lgbm,hgb,flaml --datasets adult,german_credit

Datasets are read from ../shared/datasets (override with SHIPML_DATASETS). Raw results go to
benchmarks/.work/tabular.json (git-ignored).
"""

from __future__ import annotations

import os

# LightGBM/OpenMP threads spin while idle by default; on 2 shared cores that steals time from
# whichever system runs next. Must be set before lightgbm (or anything importing it) loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import platform
import re
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WORK_DIR = REPO / "benchmarks" / ".work"
SYSTEMS = ("shipml", "lgbm", "hgb", "flaml")
SYSTEM_TITLES = {
    "shipml": "shipml",
    "lgbm": "LightGBM default",
    "hgb": "HGB default",
    "flaml": "FLAML",
}
SYSTEM_SHORT = {"shipml": "shipml", "lgbm": "LGBM", "hgb": "HGB", "flaml": "FLAML"}


def datasets_dir() -> Path:
    env = os.environ.get("SHIPML_DATASETS")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "datasets"


# --------------------------------------------------------------------------------------------
# Datasets


@dataclass
class Dataset:
    name: str
    target: str
    task: str  # "binary", "multiclass" or "regression"
    train: pd.DataFrame  # raw columns + target; the same frame goes to every system
    test: pd.DataFrame
    # Columns that peers (not shipml) receive converted with pd.to_numeric(errors="coerce"):
    # the minimal cleanup a user would do by hand before calling a plain library.
    peer_numeric: tuple[str, ...] = ()
    split: str = ""
    notes: list[str] = field(default_factory=list)


def _read(path: Path, **kwargs) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (set SHIPML_DATASETS to the datasets folder)")
    return pd.read_csv(path, **kwargs)


def _split(frame: pd.DataFrame, target: str, task: str, seed: int):
    from sklearn.model_selection import train_test_split

    stratify = frame[target] if task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _task_of(labels: pd.Series) -> str:
    return "binary" if labels.nunique(dropna=True) == 2 else "multiclass"


def load_adult(root: Path, seed: int) -> Dataset:
    train = _read(root / "adult" / "adult_train.csv.gz")
    test = _read(root / "adult" / "adult_test.csv.gz")
    return Dataset("adult", "income", _task_of(train["income"]), train, test, split="official")


def _single_file(
    name: str,
    frame: pd.DataFrame,
    target: str,
    seed: int,
    drop: tuple[str, ...] = (),
    regression: bool = False,
    peer_numeric: tuple[str, ...] = (),
) -> Dataset:
    frame = frame.drop(columns=list(drop))
    task = "regression" if regression else _task_of(frame[target])
    train, test = _split(frame, target, task, seed)
    split = f"80/20 {'plain' if regression else 'stratified'} random_state={seed}"
    notes = [f"dropped {', '.join(drop)}"] if drop else []
    return Dataset(name, target, task, train, test, peer_numeric, split, notes)


def load_german_credit(root: Path, seed: int) -> Dataset:
    frame = _read(root / "german_credit" / "german_credit.csv")
    return _single_file("german_credit", frame, "credit_risk", seed)


def load_bank_marketing(root: Path, seed: int) -> Dataset:
    frame = _read(root / "bank_marketing" / "bank-full.csv.gz", sep=";")
    # duration is only known after the call ends: leakage for a model used before the call.
    return _single_file("bank_marketing", frame, "y", seed, drop=("duration",))


def load_telco_churn(root: Path, seed: int) -> Dataset:
    frame = _read(root / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    # TotalCharges is text with " " for 11 new customers: shipml must parse it itself.
    return _single_file(
        "telco_churn",
        frame,
        "Churn",
        seed,
        drop=("customerID",),
        peer_numeric=("TotalCharges",),
    )


def load_ai4i_2020(root: Path, seed: int) -> Dataset:
    frame = _read(root / "ai4i_2020" / "ai4i2020.csv", encoding="utf-8-sig")
    # TWF..RNF define Machine_failure (leakage); UDI and Product ID are identifiers.
    drop = ("UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF")
    return _single_file("ai4i_2020", frame, "Machine_failure", seed, drop=drop)


def load_house_prices(root: Path, seed: int) -> Dataset:
    frame = _read(root / "house_prices" / "train.csv")
    return _single_file("house_prices", frame, "SalePrice", seed, drop=("Id",), regression=True)


LOADERS: dict[str, Callable[[Path, int], Dataset]] = {
    "adult": load_adult,
    "german_credit": load_german_credit,
    "bank_marketing": load_bank_marketing,
    "telco_churn": load_telco_churn,
    "ai4i_2020": load_ai4i_2020,
    "house_prices": load_house_prices,
}


def positive_label(ds: Dataset):
    """The minority class of the training labels (the class ROC AUC is computed for)."""
    counts = ds.train[ds.target].value_counts()
    label = counts.index[-1] if counts.iloc[-1] < counts.iloc[0] else counts.index[0]
    return label.item() if isinstance(label, np.generic) else label


# --------------------------------------------------------------------------------------------
# Metrics


@dataclass
class Prediction:
    """What a system returns: labels/numbers, and for binary the minority-class probability."""

    labels: np.ndarray
    positive_proba: np.ndarray | None = None
    fit_seconds: float | None = None  # training alone, where the runner measures it


def score(ds: Dataset, pred: Prediction) -> tuple[float, float | None]:
    """Primary metric and secondary metric (None when there is none)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    y = ds.test[ds.target].to_numpy()
    if ds.task == "binary":
        pos = positive_label(ds)
        return float(roc_auc_score(y == pos, pred.positive_proba)), None
    if ds.task == "multiclass":
        labels = np.asarray(pred.labels)
        return (
            float(accuracy_score(y, labels)),
            float(f1_score(y, labels, average="macro")),
        )
    p = np.asarray(pred.labels, dtype=float)
    y = y.astype(float)
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    log_rmse = float(np.sqrt(np.mean((np.log(np.clip(p, 1.0, None)) - np.log(y)) ** 2)))
    return rmse, log_rmse


def metric_name(task: str) -> str:
    return {
        "binary": "ROC AUC",
        "multiclass": "accuracy (macro F1)",
        "regression": "RMSE (log RMSE)",
    }[task]


def higher_is_better(task: str) -> bool:
    return task != "regression"


# --------------------------------------------------------------------------------------------
# Systems. Each takes (dataset, budget, seed) and returns a Prediction; the harness times it.


_LGBM_SPECIAL = re.compile(r'[\[\]{}",:]')


def _peer_frames(ds: Dataset) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    x_train = ds.train.drop(columns=[ds.target])
    x_test = ds.test.drop(columns=[ds.target])
    for col in ds.peer_numeric:
        x_train[col] = pd.to_numeric(x_train[col], errors="coerce")
        x_test[col] = pd.to_numeric(x_test[col], errors="coerce")
    # LightGBM (also inside FLAML) refuses these characters in feature names ("Air temperature
    # [K]" in ai4i_2020); renaming the columns is the cleanup a user has to do by hand.
    renames = {c: _LGBM_SPECIAL.sub("_", c) for c in x_train.columns}
    x_train, x_test = x_train.rename(columns=renames), x_test.rename(columns=renames)
    return x_train, ds.train[ds.target], x_test


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def _as_category(x_train: pd.DataFrame, x_test: pd.DataFrame):
    """Text columns -> pandas category with the categories seen in training (unseen -> NaN)."""
    x_train, x_test = x_train.copy(), x_test.copy()
    for col in x_train.columns:
        if _is_text(x_train[col]):
            dtype = pd.CategoricalDtype(sorted(x_train[col].dropna().unique()))
            x_train[col] = x_train[col].astype(dtype)
            x_test[col] = x_test[col].astype(dtype)
    return x_train, x_test


def _from_estimator(ds: Dataset, model, x_test: pd.DataFrame) -> Prediction:
    if ds.task == "regression":
        return Prediction(np.asarray(model.predict(x_test)))
    proba = np.asarray(model.predict_proba(x_test))
    classes = list(model.classes_)
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    positive = None
    if ds.task == "binary":
        positive = proba[:, classes.index(positive_label(ds))]
    return Prediction(labels, positive)


def run_lgbm(ds: Dataset, budget: float, seed: int) -> Prediction:
    import lightgbm

    x_train, y_train, x_test = _peer_frames(ds)
    x_train, x_test = _as_category(x_train, x_test)
    cls = lightgbm.LGBMRegressor if ds.task == "regression" else lightgbm.LGBMClassifier
    model = cls(verbose=-1, random_state=seed)
    model.fit(x_train, y_train)
    return _from_estimator(ds, model, x_test)


def run_hgb(ds: Dataset, budget: float, seed: int) -> Prediction:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x_train, y_train, x_test = _peer_frames(ds)
    x_train, x_test = _as_category(x_train, x_test)
    cls = (
        HistGradientBoostingRegressor if ds.task == "regression" else HistGradientBoostingClassifier
    )
    # random_state only fixes the early-stopping validation split (used above 10k rows).
    model = cls(categorical_features="from_dtype", random_state=seed)
    model.fit(x_train, y_train)
    return _from_estimator(ds, model, x_test)


def run_flaml(ds: Dataset, budget: float, seed: int) -> Prediction:
    from flaml import AutoML

    x_train, y_train, x_test = _peer_frames(ds)
    task = "regression" if ds.task == "regression" else "classification"
    automl = AutoML()
    automl.fit(x_train, y_train, task=task, time_budget=budget, seed=seed, verbose=0)
    return _from_estimator(ds, automl, x_test)


def _import_shipml():
    try:
        import shipml
    except ImportError:
        # Not installed in this environment (make bench installs it): use the source tree.
        sys.path.insert(0, str(REPO / "src"))
        import shipml
    return shipml


def run_shipml(ds: Dataset, budget: float, seed: int) -> Prediction:
    shipml = _import_shipml()
    x_test = ds.test.drop(columns=[ds.target])
    with tempfile.TemporaryDirectory(prefix="shipml-bench-") as tmp:
        fit_start = time.perf_counter()
        model = shipml.train(
            ds.train,
            target=ds.target,
            time_budget=budget,
            name=f"bench-{ds.name}".replace("_", "-"),
            seed=seed,
            registry_uri=str(tmp),
            progress=False,
        )
        fit_s = time.perf_counter() - fit_start
        if ds.task == "regression":
            return Prediction(np.asarray(model.predict(x_test)), fit_seconds=fit_s)
        proba = model.predict_proba(x_test)
        if ds.task == "binary":
            pos = positive_label(ds)
            column = pos if pos in proba.columns else str(pos)
            if column not in proba.columns:
                raise KeyError(f"predict_proba has no column for class {pos!r}: {list(proba)}")
            # Labels from the same probabilities: one prediction pass, like the peers.
            labels = np.asarray(proba.columns, dtype=object)[proba.to_numpy().argmax(axis=1)]
            return Prediction(labels, proba[column].to_numpy(), fit_seconds=fit_s)
        return Prediction(np.asarray(model.predict(x_test)), fit_seconds=fit_s)


RUNNERS: dict[str, Callable[[Dataset, float, int], Prediction]] = {
    "shipml": run_shipml,
    "lgbm": run_lgbm,
    "hgb": run_hgb,
    "flaml": run_flaml,
}


# --------------------------------------------------------------------------------------------
# Harness


def run_one(system: str, ds: Dataset, budget: float, seed: int) -> dict:
    record: dict = {"dataset": ds.name, "system": system, "task": ds.task}
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = RUNNERS[system](ds, budget, seed)
        record["seconds"] = time.perf_counter() - start
        record["fit_seconds"] = pred.fit_seconds
        primary, secondary = score(ds, pred)
        record.update(value=primary, secondary=secondary, error=None)
    except Exception as exc:  # one failing system must not stop the run
        record["seconds"] = time.perf_counter() - start
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        record.update(value=None, secondary=None, error=message)
        record["traceback"] = traceback.format_exc()
    return record


def _fmt_value(task: str, value: float | None, secondary: float | None) -> str:
    if value is None:
        return ""
    if task == "regression":
        text = f"{value:,.0f}"
        return text if secondary is None else f"{text} ({secondary:.4f})"
    text = f"{value:.4f}"
    return text if secondary is None else f"{text} ({secondary:.4f})"


def _cell(record: dict | None) -> str:
    if record is None:
        return "—"
    if record["error"]:
        message = record["error"].replace("|", "/")
        if len(message) > 90:
            message = message[:87] + "..."
        return f"error: {message}"
    return _fmt_value(record["task"], record["value"], record["secondary"])


def _time_cell(record: dict | None) -> str:
    if record is None:
        return "—"
    return f"{record['seconds']:.1f} s"


def _rounded(task: str, value: float) -> float:
    # Compare at the printed precision so the summary agrees with the table.
    return round(value, 0) if task == "regression" else round(value, 4)


def shipml_at_least(records: list[dict], peer: str, names: list[str]) -> tuple[int, int]:
    """(datasets where shipml >= peer, datasets where both ran)."""
    by_key = {(r["dataset"], r["system"]): r for r in records}
    wins = both = 0
    for name in names:
        ours, theirs = by_key.get((name, "shipml")), by_key.get((name, peer))
        if not ours or not theirs or ours["error"] or theirs["error"]:
            continue
        both += 1
        task = ours["task"]
        a, b = _rounded(task, ours["value"]), _rounded(task, theirs["value"])
        wins += a >= b if higher_is_better(task) else a <= b
    return wins, both


def markdown_table(records: list[dict], names: list[str], tasks: dict[str, str]) -> str:
    by_key = {(r["dataset"], r["system"]): r for r in records}
    header = (
        ["dataset", "metric"]
        + [SYSTEM_TITLES[s] for s in SYSTEMS]
        + [f"{SYSTEM_SHORT[s]} time" for s in SYSTEMS]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        row = [name, metric_name(tasks[name])]
        row += [_cell(by_key.get((name, s))) for s in SYSTEMS]
        row += [_time_cell(by_key.get((name, s))) for s in SYSTEMS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def summary_line(records: list[dict], names: list[str]) -> str:
    parts = []
    for peer, title in (("flaml", "FLAML"), ("lgbm", "LightGBM defaults")):
        wins, both = shipml_at_least(records, peer, names)
        text = f"shipml >= {title} on {wins} of {len(names)}"
        if both == 0:
            text = f"shipml >= {title}: n/a (no dataset with both results)"
        elif both < len(names):
            text += f" ({both} with both results)"
        parts.append(text)
    return "; ".join(parts) + " (RMSE: lower is better)"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def pick(parser: argparse.ArgumentParser, text: str, known, what: str) -> list[str]:
    """Comma-separated names, each checked against `known` (argparse error otherwise)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in known:
            parser.error(f"unknown {what} {name!r}; choose from {', '.join(known)}")
    return names


def banner(script: str, argv: list[str] | None, args: argparse.Namespace, packages) -> str:
    """Print the command line and the run's settings and versions; returns the command."""
    command = f"python benchmarks/{script} " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"# {command.strip()}")
    print(
        f"datasets: {datasets_dir()} | budget {args.budget:g} s | seed {args.seed} | "
        f"{os.cpu_count()} CPUs | "
        + ", ".join(f"{p} {_version(p)}" for p in packages if _version(p)),
        flush=True,
    )
    return command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(LOADERS), help="comma-separated subset")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds for shipml and FLAML (default 60)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=WORK_DIR / "tabular.json", help="raw results (JSON)"
    )
    args = parser.parse_args(argv)
    args.datasets = pick(parser, args.datasets, LOADERS, "dataset")
    args.systems = pick(parser, args.systems, RUNNERS, "system")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = datasets_dir()
    command = banner(
        "tabular.py", argv, args, ("shipml", "lightgbm", "scikit-learn", "flaml", "pandas")
    )

    records: list[dict] = []
    tasks: dict[str, str] = {}
    run_start = time.perf_counter()
    for name in args.datasets:
        ds = LOADERS[name](root, args.seed)
        tasks[name] = ds.task
        extra = f", positive class {positive_label(ds)!r}" if ds.task == "binary" else ""
        print(
            f"\n{name}: {ds.task}, train {len(ds.train):,} x {ds.train.shape[1] - 1}, "
            f"test {len(ds.test):,}, split {ds.split}{extra}",
            flush=True,
        )
        for system in args.systems:
            record = run_one(system, ds, args.budget, args.seed)
            record["n_train"], record["n_test"] = len(ds.train), len(ds.test)
            records.append(record)
            shown = _cell(record) if record["error"] else _fmt_value(ds.task, record["value"], None)
            print(f"  {system:7s} {shown:>12s}  {record['seconds']:7.1f} s", flush=True)
    total = time.perf_counter() - run_start

    print()
    print(markdown_table(records, args.datasets, tasks))
    print()
    print(summary_line(records, args.datasets))
    fits = [r["fit_seconds"] for r in records if r["system"] == "shipml" and r.get("fit_seconds")]
    if fits:
        print(
            f"shipml.train wall time: {min(fits):.1f}-{max(fits):.1f} s for a {args.budget:.0f} s "
            f"budget (limit +10% = {1.1 * args.budget:.0f} s)"
        )
    print(f"\ntotal wall time {total / 60:.1f} min")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command.strip(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "budget": args.budget,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            p: _version(p) for p in ("shipml", "lightgbm", "scikit-learn", "flaml", "pandas")
        },
        "total_seconds": total,
        "records": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in records
        ],
    }
    args.out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
