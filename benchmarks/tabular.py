"""Tabular benchmark: shipml against LightGBM defaults, FLAML and AutoGluon, one run.

Every system gets the same train/test split of each dataset, in one run, so the numbers in a row
are comparable even on a noisy machine. Each cell (one system on one dataset) runs alone, in its
own subprocess, one after the other: shipml and the plain libraries in this interpreter's
environment, FLAML and AutoGluon in the peers' venv (`bash benchmarks/setup_peers.sh` makes it),
all with OMP_WAIT_POLICY=PASSIVE. Metrics are computed on the test split, here, for every system:

- binary: ROC AUC, the positive class being the minority class of the training labels;
- multiclass: accuracy (macro F1 in brackets);
- house_prices: RMSE of log(SalePrice) (RMSE in dollars in brackets); every system is trained
  on log(SalePrice) and its predictions exponentiated (`--raw-house-target`: the raw price, as
  before issue 14); other regression: RMSE (RMSE of log in brackets).

Usage (from the repository root)::

    .venv/bin/python benchmarks/tabular.py                 # the issue-14 run: 6 datasets, 60 s
    .venv/bin/python benchmarks/tabular.py --systems shipml,lgbm,hgb,flaml --datasets adult
    .venv/bin/python benchmarks/tabular.py --shipml-families linear,lightgbm --out other.json

Datasets are read from ../shared/datasets (override with SHIPML_DATASETS). Raw results go to
benchmarks/.work/tabular.json (git-ignored), rewritten after every cell: running the same command
again skips the cells it holds (a run that was stopped continues; `--fresh` starts over).
"""

from __future__ import annotations

import os

# LightGBM/OpenMP threads spin while idle by default; on 2 shared cores that steals time from
# whichever system runs next. Must be set before lightgbm (or anything importing it) loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import hashlib
import inspect
import json
import math
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WORK_DIR = REPO / "benchmarks" / ".work"
HARNESS = 2  # version of the results file; a file of another version is not resumed


@dataclass(frozen=True)
class System:
    title: str  # column title
    short: str  # in the time columns
    env: str  # "main": this interpreter's environment; "peers": the peers' venv


SYSTEM_INFO: dict[str, System] = {
    "shipml": System("shipml", "shipml", "main"),
    "shipml_no_mlp": System("shipml, no MLP", "shipml no MLP", "main"),
    "lgbm": System("LightGBM defaults", "LGBM", "main"),
    "hgb": System("HGB defaults", "HGB", "main"),
    "flaml": System("FLAML", "FLAML", "peers"),
    "ag_medium": System("AutoGluon medium", "AG medium", "peers"),
    "ag_best": System("AutoGluon best", "AG best", "peers"),
    "ag_best_no_nn": System("AutoGluon best, no NN", "AG best no NN", "peers"),
}
SYSTEMS = tuple(SYSTEM_INFO)  # table column order
DEFAULT_SYSTEMS = ("shipml", "shipml_no_mlp", "lgbm", "flaml", "ag_medium", "ag_best")
SHIPML_SYSTEMS = ("shipml", "shipml_no_mlp")
SYSTEM_TITLES = {k: v.title for k, v in SYSTEM_INFO.items()}
SYSTEM_SHORT = {k: v.short for k, v in SYSTEM_INFO.items()}


def _up_to(relative: str) -> Path | None:
    """The first `relative` path found beside the repository or beside one of its parents (a
    git worktree such as /work/wt/x finds /work/shared)."""
    for parent in REPO.parents:
        if (parent / relative).exists():
            return parent / relative
    return None


def datasets_dir() -> Path:
    env = os.environ.get("SHIPML_DATASETS")
    if env:
        return Path(env)
    return _up_to("shared/datasets") or REPO.parent / "shared" / "datasets"


def default_peer_venv() -> Path:
    env = os.environ.get("SHIPML_BENCH_VENV")
    if env:
        return Path(env)
    found = _up_to("bench-venv/bin/python")
    return found.parents[1] if found else REPO.parent / "bench-venv"


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
    # Regression scored on log(target): every system is trained on log(target) (see fit_view).
    log_target: bool = False


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
    ds = _single_file("house_prices", frame, "SalePrice", seed, drop=("Id",), regression=True)
    # Kaggle's metric is the RMSE of log(price); the raw target stays in the frames.
    return replace(ds, log_target=True)


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
    info: dict | None = None  # what the system chose (shipml's ensemble, AutoGluon's models)


