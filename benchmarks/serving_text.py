"""Serving a text model: `shipml serve` against `mlflow models serve`, banking77 intents.

shipml trains an `embed` model on banking77's training texts (frozen all-MiniLM-L6-v2 sentence
embeddings + its usual heads; the int8 ONNX encoder when it passes the runtime check) and serves
it as any other model. The MLflow side is what an MLflow user writes for the same job: a
`mlflow.pyfunc` model that runs the same packaged all-MiniLM-L6-v2 in PyTorch (mean pooling,
normalized) and a scikit-learn LogisticRegression fitted on the same training embeddings,
served by `mlflow models serve --env-manager local` from its own virtualenv. The two models are
not the same, so both are scored on the same test texts through their servers first; then wrk
loads each server on 127.0.0.1 (the cells of the two interleaved), as in benchmarks/serving.py.

Usage (from the repository root; `apt-get install -y wrk` first)::

    .venv/bin/python benchmarks/serving_text.py                # about 8 min
    .venv/bin/python benchmarks/serving_text.py --duration 10 --concurrency 1 --rows 1

Raw results go to benchmarks/.work/serving_text.json (git-ignored).
"""

from __future__ import annotations

import os

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch / lightgbm load; servers inherit it

import argparse
import json
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import (  # noqa: E402
    MLFLOW_VENV,
    MODEL_NAME,
    _dumps,
    _env,
    create_key,
    ensure_mlflow_venv,
    ensure_wrk,
    mlflow_server,
    print_table,
    run_cells,
    shipml_server,
    started,
)
from tabular import WORK_DIR, _import_shipml, datasets_dir  # noqa: E402

SCORED_TEXTS = 1000  # test texts both servers label before the load (one request of 50 each)
POOL_TEXTS = 2000  # distinct test texts the load generator cycles through
TEXT_PINS = ("torch", "transformers", "tokenizers", "scikit-learn")


