"""Is the sequential Transformer (learners/sasrec.py) competitive on MovieLens-100k?

shipml's search (run_search, kind "recommend") with only the `popular` and `sasrec` families
under `--budget` seconds, on split_log's leave-last-out split (each user's last rating is the
test, the one before it the validation), full ranking over all 1,682 movies with the user's
earlier movies excluded. Printed per model: validation and test NDCG@10 and HR@10, train time.
Test scores come from two SASRec networks: the validation run's (trained on `train`, reading
each user's train + validation history) and the refit on train + validation for the epochs the
validation run found best (what training.py serves).

For scale: SASRec with cross-entropy reaches a full-ranking NDCG@10 of about 0.13-0.18 on
MovieLens-1M (Klenitskiy & Vasilev 2023; Petrov & Macdonald 2023); ML-100k has 1/10 of its
users and shorter histories.

    nice -n 19 python benchmarks/sasrec.py [--budget 120] [--refit-budget S] [--data DIR]

Measured 2026-12-02 on the shared 2-core machine (load 3-10, other jobs running):

    --budget 120: sasrec val NDCG@10 0.0700 / HR@10 0.135, test 0.0594 / 0.112 (refit on
      train+val: 0.0672 / 0.134); cut by the deadline after 2.7 epochs (89 s, 0.41 s a step);
      popular val 0.0338, test 0.0432; popular(recent) val 0.0358, test 0.0402
    --budget 600 --refit-budget 0: early-stopped, best after 7 epochs (221 s): val 0.0913 /
      0.182, test 0.0725 / 0.143

Measured 2026-12-04 (load 4-5), windows of at most 50 items instead of 200 (learners/sasrec.py's
DEFAULTS; the epochs: 151 steps of 0.043 s, about 6.5 s; they were 25-35 s above on a machine
at load 6-13, about 8 s at load 4-5 with windows of 200):

    --budget 120: sasrec val NDCG@10 0.1111 / HR@10 0.216, test 0.1004 / 0.188 (refit on
      train+val: 0.0981 / 0.182); best after 14 epochs, cut by the deadline at 94 s

The data is read from ../shared/datasets/movielens_100k (research use only: never copied into
the repository).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "src"))

from tabular import datasets_dir  # noqa: E402


def read_movielens(folder: Path):
    """u.data (user, item, rating, unix time; tab-separated) as Interactions: every rating is
    one event, in time order."""
    from shipml.recommend.log import read_log

    frame = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    frame["time"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    inter, _ = read_log(frame, user="user", item="item", time="time")
    return inter


def metrics(scores: np.ndarray, targets) -> dict:
    from shipml.recommend.metrics import ranking_metrics

    m = ranking_metrics(scores, targets, ks=(10,))
    return {"ndcg@10": m["ndcg@10"], "hr@10": m["hr@10"]}


def run(folder: Path, budget_s: float, refit_s: float, seed: int) -> list[dict]:
    from shipml.learners.base import Budget, RankFolds
    from shipml.learners.registry import family
    from shipml.recommend.protocol import split_log
    from shipml.search import run_search

    inter = read_movielens(folder)
    split = split_log(inter, "leave-last-out")
    folds = RankFolds(split.train, split.val, seed=seed, metric="ndcg@10")
    t0 = time.monotonic()
    result = run_search(split.train, None, metric="ndcg@10", budget=Budget.seconds(budget_s),
                        seed=seed, families="popular,sasrec", folds=folds,
                        kind="recommend")  # fmt: skip
    search_s = time.monotonic() - t0
    rows = []
    for cand in result.candidates:
        val = metrics(cand.fitted.scores(split.val.history), split.val)
        test = metrics(cand.fitted.scores(split.test.history), split.test)
        rows.append({"model": cand.name, "val": val, "test": test, "train_s": cand.seconds,
                     "params": cand.params, "complete": cand.complete})  # fmt: skip
        if cand.family == "sasrec" and refit_s > 0:
            t1 = time.monotonic()
            refit = family("sasrec", "recommend").refit(replace(cand), split.train_val, seed,
                                                        Budget.seconds(refit_s))  # fmt: skip
            seconds = time.monotonic() - t1
            test = metrics(refit.fitted.scores(split.test.history), split.test)
            rows.append({"model": f"{cand.name} (refit on train+val)", "val": None,
                         "test": test, "train_s": seconds, "params": {},
                         "complete": refit.fitted.refit})  # fmt: skip
    print(f"MovieLens-100k: {inter.n_users} users, {inter.n_items} items, {inter.n_events} "
          f"events; search {search_s:.1f}s of a {budget_s:.0f}s budget")  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'model':34} {'val NDCG@10':>11} {'val HR@10':>9} {'test NDCG@10':>12} " \
           f"{'test HR@10':>10} {'train s':>8}"  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        v = r["val"] or {"ndcg@10": float("nan"), "hr@10": float("nan")}
        lines.append(f"{r['model']:34} {v['ndcg@10']:11.4f} {v['hr@10']:9.4f} "
                     f"{r['test']['ndcg@10']:12.4f} {r['test']['hr@10']:10.4f} "
                     f"{r['train_s']:8.1f}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=120.0, help="search seconds")
    parser.add_argument(
        "--refit-budget",
        type=float,
        default=None,
        help="seconds for the refit on train + validation (default: --budget; 0: no refit)",
    )
    parser.add_argument("--data", type=Path, default=None, help="the movielens_100k folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("shipml.learners.sasrec").setLevel(logging.INFO)
    folder = args.data or datasets_dir() / "movielens_100k"
    refit_s = args.budget if args.refit_budget is None else args.refit_budget
    rows = run(folder, args.budget, refit_s, args.seed)
    print(table(rows))
    for r in rows:
        if r["params"].get("steps") is not None:
            p = r["params"]
            print(f"{r['model']}: {p['steps']} steps ({p['epochs']} epochs) best on validation, "
                  f"max_len {p['max_len']}, batch {p['batch_size']}, loss {p['loss']}, "
                  f"{'early-stopped' if r['complete'] else 'cut by the deadline'}")  # fmt: skip


if __name__ == "__main__":
    main()
