"""The linear family on TF-IDF features against TF-IDF + scikit-learn's logistic regression,
on the same rows: accuracy on a held-out set (issue 13, item 11: the 15 s text budget runs this
path).

    SHIPML_DATASETS=../shared/datasets .venv/bin/python benchmarks/text_tfidf.py

Run it from two checkouts (PYTHONPATH=<checkout>/src) to compare a change side by side.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from tabular import datasets_dir  # noqa: E402


def accuracies(train: pd.DataFrame, test: pd.DataFrame, target: str, text: str):
    """(shipml linear on TF-IDF, 3 trials; TF-IDF 1-2-grams + LogisticRegression)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    import shipml

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    lr = LogisticRegression(max_iter=2000).fit(vec.fit_transform(train[text]), train[target])
    base = float((lr.predict(vec.transform(test[text])) == test[target]).mean())
    model = shipml.train(train, target, mode="tfidf", families="linear", n_trials=3, seed=0,
                         report=False)  # fmt: skip
    ours = float((np.asarray(model.predict(test)) == test[target].to_numpy()).mean())
    return ours, base


def cases(root: Path):
    sst = pd.read_csv(root / "sst2" / "train.csv").sample(1500, random_state=0)
    yield "sst2, 1,500 phrases, dev set", sst, pd.read_csv(root / "sst2" / "dev.csv"), "label"
    data = REPO / "tests" / "data"
    bank = pd.read_csv(data / "banking77_slice.csv")
    test = pd.read_csv(data / "banking77_test_slice.csv")
    yield (
        "banking77 slice (300 rows)",
        bank,
        test[test.category.isin(set(bank.category))],
        "category",
    )


def main() -> int:
    print("| data | shipml linear, TF-IDF | TF-IDF + LR |\n|---|---|---|")
    for name, train, test, target in cases(datasets_dir()):
        text = next(c for c in train.columns if c != target)
        ours, base = accuracies(train, test, target, text)
        print(f"| {name} | {ours:.3f} | {base:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
