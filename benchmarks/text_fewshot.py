"""Few-shot heads study: what to learn from 8 labelled texts per class, averaged over samples.

On the same 8-per-class rows (benchmarks/text.py `few_rows`, one sample per seed) and the same
test texts, with the packaged all-MiniLM-L6-v2:

- ``frozen``: frozen sentence embeddings + scikit-learn LogisticRegression (defaults);
- ``names-K``: the same, plus each class name ("card arrival", "negative") as a training row
  with weight K (what shipml's few-shot head does, K=3);
- ``centroid[-K]``: nearest class mean by cosine (class name added with weight K);
- ``zeroshot``: cosine to the class names only, no training rows;
- ``setfit_LR_N``: SetFit's recipe — N iterations of one positive and one negative pair per
  text, cosine-similarity MSE loss, batch 16, AdamW at learning rate LR with 10 % warmup and
  linear decay, one epoch — then the LogisticRegression head on the tuned embeddings;
- ``nsetfit_LR_N``: the same with the class names among the texts (pairs and head).

Every choice is made on the training rows; test labels only score. banking77's test split is
subsampled to 1,000 texts (seed 0) to save time. Results are appended to --out (JSON lines) as
they come, then summarized as a table.

Usage (from the repository root)::

    .venv/bin/python benchmarks/text_fewshot.py --datasets sst2,financial_phrasebank \\
        --systems frozen,names-3,setfit_2e-5_20
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import copy
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import WORK_DIR, _import_shipml, datasets_dir  # noqa: E402
from text import LOADERS, few_rows  # noqa: E402

SYSTEMS = ("frozen", "names-3", "zeroshot", "setfit_2e-5_20", "nsetfit_2e-5_20")


class Study:
    """The frozen encoder, its tokenizer, and what every system needs from them."""

    def __init__(self, max_steps: int) -> None:
        import torch

        from shipml.encoders import load_encoder

        self.torch = torch
        self.base = load_encoder(cache=False)
        self.pad = int(self.base.settings.get("pad_id", 0))
        self.max_steps = max_steps  # of contrastive tuning (SetFit would run them all)

    def tensors(self, texts: list[str]):
        from shipml.encoders.sentence import padded

        encodings = self.base.tokenizer.encode_batch([t or " " for t in texts])
        ids, mask = padded([e.ids for e in encodings], self.pad)
        return self.torch.from_numpy(ids), self.torch.from_numpy(mask)

    def vectors(self, module, ids, mask):
        return module(ids, mask)  # the encoder's module: pooled, normalized vectors

    def embed(self, module, texts: list[str], size: int = 128) -> np.ndarray:
        module.eval()
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.base.dim), dtype=np.float32)
        with self.torch.inference_mode():
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                batch = self.vectors(module, *self.tensors([texts[i] for i in rows]))
                out[rows] = batch.numpy()
        return out

    def setfit(self, texts: list[str], y: np.ndarray, lr: float, iterations: int, seed: int):
        """SetFit's pair recipe; returns (tuned module, steps)."""
        torch = self.torch
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        index = np.arange(len(y))
        pairs = []
        for _ in range(iterations):
            for i in index:
                pairs.append((i, rng.choice(index[y == y[i]]), 1.0))
                pairs.append((i, rng.choice(index[y != y[i]]), 0.0))
        pairs = [pairs[k] for k in rng.permutation(len(pairs))]
        module = copy.deepcopy(self.base.module)
        module.train()
        steps = min(self.max_steps, int(np.ceil(len(pairs) / 16)))
        warmup = max(1, int(0.1 * steps))
        optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda k: (
                (k + 1) / warmup if k < warmup else max(0.0, (steps - k) / (steps - warmup + 1))
            ),
        )
        for step in range(steps):
            batch = pairs[16 * step : 16 * (step + 1)]
            ids, mask = self.tensors(
                [texts[i] for i, _, _ in batch] + [texts[j] for _, j, _ in batch]
            )
            v = self.vectors(module, ids, mask)
            cosine = (v[: len(batch)] * v[len(batch) :]).sum(dim=1)
            target = torch.tensor([label for _, _, label in batch])
            loss = torch.nn.functional.mse_loss(cosine, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        return module, steps


def head(X, y, weight=None):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(X, y, sample_weight=weight)


def run_dataset(study: Study, ds, systems: list[str], seeds: list[int], record) -> None:
    test = ds.test.sample(1000, random_state=0) if ds.name == "banking77" else ds.test
    test_texts = test[ds.text].astype(str).tolist()
    classes = np.asarray(sorted(ds.train[ds.target].unique()))
    names = [str(c).replace("_", " ") for c in classes]
    X_test = study.embed(study.base.module, test_texts)
    X_names = study.embed(study.base.module, names)
    for seed in seeds:
        rows = few_rows(ds, seed)
        texts, y = rows[ds.text].astype(str).tolist(), rows[ds.target].to_numpy()
        X = study.embed(study.base.module, texts)
        for system in systems:
            t0 = time.perf_counter()
            kind, _, rest = system.partition("-")
            if system == "frozen":
                pred = head(X, y).predict(X_test)
            elif system == "zeroshot":
                pred = classes[(X_test @ X_names.T).argmax(axis=1)]
            elif kind == "names":
                k = float(rest)
                weight = np.r_[np.ones(len(y)), np.full(len(classes), k)]
                pred = head(np.vstack([X, X_names]), np.r_[y, classes], weight).predict(X_test)
            elif kind == "centroid":
                k = float(rest or 0)
                means = np.stack(
                    [X[y == c].sum(axis=0) + k * X_names[i] for i, c in enumerate(classes)]
                )
                means /= np.linalg.norm(means, axis=1, keepdims=True)
                pred = classes[(X_test @ means.T).argmax(axis=1)]
            elif system.startswith(("setfit_", "nsetfit_")):
                _, lr, iterations = system.split("_")
                with_names = system.startswith("n")
                tune_texts = texts + names if with_names else texts
                tune_y = np.r_[y, classes] if with_names else y
                module, _ = study.setfit(tune_texts, tune_y, float(lr), int(iterations), seed)
                weight = np.r_[np.ones(len(y)), np.full(len(classes), 3.0)] if with_names else None
                fitted = head(study.embed(module, tune_texts), tune_y, weight)
                pred = fitted.predict(study.embed(module, test_texts))
            else:
                raise SystemExit(f"unknown system {system!r}")
            record(
                ds.name, system, seed, test[ds.target].to_numpy(), pred, time.perf_counter() - t0
            )


def summary(path: Path) -> str:
    results = defaultdict(list)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        results[(r["dataset"], r["system"])].append(r)
    lines = [
        "| dataset | system | accuracy (mean ± sd) | macro F1 (mean) | seeds | seconds per seed |",
        "|---|---|---|---|---|---|",
    ]
    for (name, system), rs in results.items():
        acc = np.array([r["accuracy"] for r in rs])
        f1 = np.mean([r["macro_f1"] for r in rs])
        sec = np.mean([r["seconds"] for r in rs])
        seeds = ", ".join(f"{a:.3f}" for a in acc)
        lines.append(f"| {name} | {system} | {acc.mean():.4f} ± {acc.std():.4f} | {f1:.4f} | "
                     f"{seeds} | {sec:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="sst2,financial_phrasebank,banking77")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-steps", type=int, default=400, help="cap on SetFit's steps")
    parser.add_argument("--out", type=Path, default=WORK_DIR / "text_fewshot.jsonl")
    args = parser.parse_args(argv)
    _import_shipml()
    from sklearn.metrics import accuracy_score, f1_score

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("")
    print(f"# python benchmarks/text_fewshot.py {' '.join(sys.argv[1:] if argv is None else argv)}")

    def record(name, system, seed, truth, pred, seconds):
        r = {"dataset": name, "system": system, "seed": seed, "seconds": round(seconds, 1),
             "accuracy": float(accuracy_score(truth, pred)),
             "macro_f1": float(f1_score(truth, pred, average="macro"))}  # fmt: skip
        with args.out.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print(f"  {name} {system} seed {seed}: {r['accuracy']:.4f}", flush=True)

    study = Study(args.max_steps)
    seeds = [int(s) for s in args.seeds.split(",")]
    systems = [s for s in args.systems.split(",") if s]
    for name in [d for d in args.datasets.split(",") if d]:
        ds = LOADERS[name](datasets_dir(), 0)
        run_dataset(study, ds, systems, seeds, record)
    print(summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