def ensure_text_venv(venv: Path) -> dict[str, str]:
    """The MLflow virtualenv plus PyTorch and transformers at our versions."""
    versions = ensure_mlflow_venv(venv)
    python = str(venv / "bin" / "python")
    code = "import torch, transformers"
    if subprocess.run([python, "-c", code], capture_output=True).returncode != 0:
        pins = [f"{p}=={metadata.version(p)}" for p in TEXT_PINS]
        pins[0] = "torch==2.13.0"  # the CPU wheel (a local version label is not on PyPI)
        print(f"installing {' '.join(pins)} into {venv.name} (once)", flush=True)
        done = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *pins], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"pip install {' '.join(pins)} failed:\n{done.stderr[-3000:]}")
    code = (
        "import json, importlib.metadata as m\n"
        f"print(json.dumps({{p: m.version(p) for p in {TEXT_PINS!r}}}))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return {**versions, **json.loads(done.stdout)}


def load_banking77() -> tuple[pd.DataFrame, pd.DataFrame]:
    root = datasets_dir() / "banking77"
    return pd.read_csv(root / "train.csv"), pd.read_csv(root / "test.csv")


def train_shipml(train: pd.DataFrame, budget: float, seed: int, registry: Path):
    shipml = _import_shipml()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = shipml.train(
            train,
            target="category",
            name=MODEL_NAME,
            time_budget=budget,
            seed=seed,
            progress=False,
            report=False,
            mode="embed",
            text_column="text",
            registry_uri=str(registry),
        )
    return model, time.perf_counter() - started


_SAVE_MLFLOW = """
import sys
import mlflow.pyfunc
import numpy as np


class Intents(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import transformers
        folder = context.artifacts["encoder"]
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.encoder = transformers.AutoModel.from_pretrained(folder).eval()
        head = np.load(context.artifacts["head"])
        self.coef, self.intercept, self.classes = head["coef"], head["intercept"], head["classes"]

    def predict(self, context, model_input, params=None):
        import torch
        texts = model_input["text"].astype(str).tolist()
        with torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256,
                                   return_tensors="pt")
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, dim=1).numpy()
        scores = vectors @ self.coef.T + self.intercept
        return [str(self.classes[i]) for i in scores.argmax(axis=1)]


encoder, head, dest = sys.argv[1:4]
mlflow.pyfunc.save_model(dest, python_model=Intents(),
                         artifacts={"encoder": encoder, "head": head})
"""


def save_mlflow_model(venv: Path, train: pd.DataFrame, seed: int, work: Path) -> tuple[Path, float]:
    """The pyfunc model (encoder folder + a LogisticRegression head on its embeddings) and the
    seconds its head took to fit (the embeddings come from shipml's cache: not timed)."""
    from sklearn.linear_model import LogisticRegression

    from shipml.encoders.loading import load_encoder, packaged_folder

    vectors = load_encoder(None).encode(train["text"].tolist())
    started = time.perf_counter()
    head = LogisticRegression(C=10.0, max_iter=2000, random_state=seed)
    head.fit(vectors, train["category"].astype(str).to_numpy())
    fit_s = time.perf_counter() - started
    head_path = work / "head.npz"
    np.savez(
        head_path, coef=head.coef_, intercept=head.intercept_, classes=head.classes_.astype(str)
    )
    dest = work / "mlflow-model"
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [str(venv / "bin" / "python"), "-c", _SAVE_MLFLOW, str(packaged_folder()),
           str(head_path), str(dest)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise SystemExit(f"saving the MLflow model failed:\n{done.stderr[-3000:]}")
    return dest, fit_s


def make_bodies(texts: list[str], per_request: int) -> tuple[list[str], list[str]]:
    """(shipml bodies, MLflow bodies): the same texts in the same order on both sides."""
    ours, theirs = [], []
    for start in range(0, len(texts) - per_request + 1, per_request):
        chunk = texts[start : start + per_request]
        ours.append(_dumps({"records": [{"text": t} for t in chunk]}))
        split = {"columns": ["text"], "data": [[t] for t in chunk]}
        theirs.append(_dumps({"dataframe_split": split}))
    return ours, theirs


def score(ours, theirs, test: pd.DataFrame) -> dict:
    """Test accuracy of each server on SCORED_TEXTS texts, sent 50 per request, and how often
    the two agree; the first 20 texts also one at a time (a prediction must not depend on the
    other texts of its request)."""
    texts = test["text"].tolist()[:SCORED_TEXTS]
    truth = test["category"].astype(str).to_numpy()[:SCORED_TEXTS]
    ours_bodies, theirs_bodies = make_bodies(texts, 50)
    a = [p["label"] for b in ours_bodies for p in ours.post(b)["predictions"]]
    b = [p for body in theirs_bodies for p in theirs.post(body)["predictions"]]
    one_ours, one_theirs = make_bodies(texts[:20], 1)
    single_a = [ours.post(x)["predictions"][0]["label"] for x in one_ours]
    single_b = [theirs.post(x)["predictions"][0] for x in one_theirs]
    a, b = np.asarray(a, dtype=object).astype(str), np.asarray(b, dtype=object).astype(str)
    return {
        "shipml_accuracy": float(np.mean(a == truth)),
        "mlflow_accuracy": float(np.mean(b == truth)),
        "agreement": float(np.mean(a == b)),
        "single_equals_batched": [single_a == list(a[:20]), single_b == list(b[:20])],
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per cell")
    parser.add_argument("--workers", type=_ints, default=[1], help="server workers, e.g. 1,2")
    parser.add_argument("--concurrency", type=_ints, default=[1, 8], help="connections, e.g. 1,8")
    parser.add_argument("--rows", type=_ints, default=[1, 32], help="texts per request, e.g. 1,32")
    parser.add_argument("--timeout", type=float, default=30.0, help="wrk request timeout (s)")
    parser.add_argument("--budget", type=float, default=150.0, help="shipml time_budget (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV)
    parser.add_argument("--out", type=Path, default=WORK_DIR / "serving_text.json")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python benchmarks/serving_text.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"# OMP_WAIT_POLICY=PASSIVE {command.strip()}\n")

    wrk, wrk_version = ensure_wrk()
    theirs_versions = ensure_text_venv(args.mlflow_venv)
    work = WORK_DIR / "serving_text"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    train, test = load_banking77()
    registry = work / "registry"
    model, train_s = train_shipml(train, args.budget, args.seed, registry)
    key = create_key(registry)
    model_dir, head_s = save_mlflow_model(args.mlflow_venv, train, args.seed, work)
    runtime = (model.info.get("text_runtime") or {}).get("runtime", "pytorch")
    ours_versions = {p: metadata.version(p) for p in ("shipml", *TEXT_PINS, "uvicorn")}
    print(
        f"shipml {ours_versions['shipml']} vs MLflow {theirs_versions['mlflow']}; {wrk_version}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print("shipml side: " + ", ".join(f"{k} {v}" for k, v in ours_versions.items()))
    print("MLflow side: " + ", ".join(f"{k} {v}" for k, v in theirs_versions.items()))
    print(
        f"shipml model: embed mode, {len(model.members)} member(s), encoder runtime {runtime}; "
        f"shipml.train {train_s:.0f} s (budget {args.budget:g} s). MLflow model: the same "
        f"encoder in PyTorch + LogisticRegression(C=10) fitted in {head_s:.0f} s on the same "
        "embeddings"
    )
    pool = test["text"].tolist()[:POOL_TEXTS]
    bodies = {r: make_bodies(pool, r) for r in args.rows}
    cells: list[dict] = []
    scored: dict = {}
    for workers in args.workers:
        ours = shipml_server(registry, key, workers, work, True, [])
        theirs = mlflow_server(args.mlflow_venv, model_dir, workers, work, True)
        with started([ours, theirs]) as servers:
            scored = score(ours, theirs, test)
            print(
                f"workers={workers}: test accuracy on {SCORED_TEXTS:,} texts through the "
                f"servers: shipml {scored['shipml_accuracy']:.4f}, MLflow "
                f"{scored['mlflow_accuracy']:.4f}; same label {scored['agreement']:.1%}; "
                f"one-by-one = batched: {scored['single_equals_batched']}",
                flush=True,
            )
            cells += run_cells(wrk, servers, bodies, workers, args, work, unit="texts")

    print()
    print_table(cells)
    print(
        "\n(rows/request = texts per request.) shipml: API key + rate limit checked, prediction "
        "log and JSON access log on, a label + 77 class probabilities + an id per text; MLflow: "
        "no auth, no prediction log, a bare label per text (favours MLflow)."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "cells": cells,
                "scored": scored,
                "runtime": runtime,
                "train_seconds": train_s,
                "versions": {"shipml_side": ours_versions, "mlflow_side": theirs_versions},
            },
            indent=2,
        )
    )
    print(f"\nraw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
