"""One question at a time against a 10,000-entry FAQ, on one thread: p50 / p99 of
`AnswerModel.answer` and of each of its stages (issue 16: p99 <= 20 ms on one worker).

The FAQ: 10,000 BANKING77 training texts, each one entry (question = the text, answer = its
intent in words, one paraphrase = another text of the same intent), so the index holds 20,000
texts as a real FAQ with paraphrases would. The questions: the first --questions test texts.
The model is trained with a short budget (the numbers measured are the serving path's, not
the search's) in both runtimes when asked.

    SHIPML_DATASETS=../shared/datasets .venv/bin/python benchmarks/assistant_latency.py \\
        --entries 10000 --questions 1000
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import datasets_dir  # noqa: E402


def big_faq(root: Path, n: int, seed: int = 0) -> pd.DataFrame:
    train = pd.read_csv(root / "banking77" / "train.csv").sample(frac=1.0, random_state=seed)
    rows, by_intent = [], {c: list(g["text"]) for c, g in train.groupby("category")}
    for i, (text, intent) in enumerate(zip(train["text"], train["category"])):
        if len(rows) == n:
            break
        pool = by_intent[intent]
        other = pool[(pool.index(text) + 1) % len(pool)]
        rows.append({"id": str(i), "question": text, "paraphrases": other,
                     "answer": intent.replace("_", " ")})  # fmt: skip
    while len(rows) < n:  # past the training texts: numbered variants
        j = len(rows)
        rows.append({**rows[j % len(train)], "id": str(j),
                     "question": f"{rows[j % len(train)]['question']} ({j})"})  # fmt: skip
    return pd.DataFrame(rows)


def percentiles(values: list[float]) -> tuple[float, float]:
    ms = np.asarray(values) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(model, questions: list[str]) -> dict:
    """Per question: the whole answer() and its stages (encode, dense, lexical, rank)."""
    stages = {"answer": [], "encode": [], "dense": [], "lexical": []}
    for q in questions:
        t0 = time.perf_counter()
        model.answer(q, k=3)
        t1 = time.perf_counter()
        vec = model.encoder.encode([q])
        t2 = time.perf_counter()
        model.dense.cosine(vec)
        t3 = time.perf_counter()
        model.lexical.raw([q])
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key].append(dt)
    return {k: percentiles(v) for k, v in stages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=1_000)
    parser.add_argument("--runtimes", default="onnx-int8,pytorch")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from shipml.answer.training import train_answer

    root = datasets_dir()
    faq = big_faq(root, args.entries)
    test = pd.read_csv(root / "banking77" / "test.csv")["text"].tolist()[: args.questions]
    print("| runtime | entries | texts | answer p50 / p99 ms | encode | dense | BM25 |")
    print("|---|---|---|---|---|---|---|")
    for runtime in args.runtimes.split(","):
        model = train_answer(faq, time_budget=30, tune=False, runtime=runtime, report=False)
        for q in test[:20]:  # warm up
            model.answer(q)
        res = timed(model, test)
        cells = " | ".join(f"{p50:.1f} / {p99:.1f}" for p50, p99 in res.values())
        print(f"| {runtime} | {len(faq):,} | {model.dense.vectors.shape[0]:,} | {cells} |",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