def fit_view(ds: Dataset) -> Dataset:
    """The dataset a system trains on: log(target) for a log-scored regression, else itself."""
    if not ds.log_target:
        return ds
    train = ds.train.copy()
    train[ds.target] = np.log(train[ds.target].astype(float))
    return replace(ds, train=train, log_target=False)


def from_fit_view(ds: Dataset, pred: Prediction) -> Prediction:
    """Predictions back on the scale of the test target."""
    if not ds.log_target:
        return pred
    return replace(pred, labels=np.exp(np.asarray(pred.labels, dtype=float)))


def metric_kind(ds: Dataset) -> str:
    if ds.task == "binary":
        return "auc"
    if ds.task == "multiclass":
        return "accuracy"
    return "log_rmse" if ds.log_target else "rmse"


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
    return (log_rmse, rmse) if ds.log_target else (rmse, log_rmse)


METRIC_NAMES = {
    "auc": "ROC AUC",
    "accuracy": "accuracy (macro F1)",
    "rmse": "RMSE (log RMSE)",
    "log_rmse": "RMSE of log (RMSE)",
}


def metric_name(task: str) -> str:
    """The metric of a task (regression: RMSE); metric_kind tells a log-scored dataset."""
    return METRIC_NAMES[{"binary": "auc", "multiclass": "accuracy"}.get(task, "rmse")]


def higher_is_better(task: str) -> bool:
    return task != "regression"


def split_fingerprint(ds: Dataset) -> str:
    """sha256 of both frames' values, the same under pandas 2 and 3: a subprocess in another
    environment proves it scored the very rows the harness scores."""
    digest = hashlib.sha256()
    for frame in (ds.train, ds.test):
        digest.update(repr((frame.shape, list(frame.columns))).encode())
        for col in frame.columns:
            series = frame[col]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                values = series.to_numpy(dtype=float, na_value=np.nan)
                digest.update(np.nan_to_num(values, nan=-1.5e308).tobytes())
            else:
                digest.update("\x1f".join("" if pd.isna(v) else str(v) for v in series).encode())
    return digest.hexdigest()


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


class Skipped(Exception):
    """A cell this tree cannot run (no MLP family to switch off, ...): reported, not an error."""


def _family_from_name(name: str) -> str:
    """ "lightgbm#3", "forest (defaults)+all-rows", "tfidf+linear#0" -> lightgbm, forest, linear."""
    found = re.match(r"[A-Za-z_]+", name.removeprefix("tfidf+"))
    return found.group(0) if found else (name or "?")


def _family_of(member) -> str:
    """A member's learner family: its own attribute where the tree has one, else its name."""
    for obj in (member, getattr(member, "fitted", None)):
        fam = getattr(obj, "family", None)
        fam = getattr(fam, "name", fam)  # a Family object, or its name
        if isinstance(fam, str) and fam:
            return fam
    return _family_from_name(member.name)


def _lower_is_better(metric: str) -> bool:
    return any(word in metric for word in ("rmse", "mae", "mse", "loss", "error"))


def shipml_info(model) -> dict:
    """Which families entered the ensemble (summed weights), its members, the candidates of
    each family (count, best validation score) and the model's validation metrics."""
    members = [
        {"name": m.name, "weight": round(float(m.weight), 4), "family": _family_of(m)}
        for m in model.members
    ]
    ensemble: dict[str, float] = {}
    for m in members:
        if m["weight"] > 0:
            ensemble[m["family"]] = round(ensemble.get(m["family"], 0.0) + m["weight"], 4)
    info = model.info
    metric = str(info.get("lineage", {}).get("metric", ""))
    candidates: dict[str, dict] = {}
    for c in info.get("candidates", []):
        entry = candidates.setdefault(
            c.get("family") or _family_from_name(c.get("name", "")), {"n": 0, "best": None}
        )
        entry["n"] += 1
        value = c.get("score")
        if isinstance(value, (int, float)) and math.isfinite(value):
            best = entry["best"]
            if best is None or (value < best if _lower_is_better(metric) else value > best):
                entry["best"] = float(value)
    validation = {
        k: float(v)
        for k, v in (info.get("metrics") or {}).items()
        if isinstance(v, (int, float)) and math.isfinite(v)
    }
    return {
        "ensemble": dict(sorted(ensemble.items(), key=lambda kv: -kv[1])),
        "members": members,
        "candidates": candidates,
        "metric": metric,
        "validation": validation,
        "family_notes": [str(n) for n in info.get("notes", []) if "famil" in str(n)],
    }


