"""FAQ answering built from BANKING77: k training questions per intent are one FAQ entry's
question and paraphrases, the official test set (3,080 questions) are the customers.

Each of the 77 entries: its question is the first of k training texts drawn per intent (seed
0), its paraphrases the other k - 1, its answer the intent's name in words ("card arrival"; the
data set has no answers). Systems, in the same run on the same entries and questions:

- ``shipml``: `shipml.train(faq, task="answer")` (answer/training.py's train_answer) — fusion,
  field and centroid weights, confidence and hand-over threshold chosen on its own held-out
  paraphrases (k = 1: none, the defaults); `--tune` and `--runtime` pass through;
- ``dense``: the packaged all-MiniLM-L6-v2 alone, nearest question or paraphrase by cosine;
- ``bm25``: BM25 (bm25s) alone, nearest question or paraphrase.

Hit@1, Hit@3 and MRR over every test question; for shipml also the answer rate and the
precision of the answered at its threshold (chosen for --min-precision on validation). Prints
a markdown table; JSON lines go to --out.

Measured (4 December 2026, a 2-core machine shared with other jobs, load 3-5; all 3,080 test
questions; precision and answer rate at the threshold for --min-precision 0.9; validation on
folds of held-out paraphrases, answer/validation.py):

| k | shipml Hit@1 / Hit@3 / MRR | dense | BM25 | shipml answer rate / precision |
|---|---|---|---|---|
| 3, `--tune off` | 0.782 / - / - | - | 0.424 / 0.632 / 0.560 | 0.535 / 0.952 |
| 10, `--tune off` | 0.863 / - / - | - | 0.577 / 0.779 / 0.696 | 0.695 / 0.967 |
| 3, tuned | 0.783 / 0.914 / 0.857 | 0.711 / 0.890 / 0.808 | 0.424 / 0.632 / 0.560 | 0.522 / .958 |
| 10, tuned | 0.868 / - / - | - | 0.577 / 0.779 / 0.696 | 0.740 / .957 |

(tuned: `--tune on --time-budget 300`, tuning kept both times; k = 10: shipml's row only.
The `--tune off` rows: shipml's row only, PyTorch runtime. "dense" scores with the model's
encoder: the tuned one when tuning was kept.)

Usage (from the repository root)::

    .venv/bin/python benchmarks/assistant_faq.py --k 1,3,10
    .venv/bin/python benchmarks/assistant_faq.py --k 3,10 --tune on --time-budget 600
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import datasets_dir  # noqa: E402


def faq_from_intents(train: pd.DataFrame, k: int, seed: int = 0) -> pd.DataFrame:
    """One entry per intent: k of its training texts (question + k - 1 paraphrases)."""
    rows = []
    for intent, group in train.groupby("category", sort=True):
        texts = group["text"].sample(n=min(k, len(group)), random_state=seed).tolist()
        rows.append(
            {
                "id": intent,
                "question": texts[0],
                "answer": intent.replace("_", " "),
                "paraphrases": "|".join(t.replace("|", " ") for t in texts[1:]),
            }
        )
    return pd.DataFrame(rows)


def ranking(fused: np.ndarray, target: np.ndarray) -> dict:
    from shipml.answer.metrics import ranks

    r = ranks(fused, target)
    return {"hit@1": float(np.mean(r == 1)), "hit@3": float(np.mean(r <= 3)),
            "mrr": float(np.mean(1.0 / r))}  # fmt: skip


def run_k(k: int, train, test, args) -> list[dict]:
    from shipml.answer.retrieval import Settings
    from shipml.answer.training import train_answer  # what train(task="answer") runs

    faq = faq_from_intents(train, k, args.seed)
    t0 = time.monotonic()
    tune = {"auto": None, "on": True, "off": False}[args.tune]
    model = train_answer(faq, min_precision=args.min_precision, seed=args.seed,
                         time_budget=args.time_budget, tune=tune,
                         runtime=args.runtime)  # fmt: skip
    train_s = time.monotonic() - t0
    questions = test["text"].tolist()
    target = np.array([model._by_id[c] for c in test["category"]])
    t0 = time.monotonic()
    scores = model.scores(questions)
    score_s = time.monotonic() - t0
    got = model.evaluate_lists(questions, test["category"].tolist())
    out = [{"k": k, "system": "shipml", "hit@1": got["hit@1"], "hit@3": got["hit@3"],
            "mrr": got["mrr"], "answer_rate": got["answer_rate"], "precision": got["precision"],
            "threshold": round(model.threshold, 4), "settings": model.settings.to_dict(),
            "train_s": round(train_s, 1), "score_s": round(score_s, 1),
            "notes": model.notes}]  # fmt: skip
    plain = Settings(alpha=1.0, paraphrase=1.0, answer=0.0)
    for system, settings in (("dense", plain), ("bm25", replace(plain, alpha=0.0))):
        out.append({"k": k, "system": system, **ranking(scores.entries(settings), target)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| k | system | Hit@1 | Hit@3 | MRR | answer rate | precision |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        rate = f"{r['answer_rate']:.3f}" if r.get("answer_rate") is not None else ""
        prec = f"{r['precision']:.3f}" if r.get("precision") is not None else ""
        lines.append(f"| {r['k']} | {r['system']} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | "
                     f"{r['mrr']:.3f} | {rate} | {prec} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", default="1,3,10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-precision", type=float, default=0.9)
    parser.add_argument("--time-budget", type=float, default=300.0)
    parser.add_argument("--test-rows", type=int, default=0, help="0: the whole test set")
    parser.add_argument(
        "--tune",
        choices=("auto", "on", "off"),
        default="auto",
        help="contrastive tuning of the encoder (auto: when the budget allows)",
    )
    parser.add_argument("--runtime", choices=("auto", "pytorch", "onnx-int8"), default="auto")
    parser.add_argument("--out", default="assistant_faq.jsonl")
    args = parser.parse_args()
    folder = datasets_dir() / "banking77"
    train, test = pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "test.csv")
    if args.test_rows:
        test = test.sample(n=args.test_rows, random_state=args.seed)
    rows = []
    for k in (int(x) for x in args.k.split(",")):
        for row in run_k(k, train, test, args):
            rows.append(row)
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps({x: v for x, v in row.items() if x != "notes"}), flush=True)
    print(f"\nBANKING77 as an FAQ ({len(test):,} test questions, 77 entries)\n")
    print(table(rows))


if __name__ == "__main__":
    main()
