"""Decision threshold benchmark (issue 13, item 12): accuracy and F1 of the positive class at
0.5 and at the threshold shipml chose, on validation (the out-of-fold predictions the
threshold was chosen on) and on a holdout the model never saw.

Tables: the demo's German credit split (first 800 rows to train, last 200 held out, as in
examples/demo.sh) and the bank marketing slice (70/30 stratified, 11.7 % "yes").

Usage (from the repository root)::

    .venv/bin/python benchmarks/threshold.py                      # default metric
    .venv/bin/python benchmarks/threshold.py default f1 balanced_accuracy accuracy mcc

Run it on another checkout (PYTHONPATH=other/src) to compare: it only wraps
training._threshold to see the out-of-fold probabilities.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import shipml  # noqa: E402
import shipml.training as training  # noqa: E402
from shipml.learners.base import to_proba  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_seen: dict = {}
_real = training._threshold


def _spy(schema, y, oof_raw, rows, *args, **kwargs):
    _seen.update(y=y[rows], p=to_proba(oof_raw, "binary")[:, 1])
    return _real(schema, y, oof_raw, rows, *args, **kwargs)


def _scores(y, p, t) -> str:
    pred = (p >= t).astype(int)
    return f"{accuracy_score(y, pred):.3f} / {f1_score(y, pred, zero_division=0):.3f}"


def run(name, train, holdout, target, metric) -> str:
    model = shipml.train(train, target, time_budget=120, n_trials=8, progress=False,
                         report=False, metric=metric)  # fmt: skip
    t = model.threshold
    positive = model.classes[1]
    yh = (holdout[target] == positive).to_numpy().astype(int)
    ph = model.predict_proba(holdout.drop(columns=target))[positive].to_numpy()
    cells = [name, metric or "default", f"{t:.3f}"]
    for y, p in ((_seen["y"], _seen["p"]), (yh, ph)):
        cells += [_scores(y, p, 0.5), _scores(y, p, t)]
    return "| " + " | ".join(cells) + " |"


def main(metrics: list[str]) -> None:
    training._threshold = _spy
    credit = pd.read_csv(ROOT / "examples" / "german_credit.csv")
    bank = pd.read_csv(ROOT / "tests" / "data" / "bank_slice.csv", sep=";")
    bank_train, bank_hold = train_test_split(bank, test_size=0.3, random_state=0,
                                             stratify=bank["y"])  # fmt: skip
    print(
        "| table | metric | threshold | validation acc / F1 at 0.5 | at threshold "
        "| holdout acc / F1 at 0.5 | at threshold |"
    )
    print("|---|---|---|---|---|---|---|")
    for metric in metrics:
        metric = None if metric == "default" else metric
        print(run("credit (800/200)", credit.iloc[:800], credit.iloc[800:], "credit_risk", metric))
        print(run("bank (1400/600)", bank_train, bank_hold, "y", metric), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["default"])