def _families_kwargs(shipml, families: str | None) -> dict:
    if families is None:
        return {}  # train()'s default (which reads SHIPML_FAMILIES where the tree has it)
    if "families" not in inspect.signature(shipml.train).parameters:
        # The family set reaches train() once the learner registry is merged (issue 14, item
        # 1); with an older tree, this is the one line to adapt.
        raise Skipped("this shipml.train() has no families= parameter")
    return {"families": families}


def without_mlp(families: str | None) -> str:
    """`families` (train()'s syntax: "a,b" only those, "-a" all but a; None: all) minus mlp."""
    if families is None:
        return "-mlp"
    parts = [p.strip() for p in families.split(",") if p.strip()]
    if all(p.startswith("-") for p in parts):
        return ",".join([*parts, "-mlp"])
    return ",".join(p for p in parts if p != "mlp")


def run_shipml(ds: Dataset, budget: float, seed: int, families: str | None = None) -> Prediction:
    shipml = _import_shipml()
    x_test = ds.test.drop(columns=[ds.target])
    kwargs = _families_kwargs(shipml, families)
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
            **kwargs,
        )
        fit_s = time.perf_counter() - fit_start
        info = {
            **shipml_info(model),
            "families": families,
            "SHIPML_FAMILIES": os.environ.get("SHIPML_FAMILIES"),
            "source": str(Path(shipml.__file__).parent),
        }
        if ds.task == "regression":
            return Prediction(np.asarray(model.predict(x_test)), fit_seconds=fit_s, info=info)
        proba = model.predict_proba(x_test)
        if ds.task == "binary":
            pos = positive_label(ds)
            column = pos if pos in proba.columns else str(pos)
            if column not in proba.columns:
                raise KeyError(f"predict_proba has no column for class {pos!r}: {list(proba)}")
            # Labels from the same probabilities: one prediction pass, like the peers.
            labels = np.asarray(proba.columns, dtype=object)[proba.to_numpy().argmax(axis=1)]
            return Prediction(labels, proba[column].to_numpy(), fit_s, info)
        return Prediction(np.asarray(model.predict(x_test)), fit_seconds=fit_s, info=info)


def run_shipml_no_mlp(
    ds: Dataset, budget: float, seed: int, families: str | None = None
) -> Prediction:
    """shipml with the MLP family switched off (the same families otherwise)."""
    _import_shipml()
    try:
        from shipml.learners.registry import FAMILIES
    except ImportError:
        FAMILIES = ()
    if "mlp" not in FAMILIES:
        raise Skipped("no mlp family in this shipml's learners/registry.py")
    return run_shipml(ds, budget, seed, families=without_mlp(families))


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


AG_METRICS = {
    "binary": "roc_auc",
    "multiclass": "accuracy",
    "regression": "root_mean_squared_error",
}
AG_NEURAL = ("NN_TORCH", "FASTAI")  # AutoGluon's PyTorch and fastai networks
AG_NEURAL_NAMES = ("NeuralNetTorch", "NeuralNetFastAI")


def run_autogluon(
    ds: Dataset, budget: float, seed: int, presets: str = "medium_quality", exclude=()
) -> Prediction:
    """AutoGluon's TabularPredictor with a preset and `time_limit=budget`; it gets the frames
    the other peers get. AutoGluon has no global seed: its models use their own fixed ones.
    SHIPML_BENCH_AG_DYSTACK=off (--ag-dystack off) passes dynamic_stacking=False: best_quality's
    DyStack sub-fit, in a ray process, can spend a short budget on a loaded machine."""
    from autogluon.tabular import TabularPredictor

    extra = {}
    if os.environ.get("SHIPML_BENCH_AG_DYSTACK", "auto") == "off":
        extra["dynamic_stacking"] = False

    x_train, y_train, x_test = _peer_frames(ds)
    train = x_train.assign(**{ds.target: y_train.to_numpy()})
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as tmp:
        fit_start = time.perf_counter()
        predictor = TabularPredictor(
            label=ds.target,
            problem_type=ds.task,
            eval_metric=AG_METRICS[ds.task],
            path=tmp,
            verbosity=0,
        )
        predictor.fit(
            train,
            time_limit=budget,
            presets=presets,
            excluded_model_types=list(exclude) or None,
            **extra,
        )
        fit_s = time.perf_counter() - fit_start
        names = list(predictor.model_names())
        info = {
            "presets": presets,
            "excluded": list(exclude),
            **extra,
            "ray": _importable("ray"),
            "best": predictor.model_best,
            "models": len(names),
            "neural": [n for n in names if n.startswith(AG_NEURAL_NAMES)],
        }
        if ds.task == "regression":
            return Prediction(predictor.predict(x_test).to_numpy(), fit_seconds=fit_s, info=info)
        proba = predictor.predict_proba(x_test)
        labels = np.asarray(proba.columns, dtype=object)[proba.to_numpy().argmax(axis=1)]
        positive = proba[positive_label(ds)].to_numpy() if ds.task == "binary" else None
        return Prediction(labels, positive, fit_s, info)


