"""CLINC150 out-of-scope benchmark (issue 16, part 2): intents with a "none of these".

Data: the official "Full" CLINC150 train / val / test (../shared/datasets/clinc150, CC BY 3.0;
Larson et al., EMNLP 2019): 150 intents + `oos`. Systems, one run, same test set:

- shipml: `train(train+val, "intent", out_of_scope="oos", time_budget=B)` (`--mode`, auto); the
  confidence threshold is chosen on shipml's own out-of-fold validation (scope.py: maximum oos
  recall losing at most `--max-in-scope-loss` in-scope accuracy vs oos as a class). Trained on
  train + val, since shipml validates by itself.
- TF-IDF + LR: scikit-learn TfidfVectorizer (word 1-2 grams, sublinear tf) + LogisticRegression
  (C=10) fitted on train; the same threshold rule (scope.choose_scope) applied on val; scored
  on test, with oos as a class alone and with the threshold.

Reported: in-scope accuracy (4,500 in-scope test queries), oos recall (1,000 oos queries), oos
F1, and the paper's rows (Table 2, "Full"). Raw results: benchmarks/.work/assistant_clinc.json.

Usage (from the repository root)::

    .venv/bin/python benchmarks/assistant_clinc.py --budget 900
    .venv/bin/python benchmarks/assistant_clinc.py --budget 900 --mode finetune --systems shipml
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import WORK_DIR, datasets_dir  # noqa: E402

PAPER = [
    ("BERT fine-tuned (paper)", "oos class", 96.9, 40.3),
    ("BERT fine-tuned (paper)", "threshold", 96.2, 52.3),
    ("MLP on USE (paper)", "oos class", 93.5, 47.4),
    ("Rasa (paper)", "oos class", 91.5, 45.3),
    ("DialogFlow (paper)", "oos class", 91.7, 14.0),
    ("SVM bag-of-words (paper)", "oos class", 91.0, 14.5),
]
OOS = "oos"


def _read():
    folder = datasets_dir() / "clinc150"
    return [pd.read_csv(folder / f"{s}.csv") for s in ("train", "val", "test")]


def run_shipml(train, val, test, budget: float, loss: float, seed: int, mode: str) -> dict:
    import shipml
    from shipml.scope import scope_metrics

    with tempfile.TemporaryDirectory() as home:
        os.environ["SHIPML_HOME"] = home
        t0 = time.perf_counter()
        model = shipml.train(pd.concat([train, val], ignore_index=True), "intent",
                             out_of_scope=OOS, time_budget=budget, seed=seed, mode=mode,
                             max_in_scope_loss=loss, report=False)  # fmt: skip
        seconds = time.perf_counter() - t0
        proba = model.predict_proba(test[["text"]]).to_numpy()
    plain = model.labels_from_proba(proba, scoped=False)
    scoped = model.labels_from_proba(proba)
    scope = model.info["scope"]
    return {
        "train_s": round(seconds, 1),
        "ensemble": model.describe()["ensemble"],
        "text_features": model.info.get("text_features"),
        "scope": {k: scope[k] for k in ("threshold", "mode", "reason", "validation")},
        "class": scope_metrics(test.intent.to_numpy(), plain, OOS),
        "threshold": scope_metrics(test.intent.to_numpy(), scoped, OOS),
    }


def run_tfidf_lr(train, val, test, loss: float) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from shipml.scope import apply_scope, choose_scope, scope_metrics

    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    lr = LogisticRegression(C=10, max_iter=2000).fit(vec.fit_transform(train.text), train.intent)
    classes = list(lr.classes_)
    p_val = lr.predict_proba(vec.transform(val.text))
    scope = choose_scope(val.intent.to_numpy(), p_val, classes, OOS, loss)
    p_test = lr.predict_proba(vec.transform(test.text))
    plain = np.asarray(classes, dtype=object)[p_test.argmax(axis=1)]
    scoped = apply_scope(plain, p_test, classes, OOS, scope["threshold"])
    return {
        "train_s": round(time.perf_counter() - t0, 1),
        "scope": {k: scope[k] for k in ("threshold", "mode", "reason", "validation")},
        "class": scope_metrics(test.intent.to_numpy(), plain, OOS),
        "threshold": scope_metrics(test.intent.to_numpy(), scoped, OOS),
    }


def table(results: dict) -> str:
    rows = [
        "| system | method | in-scope accuracy | oos recall | oos F1 |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for method in ("class", "threshold"):
            m = r[method]
            label = "oos class" if method == "class" else f"+ threshold {r['scope']['threshold']:g}"
            rows.append(f"| {name} | {label} | {100 * m['in_scope_accuracy']:.1f} | "
                        f"{100 * m['oos_recall']:.1f} | {100 * m['oos_f1']:.1f} |")  # fmt: skip
    for name, method, acc, rec in PAPER:
        rows.append(f"| {name} | {method} | {acc} | {rec} | - |")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=900.0)
    parser.add_argument("--max-in-scope-loss", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", default="tfidf_lr,shipml")
    parser.add_argument(
        "--mode", default="auto", help="shipml's text mode: auto, embed, finetune, fewshot, tfidf"
    )
    args = parser.parse_args(argv)
    print(f"# python benchmarks/assistant_clinc.py {' '.join(sys.argv[1:])}", flush=True)
    train, val, test = _read()
    results = {}
    systems = args.systems.split(",")
    if "tfidf_lr" in systems:
        results["TF-IDF + LR"] = run_tfidf_lr(train, val, test, args.max_in_scope_loss)
        print(json.dumps(results["TF-IDF + LR"], indent=1, default=str), flush=True)
    if "shipml" in systems:
        name = (
            f"shipml ({args.budget:g} s" + ("" if args.mode == "auto" else f", {args.mode}") + ")"
        )
        results[name] = run_shipml(train, val, test, args.budget, args.max_in_scope_loss,
                                   args.seed, args.mode)  # fmt: skip
        print(json.dumps(results[name], indent=1, default=str), flush=True)
    print(table(results))
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.mode == "auto" else f"_{args.mode}"
    out = WORK_DIR / f"assistant_clinc_{args.budget:g}{suffix}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
