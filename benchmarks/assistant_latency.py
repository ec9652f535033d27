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


def timed(model, questions: list[str], configs: list[int | None]) -> dict:
    """Per question and per configuration (ONNX intra-op threads; None: the runtime's
    default), interleaved question by question so load hits every configuration alike: the
    whole answer() and its stages (encode, dense, lexical)."""
    runtime = getattr(model.encoder, "runtime", None)
    stages = {c: {"answer": [], "encode": [], "dense": [], "lexical": []} for c in configs}
    for q in questions:
        for c in configs:
            if runtime is not None:
                runtime.threads = c
            t0 = time.perf_counter()
            model.answer(q, k=3)
            t1 = time.perf_counter()
            vec = model.encoder.encode([q])
            t2 = time.perf_counter()
            model.dense.cosine(vec)
            t3 = time.perf_counter()
            model.lexical.raw([q])
            t4 = time.perf_counter()
            for key, dt in zip(stages[c], (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[c][key].append(dt)
    return {c: {k: percentiles(v) for k, v in st.items()} for c, st in stages.items()}


def model_for(args, faq: pd.DataFrame, runtime: str):
    from shipml.answer.model import load
    from shipml.answer.training import train_answer

    if args.model:
        return load(args.model)
    model = train_answer(faq, time_budget=30, tune=False, runtime=runtime, report=False)
    if args.save:
        model.save(args.save)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=1_000)
    parser.add_argument("--runtimes", default="onnx-int8,pytorch")
    parser.add_argument(
        "--threads",
        default="",
        help="ONNX intra-op threads to compare, "
        "interleaved question by question: e.g. 1,2 (default: the runtime's)",
    )
    parser.add_argument("--model", default="", help="a saved model to load instead of training")
    parser.add_argument("--save", default="", help="save the trained model there")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    root = datasets_dir()
    faq = big_faq(root, args.entries)
    test = pd.read_csv(root / "banking77" / "test.csv")["text"].tolist()[: args.questions]
    configs = [int(t) for t in args.threads.split(",") if t] or [None]
    print("| runtime | threads | entries | texts | answer p50 / p99 ms | encode | dense | BM25 |")
    print("|---|---|---|---|---|---|---|---|")
    for runtime in [] if args.model else args.runtimes.split(","):
        report(model_for(args, faq, runtime), runtime, test, configs)
    if args.model:
        model = model_for(args, faq, "")
        report(model, getattr(model.encoder, "runtime_kind", "?"), test, configs)
    return 0


def report(model, runtime: str, test: list[str], configs: list[int | None]) -> None:
    if getattr(model.encoder, "runtime", None) is None:  # PyTorch: torch's one thread
        configs = [None]
    for q in test[:20]:  # warm up every session
        for c in configs:
            if getattr(model.encoder, "runtime", None) is not None:
                model.encoder.runtime.threads = c
            model.answer(q)
    res = timed(model, test, configs)
    for c, stages in res.items():
        cells = " | ".join(f"{p50:.1f} / {p99:.1f}" for p50, p99 in stages.values())
        print(f"| {runtime} | {c or 'default'} | {len(model.entries):,} | "
              f"{len(model.texts.texts):,} | {cells} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