RUNNERS: dict[str, Callable[..., Prediction]] = {
    "shipml": run_shipml,
    "shipml_no_mlp": run_shipml_no_mlp,
    "lgbm": run_lgbm,
    "hgb": run_hgb,
    "flaml": run_flaml,
    "ag_medium": functools.partial(run_autogluon, presets="medium_quality"),
    "ag_best": functools.partial(run_autogluon, presets="best_quality"),
    "ag_best_no_nn": functools.partial(run_autogluon, presets="best_quality", exclude=AG_NEURAL),
}


# --------------------------------------------------------------------------------------------
# Harness: one cell = one system on one dataset


def predict_cell(system: str, ds: Dataset, budget: float, seed: int, **options) -> Prediction:
    """Train `system` on the dataset's training frame (log target where scored so) and predict
    the test frame, in this process. `options` reach the shipml runners only."""
    kwargs = options if system in SHIPML_SYSTEMS else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = RUNNERS[system](fit_view(ds), budget, seed, **kwargs)
    return from_fit_view(ds, pred)


def _message(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _new_record(system: str, ds: Dataset) -> dict:
    return {
        "dataset": ds.name,
        "system": system,
        "task": ds.task,
        "metric": metric_kind(ds),
        "value": None,
        "secondary": None,
        "error": None,
        "skipped": None,
        "n_train": len(ds.train),
        "n_test": len(ds.test),
    }


def _scored(record: dict, ds: Dataset, pred: Prediction) -> dict:
    try:
        record["value"], record["secondary"] = score(ds, pred)
    except Exception as exc:  # a prediction that cannot be scored (NaN, wrong length, ...)
        record["error"] = f"scoring: {_message(exc)}"
    return record


def run_one(system: str, ds: Dataset, budget: float, seed: int, **options) -> dict:
    """One cell in this process (--in-process; what every run did before issue 14)."""
    record = _new_record(system, ds)
    start = time.perf_counter()
    try:
        pred = predict_cell(system, ds, budget, seed, **options)
    except Skipped as exc:
        record["seconds"], record["skipped"] = time.perf_counter() - start, str(exc)
        return record
    except Exception as exc:  # one failing system must not stop the run
        record["seconds"], record["error"] = time.perf_counter() - start, _message(exc)
        record["traceback"] = traceback.format_exc()
        return record
    record.update(seconds=time.perf_counter() - start, fit_seconds=pred.fit_seconds)
    record["info"] = pred.info
    return _scored(record, ds, pred)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def worker(args: argparse.Namespace) -> int:
    """--worker: one cell, predictions written to --worker-out for the harness to score."""
    ds = load(args.datasets[0], args)
    out: dict = {
        "split": split_fingerprint(ds),
        "python": sys.executable,
        "versions": {
            p: _version(p) for p in dict.fromkeys(PACKAGES + PEER_PACKAGES) if _version(p)
        },
    }
    start = time.perf_counter()
    try:
        pred = predict_cell(args.worker, ds, args.budget, args.seed, families=args.shipml_families)
        out.update(
            seconds=time.perf_counter() - start,
            fit_seconds=pred.fit_seconds,
            info=pred.info,
            labels=np.asarray(pred.labels).tolist(),
            positive_proba=None if pred.positive_proba is None else pred.positive_proba.tolist(),
        )
    except Skipped as exc:
        out.update(seconds=time.perf_counter() - start, skipped=str(exc))
    except Exception as exc:
        out.update(seconds=time.perf_counter() - start, error=_message(exc))
        out["traceback"] = traceback.format_exc()
    args.worker_out.write_text(json.dumps(out, default=_json_default))
    return 0


def python_for(system: str, args: argparse.Namespace) -> str | None:
    """The interpreter of a system's environment (None: there is none here)."""
    if SYSTEM_INFO[system].env == "main":
        return sys.executable
    peers = args.peer_venv / "bin" / "python"
    if peers.exists():
        return str(peers)
    if system == "flaml" and _version("flaml"):
        return sys.executable  # `make bench` installs FLAML here (before issue 14's peers' venv)
    return None


def cell_env(system: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", SHIPML_DATASETS=str(datasets_dir()))
    env["PYTHONUNBUFFERED"] = "1"
    env["SHIPML_BENCH_AG_DYSTACK"] = args.ag_dystack
    if SYSTEM_INFO[system].env == "main":
        # The shipml under test comes first (a worktree's src/ beside the installed one).
        rest = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(args.shipml_src) + (os.pathsep + rest if rest else "")
    else:
        env.pop("PYTHONPATH", None)  # nothing of this environment in the peers' one
        if args.ag_ray == "off" and system.startswith("ag_"):
            env["PYTHONPATH"] = str(_no_ray_dir(args))
    return env


def _no_ray_dir(args: argparse.Namespace) -> Path:
    """A folder whose `ray` package fails to import: AutoGluon then fits as without ray."""
    folder = args.out.parent / "no-ray"
    (folder / "ray").mkdir(parents=True, exist_ok=True)
    stub = 'raise ImportError("ray switched off by benchmarks/tabular.py --ag-ray off")\n'
    (folder / "ray" / "__init__.py").write_text(stub)
    return folder


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:])


