"""Does `shipml train --time-budget B` end in B seconds, and is what it ends with any good?

For each budget, the CLI trains on a table it has never seen (a fresh SHIPML_HOME and registry
each time, so no embedding cache helps), the wall clock of the whole command is measured from
outside, and the registered model is scored on a test split against a plain baseline trained
on the same rows:

- tabular: house prices (regression, RMSE on a seeded 80/20 split of train.csv, `Id` dropped:
  the Kaggle test file has no labels) against LightGBM with its defaults;
- text: 1,500 SST-2 training phrases of 6+ words (binary sentiment; accuracy on the 872 dev
  sentences) against TF-IDF words and bigrams + logistic regression.

`ratio` is shipml's metric over the baseline's, oriented so that above 1 means shipml is better
(baseline RMSE / shipml RMSE; shipml accuracy / baseline accuracy). The target is wall/budget at
most 1.10 (budget + 2 s under 20 s). The load average is printed: on a shared machine other jobs
slow every step, and the plan scales its estimates by the slowdown it measures.

Usage (from the repository root)::

    .venv/bin/python benchmarks/budget.py                         # 15, 30, 60, 120 s, both
    .venv/bin/python benchmarks/budget.py --budgets 15,30 --datasets tabular
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from tabular import datasets_dir, load_house_prices, run_lgbm  # noqa: E402

TEXT_ROWS = 1500


@dataclass
class Case:
    name: str
    target: str
    train: pd.DataFrame
    test: pd.DataFrame
    metric: str  # "rmse" (lower is better) or "accuracy"
    baseline_name: str
    baseline: float = float("nan")


def tabular_case(root: Path) -> Case:
    ds = load_house_prices(root, seed=0)
    pred = run_lgbm(ds, 0.0, 0)
    y = ds.test[ds.target].to_numpy(float)
    rmse = float(np.sqrt(np.mean((np.asarray(pred.labels, float) - y) ** 2)))
    return Case("house_prices", ds.target, ds.train, ds.test, "rmse", "LightGBM defaults", rmse)


def text_case(root: Path) -> Case:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = pd.read_csv(root / "sst2" / "train.csv")
    train = train[train["sentence"].str.split().str.len() >= 6]
    train = train.sample(TEXT_ROWS, random_state=0).reset_index(drop=True)
    test = pd.read_csv(root / "sst2" / "dev.csv")
    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000)
    )
    pipe.fit(train["sentence"], train["label"])
    accuracy = float(np.mean(pipe.predict(test["sentence"]) == test["label"].to_numpy()))
    return Case("sst2_1500", "label", train, test, "accuracy", "TF-IDF + LR", accuracy)


def run_cli(case: Case, budget: float, work: Path) -> tuple[float, float, dict]:
    """(wall seconds of `shipml train`, test metric, the model's time plan)."""
    data = work / f"{case.name}.csv"
    case.train.to_csv(data, index=False)
    registry = work / f"registry-{case.name}-{budget:g}"
    env = {**os.environ, "SHIPML_HOME": str(work / f"home-{case.name}-{budget:g}")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "shipml", "train", str(data), "--target", case.target,
           "--name", "bench", "--time-budget", f"{budget:g}",
           "--registry-uri", str(registry)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"shipml train failed ({done.returncode}): {done.stderr[-2000:]}")
    sys.path.insert(0, str(REPO / "src"))
    import shipml
    from shipml.registry.store import Registry

    model = shipml.load("bench", registry=Registry(str(registry)))
    x_test = case.test.drop(columns=[case.target])
    predicted = np.asarray(model.predict(x_test))
    y = case.test[case.target].to_numpy()
    if case.metric == "rmse":
        value = float(np.sqrt(np.mean((predicted.astype(float) - y.astype(float)) ** 2)))
    else:
        value = float(np.mean(predicted.astype(str) == y.astype(str)))
    return wall, value, model.info["lineage"].get("time_plan", {})


def ratio(case: Case, value: float) -> float:
    return case.baseline / value if case.metric == "rmse" else value / case.baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="15,30,60,120")
    parser.add_argument("--datasets", default="tabular,text")
    args = parser.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",")]
    root = datasets_dir()
    makers = {"tabular": tabular_case, "text": text_case}
    cases = [makers[d](root) for d in args.datasets.split(",")]
    print(f"# benchmarks/budget.py {' '.join(argv or sys.argv[1:])}")
    header = ("| dataset | budget s | wall s | wall/budget | shipml | baseline | ratio | "
              "slowdown | load avg |")  # fmt: skip
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    with tempfile.TemporaryDirectory(prefix="shipml-budget-") as tmp:
        for case in cases:
            for budget in budgets:
                wall, value, plan = run_cli(case, budget, Path(tmp))
                load = os.getloadavg()[0]
                print(
                    f"| {case.name} ({case.metric}) | {budget:g} | {wall:.1f} | "
                    f"{wall / budget:.2f} | {value:.4g} | {value_fmt(case)} | "
                    f"{ratio(case, value):.3f} | {plan.get('slowdown', float('nan')):.2f} | "
                    f"{load:.1f} |",
                    flush=True,
                )
    return 0


def value_fmt(case: Case) -> str:
    return f"{case.baseline:.4g} ({case.baseline_name})"


if __name__ == "__main__":
    raise SystemExit(main())
