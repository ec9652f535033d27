"""CIFAR-10 (../shared, research use: never copied into the repository): shipml's image modes
(`--modes embed,scratch,auto`) against pixels + logistic regression and pixels + LightGBM, in one
run, on the same images.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/images.py --train 2000 --test 1000 \
        --time-budget 300 --modes embed,scratch

`--train`/`--test`: images per split, sampled evenly over the classes (the full set is
50,000 / 10,000). Prints one table: test accuracy, macro F1, train wall time, predict images/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ZIP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10" / "cifar10_jpg.zip"


def _extract(split: str, per_class: int, root: Path) -> Path:
    """`per_class` images of every class of `split`, as a folder per label under `root`."""
    with zipfile.ZipFile(ZIP) as z:
        names = [n for n in z.namelist() if n.startswith(f"{split}/") and n.endswith(".jpg")]
        by_class: dict[str, list[str]] = {}
        for n in sorted(names):
            by_class.setdefault(n.split("/")[1], []).append(n)
        for label, members in by_class.items():
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for n in members[:per_class]:
                (root / split / label / Path(n).name).write_bytes(z.read(n))
    return root / split


def _pixels(folder: Path):
    from PIL import Image

    files = sorted(folder.rglob("*.jpg"))
    X = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32).ravel() / 255
                  for f in files])  # fmt: skip
    return X, np.array([f.parent.name for f in files])


def _scores(y, pred) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return accuracy_score(y, pred), f1_score(y, pred, average="macro")


def _shipml(train: Path, test: Path, budget: float, mode: str):
    import shipml

    t0 = time.perf_counter()
    model = shipml.train(train, time_budget=budget, report=False, mode=mode)
    fit = time.perf_counter() - t0
    frame = model.input_frame(test)
    t0 = time.perf_counter()
    pred = model.predict(frame)
    speed = len(frame) / (time.perf_counter() - t0)
    notes = [n for n in model.info["notes"] if n.startswith("images:")]
    members = ", ".join(f"{m.name} {m.weight:.2f}" for m in model.members)
    return _scores(frame["label"], pred), fit, speed, "; ".join([members, *notes])


def _peer(name: str, train: Path, test: Path):
    Xtr, ytr = _pixels(train)
    Xte, yte = _pixels(test)
    if name == "pixels + logistic regression":
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression(max_iter=300, C=0.01)
    else:
        import lightgbm

        est = lightgbm.LGBMClassifier(n_estimators=200, verbose=-1, num_threads=2)
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = est.predict(Xte)
    return _scores(yte, pred), fit, len(yte) / (time.perf_counter() - t0), ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument(
        "--time-budget",
        default="300",
        help="seconds; one for all modes, or one per mode (comma-separated)",
    )
    parser.add_argument("--modes", default="embed", help="shipml modes, comma-separated")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peers", default="lr,lightgbm", help="lr, lightgbm (comma-separated)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    budgets = [float(b) for b in args.time_budget.split(",")]
    budgets = budgets * len(modes) if len(budgets) == 1 else budgets
    with tempfile.TemporaryDirectory() as tmp:
        train = _extract("train", args.train // 10, Path(tmp))
        test = _extract("test", args.test // 10, Path(tmp))
        print(f"CIFAR-10, {args.train} train / {args.test} test images, "
              f"budgets {args.time_budget}s")  # fmt: skip
        print("| system | accuracy | macro F1 | train s | predict images/s | model |")
        print("|---|---|---|---|---|---|", flush=True)
        names = {"lr": "pixels + logistic regression", "lightgbm": "pixels + LightGBM"}
        peers = () if args.no_peers else [names[p] for p in args.peers.split(",") if p]
        for mode, budget in zip(modes, budgets, strict=True):
            _row(f"shipml --mode {mode} ({budget:g}s)", _shipml(train, test, budget, mode))
        for name in peers:
            _row(name, _peer(name, train, test))


def _row(name: str, result) -> None:
    """One line of the table, printed as soon as it is measured (a long peer cannot lose it)."""
    (acc, f1), fit, speed, what = result
    print(f"| {name} | {acc:.3f} | {f1:.3f} | {fit:.0f} | {speed:.0f} | {what} |", flush=True)


if __name__ == "__main__":
    main()