def run_cell(system: str, ds: Dataset, args: argparse.Namespace, fingerprint: str) -> dict:
    """One cell in its own subprocess, alone on the machine; scored here."""
    record = _new_record(system, ds)
    python = python_for(system, args)
    if python is None:
        record.update(
            seconds=0.0,
            error=f"no peers' venv at {args.peer_venv}: run `bash benchmarks/setup_peers.sh` "
            "or pass --peer-venv",
        )
        return record
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{Path(args.out).stem}-{ds.name}-{system}.log"
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        result = Path(tmp) / "cell.json"
        cmd = [python, str(Path(__file__).resolve()), "--worker", system]
        cmd += ["--datasets", ds.name, "--budget", repr(args.budget), "--seed", str(args.seed)]
        cmd += ["--worker-out", str(result)]
        if args.shipml_families is not None:
            cmd += ["--shipml-families", args.shipml_families]
        if args.raw_house_target:
            cmd.append("--raw-house-target")
        start = time.perf_counter()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                cmd, env=cell_env(system, args), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            try:
                code = proc.wait(timeout=args.cell_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the cell's own process group only
                proc.wait()
                code = None
        record["wall_seconds"] = time.perf_counter() - start
        record["python"], record["log"] = python, str(log_path)
        if code is None:
            record["seconds"] = record["wall_seconds"]
            record["error"] = f"killed after the cell timeout of {args.cell_timeout:g} s"
            return record
        if not result.exists():
            record["seconds"] = record["wall_seconds"]
            record["error"] = f"worker exit {code}: {_log_tail(log_path)}"
            return record
        out = json.loads(result.read_text())
    record["seconds"], record["fit_seconds"] = out.get("seconds"), out.get("fit_seconds")
    record["info"], record["versions"] = out.get("info"), out.get("versions")
    for key in ("error", "skipped", "traceback"):
        if out.get(key):
            record[key] = out[key]
    if record["error"] or record["skipped"]:
        return record
    if out["split"] != fingerprint:
        record["error"] = "the worker's split differs from the harness's (pandas/sklearn versions)"
        return record
    proba = out.get("positive_proba")
    pred = Prediction(np.asarray(out["labels"]), None if proba is None else np.asarray(proba))
    return _scored(record, ds, pred)


# --------------------------------------------------------------------------------------------
# Tables

METRIC_SHORT = {"auc": "AUC", "accuracy": "accuracy", "rmse": "RMSE", "log_rmse": "RMSE of log"}


def _fmt(kind: str, value: float) -> str:
    return f"{value:,.0f}" if kind == "rmse" else f"{value:.4f}"


def _fmt_value(kind: str, value: float | None, secondary: float | None) -> str:
    """A metric value, the secondary in brackets. `kind`: metric_kind (or, as before issue 14,
    a task: "regression" reads as RMSE)."""
    if value is None:
        return ""
    kind = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}.get(kind, kind)
    text = _fmt(kind, value)
    if secondary is None:
        return text
    other = f"{secondary:,.0f}" if kind == "log_rmse" else f"{secondary:.4f}"
    return f"{text} ({other})"


def _cell(record: dict | None) -> str:
    if record is None:
        return "—"
    if record.get("skipped"):
        return "n/a"
    if record["error"]:
        message = record["error"].replace("|", "/")
        if len(message) > 90:
            message = message[:87] + "..."
        return f"error: {message}"
    return _fmt_value(record.get("metric", record["task"]), record["value"], record["secondary"])


