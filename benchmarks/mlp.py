"""Does the MLP family (TabM, learners/mlp.py) earn a place next to LightGBM?

For each of the six shared tabular datasets (the loaders and 80/20 splits of
benchmarks/tabular.py), shipml's own encoding (shipml.training.prepare) and shipml's own
validation plan (5-fold below 5,000 rows or with a rare class, else an 80/20 holdout):

- LightGBM defaults, one booster per fold early-stopped on it (the search's first trial),
- the MLP with its tuned defaults (mlp.CONFIGS[0]) on the same folds, under `--mlp-budget`,
- their average in raw-score space, and the blend weight w (MLP share, 0..1 by 0.1) that is
  best on validation, applied to test: what ensemble selection would do with the two.

Validation = out-of-fold rows of the plan; test = the held-out 20% (fold models averaged).
Metric: ROC AUC (binary), RMSE of log1p(price) for house_prices (lower is better).

    nice -n 10 python benchmarks/mlp.py [--datasets german_credit,adult] [--mlp-budget 240]

One JSON record per dataset goes to benchmarks/.work/mlp.jsonl (or --out) as it finishes; the
table is printed at the end (or from that file with --table-only).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "src"))

from tabular import LOADERS, datasets_dir  # noqa: E402

OUT = REPO / "benchmarks" / ".work" / "mlp.jsonl"
WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 1)


def encode(ds):
    """shipml's encoding of the training frame, and the test frame through the same encoder."""
    from shipml.training import prepare

    _, schema, encoder, data, _ = prepare(ds.train, ds.target)
    X_test = encoder.transform(schema.coerce(ds.test, strict=False))
    labels = schema.target_values(ds.test)
    if schema.task == "regression":
        y_test = labels.astype(np.float64)
    else:
        index = {c: i for i, c in enumerate(schema.classes)}
        y_test = np.array([index[v] for v in labels], dtype=np.int64)
    return data, X_test, y_test


def transform_for(data) -> str:
    """log1p for a positive right-skewed regression target: the search's own rule."""
    if data.task != "regression" or np.min(data.y) <= 0:
        return "none"
    y = data.y
    skew = float(np.mean(((y - y.mean()) / (y.std() + 1e-12)) ** 3))
    return "log" if skew > 0.75 else "none"


def metric(task: str, y: np.ndarray, raw: np.ndarray, transform: str) -> float:
    from sklearn.metrics import roc_auc_score

    if task == "binary":
        return float(roc_auc_score(y, raw))
    if task == "multiclass":
        return float(np.mean(np.argmax(raw, axis=1) == y))
    pred_log = raw if transform == "log" else np.log1p(np.clip(raw, 0, None))
    return float(np.sqrt(np.mean((pred_log - np.log1p(y)) ** 2)))


def lightgbm_defaults(data, plan, seed: int, transform: str):
    """The search's first trial: LightGBM defaults per fold, early stopping (patience 50)."""
    from shipml.learners.base import Budget
    from shipml.learners.lightgbm import (
        LightGBMFitted,
        booster_raw,
        lgb_dataset,
        lgb_params,
        train_booster,
    )

    d = data.transformed(transform)
    oof = np.zeros((len(d.y), d.n_classes) if d.task == "multiclass" else len(d.y))
    pairs = []
    for tr, va in plan.folds:
        dtrain = lgb_dataset(d.take(tr), None)
        dvalid = lgb_dataset(d.take(va), None, reference=dtrain)
        params = lgb_params(d.task, d.n_classes, seed)
        booster, best = train_booster(params, dtrain, dvalid, Budget(np.inf))
        oof[va] = booster_raw(booster, d.X[va], num_iteration=best, threads=2)
        pairs.append((booster, best))
    zero = np.zeros(d.n_classes if d.task == "multiclass" else 1)
    return oof, LightGBMFitted.from_boosters(pairs, zero, d.task)


def run(name: str, seed: int, mlp_budget: float) -> dict:
    from shipml.data.split import plan_validation
    from shipml.learners import mlp
    from shipml.learners.base import Budget

    ds = LOADERS[name](datasets_dir(), seed)
    data, X_test, y_test = encode(ds)
    plan = plan_validation(data.y, data.task, seed=seed)
    transform = transform_for(data)
    rows = plan.scored_rows

    t0 = time.perf_counter()
    lgb_oof, lgb_fit = lightgbm_defaults(data, plan, seed, transform)
    lgb_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    params = {**mlp.CONFIGS[0], "target_transform": transform}
    mlp_oof, mlp_fit, complete = mlp.fit_on_folds(
        data, plan, params, seed, Budget.seconds(mlp_budget)
    )
    mlp_s = time.perf_counter() - t0
    lgb_test, mlp_test = lgb_fit.raw(X_test), mlp_fit.raw(X_test)

    def both(w: float) -> tuple[float, float]:
        val = metric(data.task, data.y[rows], (1 - w) * lgb_oof[rows] + w * mlp_oof[rows],
                     transform)  # fmt: skip
        test = metric(data.task, y_test, (1 - w) * lgb_test + w * mlp_test, transform)
        return val, test

    scores = {float(w): both(w) for w in WEIGHTS}
    sign = -1.0 if data.task == "regression" else 1.0
    w_best = max(scores, key=lambda w: (sign * scores[w][0], -abs(w - 0.5)))
    return {
        "dataset": name,
        "task": data.task,
        "rows": len(data.y),
        "plan": plan.description,
        "transform": transform,
        "lightgbm": scores[0.0],
        "mlp": scores[1.0],
        "average": scores[0.5],
        "blend_w": w_best,
        "blend": scores[w_best],
        "lgb_s": round(lgb_s, 1),
        "mlp_s": round(mlp_s, 1),
        "mlp_complete": complete,
        "mlp_folds": len(mlp_fit.folds),
        "mlp_budget": mlp_budget,
    }


def table(records: list[dict]) -> str:
    head = ("| dataset (metric) | plan | LightGBM val / test | MLP val / test | average val / "
            "test | blend w (val-picked) val / test | LGB s | MLP s |")  # fmt: skip
    lines = [head, "|" + "---|" * 8]
    for r in records:
        m = "RMSE log" if r["task"] == "regression" else "AUC"
        if r["task"] == "multiclass":
            m = "accuracy"
        cell = lambda pair: f"{pair[0]:.4f} / {pair[1]:.4f}"  # noqa: E731
        done = "" if r["mlp_complete"] else " (cut)"
        lines.append(
            f"| {r['dataset']} ({m}) | {r['plan'].split(' on ')[0].split(':')[0]} | "
            f"{cell(r['lightgbm'])} | {cell(r['mlp'])} | {cell(r['average'])} | "
            f"w={r['blend_w']:.1f}: {cell(r['blend'])} | {r['lgb_s']:.1f} | "
            f"{r['mlp_s']:.1f}{done} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(LOADERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mlp-budget", type=float, default=240.0,
                        help="seconds for the MLP on all folds of one dataset")  # fmt: skip
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON lines file of the records")
    args = parser.parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in names:
            record = run(name, args.seed, args.mlp_budget)
            with args.out.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
    records = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    latest = {r["dataset"]: r for r in records}  # the last run of each dataset
    print(table([latest[n] for n in names if n in latest]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