def _time_cell(record: dict | None) -> str:
    if record is None or record.get("skipped") or record.get("seconds") is None:
        return "—"
    return f"{record['seconds']:.1f} s"


def _lower(kind: str) -> bool:
    return kind in ("rmse", "log_rmse")


def _rounded(kind: str, value: float) -> float:
    # Compare at the printed precision so the summary agrees with the table.
    kind = {"regression": "rmse"}.get(kind, kind)
    return round(value, 0) if kind == "rmse" else round(value, 4)


def _value(record: dict | None) -> float | None:
    if not record or record.get("error") or record.get("skipped"):
        return None
    return record.get("value")


def best_systems(row: dict[str, dict], kind: str, among) -> set[str]:
    """The systems of `among` with the best printed value in a row (ties: all of them)."""
    values = {s: _rounded(kind, v) for s in among if (v := _value(row.get(s))) is not None}
    if not values:
        return set()
    best = min(values.values()) if _lower(kind) else max(values.values())
    return {s for s, v in values.items() if v == best}


def _ensemble_text(record: dict | None) -> str:
    info = (record or {}).get("info") or {}
    if not info.get("ensemble"):
        return ""
    return ", ".join(f"{fam} {w:.2f}" for fam, w in info["ensemble"].items())


def _by_key(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["dataset"], r["system"]): r for r in records}


def markdown_table(records: list[dict], names: list[str], kinds: dict[str, str], systems) -> str:
    """Metric per system (best of each row in bold), times, and shipml's ensemble families."""
    by_key = _by_key(records)
    ships = [s for s in SHIPML_SYSTEMS if s in systems]
    header = ["dataset (metric)"] + [SYSTEM_TITLES[s] for s in systems]
    header += [f"{SYSTEM_SHORT[s]} time" for s in systems]
    header += [f"{SYSTEM_TITLES[s]}: ensemble" for s in ships]
    if set(SHIPML_SYSTEMS) <= set(systems):
        header.append("MLP gain (on vs off, + is better)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        row = {s: by_key.get((name, s)) for s in systems}
        kind = kinds[name]
        best = best_systems(row, kind, systems)
        cells = [f"{name} ({METRIC_SHORT[kind]})"]
        for s in systems:
            text = _cell(row[s])
            cells.append(f"**{text}**" if s in best else text)
        cells += [_time_cell(row[s]) for s in systems]
        cells += [_ensemble_text(row[s]) for s in ships]
        if set(SHIPML_SYSTEMS) <= set(systems):
            on, off = _value(row["shipml"]), _value(row["shipml_no_mlp"])
            gain = None if on is None or off is None else (off - on if _lower(kind) else on - off)
            cells.append("" if gain is None else f"{gain:+.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_line(
    records: list[dict], names: list[str], kinds: dict[str, str], systems, ours: str = "shipml"
) -> str:
    """On how many datasets `ours` is the best cell of its row against the peers (the
    non-shipml systems), and where it is below LightGBM defaults."""
    by_key = _by_key(records)
    peers = [s for s in systems if s not in SHIPML_SYSTEMS]
    wins, rows, below = 0, 0, []
    for name in names:
        kind = kinds[name]
        row = {s: by_key.get((name, s)) for s in [ours, *peers]}
        mine = _value(row[ours])
        if mine is None or not any(_value(row[p]) is not None for p in peers):
            continue
        rows += 1
        wins += ours in best_systems(row, kind, [ours, *peers])
        lgbm = _value(row.get("lgbm"))
        if lgbm is not None:
            a, b = _rounded(kind, mine), _rounded(kind, lgbm)
            if (a > b) if _lower(kind) else (a < b):
                below.append(f"{name} ({_fmt(kind, mine)} vs {_fmt(kind, lgbm)})")
    title = SYSTEM_TITLES[ours]
    if rows == 0:
        return f"{title}: no dataset with its result and a peer's"
    against = ", ".join(SYSTEM_TITLES[p] for p in peers)
    text = f"{title} is the best cell of its row (against {against}) on {wins} of {rows} datasets"
    if rows < len(names):
        text += f" ({len(names) - rows} without results)"
    if "lgbm" not in peers:
        return text + "; LightGBM defaults not run"
    return text + "; below LightGBM defaults on " + (", ".join(below) if below else "none")


def details(records: list[dict], names: list[str]) -> str:
    """shipml's ensembles (members, candidates per family, validation) and AutoGluon's models."""
    by_key = _by_key(records)
    lines = [
        "| dataset | system | ensemble members (weight) | candidates per family (n, best "
        "validation) | validation | notes |",
        "|---|---|---|---|---|---|",
    ]
    ag = [
        "| dataset | system | best model | models | neural networks trained | settings |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        for system in SYSTEMS:
            record = by_key.get((name, system))
            info = (record or {}).get("info") or {}
            if system in SHIPML_SYSTEMS and info.get("members") is not None:
                members = ", ".join(f"{m['name']} {m['weight']:.2f}" for m in info["members"])
                cands = ", ".join(
                    f"{fam} {c['n']}" + ("" if c["best"] is None else f" ({c['best']:.4f})")
                    for fam, c in info.get("candidates", {}).items()
                )
                validation = info.get("validation", {})
                metric = info.get("metric")
                shown = {metric: validation[metric]} if metric in validation else validation
                valid = ", ".join(f"{k} {v:.4f}" for k, v in shown.items())
                notes = "; ".join(info.get("family_notes", [])).replace("|", "/")
                row = [name, SYSTEM_TITLES[system], members, cands, valid, notes]
                lines.append("| " + " | ".join(row) + " |")
            elif system.startswith("ag_") and info.get("best"):
                neural = ", ".join(info.get("neural", [])) or "none"
                settings = "ray" if info.get("ray") else "no ray"
                if "dynamic_stacking" in info:
                    settings += f", dynamic_stacking={info['dynamic_stacking']}"
                row = [name, SYSTEM_TITLES[system], info["best"], str(info["models"]), neural]
                row.append(settings)
                ag.append("| " + " | ".join(row) + " |")
    out = []
    if len(lines) > 2:
        out += ["shipml's ensembles:", "", *lines]
    if len(ag) > 2:
        out += ["", "AutoGluon's models:", "", *ag]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Command line

PACKAGES = ("shipml", "lightgbm", "scikit-learn", "pandas", "numpy", "torch", "flaml")
PEER_PACKAGES = ("autogluon.tabular", "flaml", "torch", "lightgbm", "scikit-learn", "pandas")


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
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, from {', '.join(SYSTEMS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds for shipml, FLAML, AutoGluon"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=WORK_DIR / "tabular.json", help="raw results (JSON)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the cells already in --out (no resume)"
    )
    parser.add_argument(
        "--shipml-families",
        default=None,
        help='family set for shipml, as train(families=...): "linear,lightgbm,mlp" or "-mlp" '
        "(default: train()'s own); shipml_no_mlp uses the same set without mlp",
    )
    parser.add_argument(
        "--shipml-src", type=Path, default=REPO / "src", help="shipml source tree (PYTHONPATH)"
    )
    parser.add_argument(
        "--peer-venv",
        type=Path,
        default=default_peer_venv(),
        help="venv of FLAML and AutoGluon (benchmarks/setup_peers.sh; default %(default)s)",
    )
    parser.add_argument(
        "--cell-timeout", type=float, default=None, help="seconds (default 5 x budget + 600)"
    )
    parser.add_argument(
        "--raw-house-target",
        action="store_true",
        help="train house_prices on SalePrice, scored by RMSE (before issue 14)",
    )
    parser.add_argument(
        "--ag-dystack",
        choices=("auto", "off"),
        default="auto",
        help="AutoGluon's dynamic stacking (default: its own choice; off: dynamic_stacking=False)",
    )
    parser.add_argument(
        "--ag-ray",
        choices=("auto", "off"),
        default="auto",
        help="off: AutoGluon runs as without ray installed (folds one by one; ray's start-up "
        "timed out on a loaded machine)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run every cell in this interpreter"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.datasets = pick(parser, args.datasets, LOADERS, "dataset")
    args.systems = pick(parser, args.systems, RUNNERS, "system")
    args.systems = [s for s in SYSTEMS if s in args.systems]  # the table's column order
    if args.cell_timeout is None:
        args.cell_timeout = 5 * args.budget + 600
    return args


def load(name: str, args: argparse.Namespace) -> Dataset:
    ds = LOADERS[name](datasets_dir(), args.seed)
    return replace(ds, log_target=False) if args.raw_house_target else ds


SETTINGS = ("harness", "budget", "seed", "raw_house_target", "shipml_families", "shipml_src")


def _settings(args: argparse.Namespace) -> dict:
    return {
        "harness": HARNESS,
        "budget": args.budget,
        "seed": args.seed,
        "raw_house_target": args.raw_house_target,
        "shipml_families": args.shipml_families,
        "shipml_src": str(args.shipml_src.resolve()),
    }


def previous_cells(args: argparse.Namespace) -> dict[tuple[str, str], dict]:
    """The scored cells of an earlier run with the same settings in --out (to resume)."""
    if args.fresh or not args.out.exists():
        return {}
    try:
        payload = json.loads(args.out.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        sys.exit(f"{args.out}: cannot resume from it ({exc}); use --fresh or another --out")
    wanted = _settings(args)
    differ = [k for k in SETTINGS if payload.get(k) != wanted[k]]
    if differ:
        shown = ", ".join(f"{k} {payload.get(k)!r} (now {wanted[k]!r})" for k in differ)
        sys.exit(f"{args.out} holds a run with other settings: {shown}; use --fresh or --out")
    return {
        (r["dataset"], r["system"]): r
        for r in payload.get("records", [])
        if _value(r) is not None  # failed and skipped cells run again
    }


def save(args: argparse.Namespace, command: str, cells: dict, total: float) -> None:
    payload = {
        "command": command.strip(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **_settings(args),
        "peer_venv": str(args.peer_venv),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in PACKAGES},
        "total_seconds": total,
        "records": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in cells.values()
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2, default=_json_default))
    os.replace(partial, args.out)  # an interrupted write leaves the previous file whole


def _peer_versions(args: argparse.Namespace) -> str:
    python = args.peer_venv / "bin" / "python"
    if not python.exists():
        return f"peers' venv: none at {args.peer_venv}"
    code = (
        "from importlib import metadata as m\n"
        f"for p in {PEER_PACKAGES!r}:\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return f"peers' venv {args.peer_venv}: " + ", ".join(done.stdout.split("\n")).strip(", ")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    os.environ["SHIPML_BENCH_AG_DYSTACK"] = args.ag_dystack  # for --in-process
    command = banner("tabular.py", argv, args, PACKAGES)
    print(f"shipml source: {args.shipml_src} | {_peer_versions(args)}", flush=True)
    cells = previous_cells(args)
    if cells:
        print(f"resuming: {len(cells)} scored cells in {args.out} (--fresh to run them again)")

    kinds: dict[str, str] = {}
    run_start = time.perf_counter()
    for name in args.datasets:
        ds = load(name, args)
        kinds[name] = metric_kind(ds)
        extra = f", positive class {positive_label(ds)!r}" if ds.task == "binary" else ""
        extra += ", trained on log(target)" if ds.log_target else ""
        print(
            f"\n{name}: {ds.task}, train {len(ds.train):,} x {ds.train.shape[1] - 1}, "
            f"test {len(ds.test):,}, split {ds.split}{extra}",
            flush=True,
        )
        fingerprint = None if args.in_process else split_fingerprint(ds)
        for system in args.systems:
            if (name, system) in cells:
                print(f"  {system:14s} {_cell(cells[name, system]):>14s}  (from {args.out.name})")
                continue
            if args.in_process:
                record = run_one(system, ds, args.budget, args.seed, families=args.shipml_families)
            else:
                record = run_cell(system, ds, args, fingerprint)
            cells[name, system] = record
            save(args, command, cells, time.perf_counter() - run_start)
            shown = (
                _cell(record)
                if record["error"] or record.get("skipped")
                else _fmt_value(kinds[name], record["value"], None)
            )
            seconds = record.get("seconds") or 0.0
            print(f"  {system:14s} {shown:>14s}  {seconds:7.1f} s", flush=True)
    total = time.perf_counter() - run_start

    records = [cells[n, s] for n in args.datasets for s in args.systems if (n, s) in cells]
    print()
    print(markdown_table(records, args.datasets, kinds, args.systems))
    print()
    more = details(records, args.datasets)
    if more:
        print(more + "\n")
    fits = [r["fit_seconds"] for r in records if r["system"] == "shipml" and r.get("fit_seconds")]
    if fits:
        print(
            f"shipml.train wall time: {min(fits):.1f}-{max(fits):.1f} s for a {args.budget:.0f} s "
            f"budget (limit +10% = {1.1 * args.budget:.0f} s)"
        )
    print(f"total wall time {total / 60:.1f} min (this invocation); raw results: {args.out}")
    for ours in [s for s in ("shipml_no_mlp", "shipml") if s in args.systems]:
        print(summary_line(records, args.datasets, kinds, args.systems, ours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
