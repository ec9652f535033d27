"""CLI start-up and prediction speed of shipml, each next to a peer measured in the same run.

1. `shipml --help` wall time (median of 5 subprocesses) against `python -c "import typer"` (the
   floor of our CLI framework) and `python -c "import lightgbm, sklearn"` (what the CLI must not
   import), plus the heavy modules that `import shipml.cli` and `shipml --help` load (must be none).
2. predict_proba throughput on 10,000 adult test rows (best of 5) and single-row latency (median
   of 200 calls) of a shipml model (time_budget=20) against a default `lightgbm.LGBMClassifier`.

Usage (from the repository root)::

    .venv/bin/python benchmarks/cli_and_predict.py
    .venv/bin/python benchmarks/cli_and_predict.py --skip-predict      # CLI part only
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before lightgbm is imported

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import (  # noqa: E402  (sibling benchmark script; needs the path above)
    WORK_DIR,
    _as_category,
    _import_shipml,
    datasets_dir,
    load_adult,
)

HEAVY = ("lightgbm", "sklearn", "matplotlib", "torch", "optuna", "pandas")
# Not forbidden, but worth knowing about when `shipml --help` is slow.
NOTABLE = ("numpy", "scipy", "sqlalchemy", "alembic", "pydantic", "pydantic_settings", "rich")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Works from a source tree too (make bench installs the package; this is the fallback).
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _shipml_command() -> list[str]:
    script = Path(sys.executable).parent / "shipml"
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "shipml", "--help"]


def _run(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    return time.perf_counter() - start, done


def _loaded(code: str) -> tuple[list[str], list[str]] | str:
    """(heavy, notable) modules present in sys.modules after running code, or an error text."""
    probe = (
        "import sys, json\n"
        f"{code}\n"
        f"print('\\n' + json.dumps([m for m in {HEAVY!r} if m in sys.modules], ), "
        f"json.dumps([m for m in {NOTABLE!r} if m in sys.modules]))\n"
    )
    _, done = _run([sys.executable, "-c", probe])
    if done.returncode != 0:
        return f"exit {done.returncode}: " + (done.stderr.strip().splitlines() or [""])[-1]
    heavy, notable = done.stdout.strip().splitlines()[-1].split(" ", 1)
    return json.loads(heavy), json.loads(notable)


def _slowest_imports(code: str, top: int = 8) -> list[tuple[float, str]]:
    """Largest cumulative import times (ms) while running code, from python -X importtime."""
    _, done = _run([sys.executable, "-X", "importtime", "-c", code])
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        try:
            _self_us, cumulative_us, name = line[len("import time:") :].split("|")
            depth = len(name) - len(name.lstrip())
            if depth <= 3:  # imported by -c itself or one level below: nested ones are included
                rows.append((int(cumulative_us) / 1000, name.strip()))
        except ValueError:
            continue
    return sorted(rows, reverse=True)[:top]


def bench_help(repeats: int) -> dict:
    commands = {
        "shipml --help": _shipml_command(),
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        'python -c "import lightgbm, sklearn"': [sys.executable, "-c", "import lightgbm, sklearn"],
        'python -c "pass"': [sys.executable, "-c", "pass"],
    }
    # shipml --help may not exist yet, or may fail: say so and time the rest anyway.
    _, first = _run(commands["shipml --help"])
    help_error = None
    if first.returncode != 0:
        help_error = (first.stderr.strip().splitlines() or [f"exit {first.returncode}"])[-1]
        alt = [sys.executable, "-m", "shipml", "--help"]
        if commands["shipml --help"] != alt:
            _, second = _run(alt)
            if second.returncode == 0:
                commands["shipml --help"], help_error = alt, None
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeats):  # interleaved, so a noisy second hurts every command alike
        for label, cmd in commands.items():
            if label == "shipml --help" and help_error:
                continue
            times[label].append(_run(cmd)[0])

    medians = {label: statistics.median(t) for label, t in times.items() if t}
    ours = medians.get("shipml --help")
    print(f"## `shipml --help` start-up (median of {repeats}, subprocesses, same run)\n")
    print(f"shipml command: {' '.join(commands['shipml --help'])}")
    if help_error:
        print(f"shipml --help failed: {help_error}")
    print()
    print("| command | median | shipml --help ÷ this |")
    print("|---|---|---|")
    for label in commands:
        if label not in medians:
            print(f"| {label} | error | — |")
            continue
        ratio = f"{ours / medians[label]:.2f}x" if ours else "—"
        print(f"| {label} | {medians[label] * 1000:.0f} ms | {ratio} |")

    print()
    help_code = (
        "import sys\n"
        "sys.argv = ['shipml', '--help']\n"
        "from shipml.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    loaded = {
        "import shipml.cli": _loaded("import shipml.cli"),
        "shipml --help (in-process)": _loaded(help_code),
    }
    for label, result in loaded.items():
        if isinstance(result, str):
            print(f"heavy modules after {label}: error: {result}")
            continue
        heavy, notable = result
        verdict = "none (ok)" if not heavy else ", ".join(heavy) + "  <-- must be none"
        print(f"heavy modules after {label}: {verdict}")
        if notable:
            print(f"  also loaded: {', '.join(notable)}")
    slow = _slowest_imports(help_code)
    if slow:
        print("slowest imports during shipml --help (cumulative ms): ", end="")
        print(", ".join(f"{name} {ms:.0f}" for ms, name in slow))
    return {
        "medians_s": medians,
        "runs_s": times,
        "help_error": help_error,
        "loaded": {
            k: v if isinstance(v, str) else {"heavy": v[0], "notable": v[1]}
            for k, v in loaded.items()
        },
    }


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _latency(fn, frames) -> float:
    """Median seconds of fn(frame) over the pre-sliced 1-row frames."""
    samples = []
    for frame in frames:
        start = time.perf_counter()
        fn(frame)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_predict(budget: float, n_rows: int, repeats: int, calls: int, seed: int) -> dict:
    import lightgbm
    from sklearn.metrics import roc_auc_score

    ds = load_adult(datasets_dir(), seed)
    target = ds.target
    raw_train = ds.train.drop(columns=[target])
    rows = ds.test.drop(columns=[target]).iloc[:n_rows].reset_index(drop=True)
    truth = (ds.test[target].iloc[:n_rows] == ">50K").to_numpy()
    singles_raw = [rows.iloc[[i]] for i in range(calls)]

    systems: dict[str, dict] = {}

    # Peer: default LightGBM on pandas category columns.
    cat_train, cat_rows = _as_category(raw_train, rows)
    dtypes = {
        c: cat_train[c].dtype for c in cat_train.columns if str(cat_train[c].dtype) == "category"
    }
    model = lightgbm.LGBMClassifier(verbose=-1, random_state=seed).fit(cat_train, ds.train[target])
    pos = list(model.classes_).index(">50K")
    singles_cat = [cat_rows.iloc[[i]] for i in range(calls)]

    def lgbm_raw(frame):  # what a user holding raw rows must do before LightGBM can predict
        return model.predict_proba(frame.astype(dtypes))

    model.predict_proba(cat_rows)  # warm-up
    systems["LightGBM default"] = {
        "batch_s": _best_of(lambda: model.predict_proba(cat_rows), repeats),
        "single_s": _latency(model.predict_proba, singles_cat),
        "auc": roc_auc_score(truth, model.predict_proba(cat_rows)[:, pos]),
    }
    lgbm_raw(rows)
    systems["LightGBM + astype(category)"] = {
        "batch_s": _best_of(lambda: lgbm_raw(rows), repeats),
        "single_s": _latency(lgbm_raw, singles_raw),
        "auc": systems["LightGBM default"]["auc"],
    }

    shipml_error = None
    try:
        shipml = _import_shipml()
        with tempfile.TemporaryDirectory(prefix="shipml-bench-") as tmp:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = shipml.train(
                    ds.train,
                    target=target,
                    time_budget=budget,
                    name="bench-predict",
                    seed=seed,
                    registry_uri=str(tmp),
                    progress=False,
                )
            train_s = time.perf_counter() - start
            proba = ours.predict_proba(rows)  # warm-up (and the AUC check)
            systems["shipml"] = {
                "batch_s": _best_of(lambda: ours.predict_proba(rows), repeats),
                "single_s": _latency(ours.predict_proba, singles_raw),
                "auc": roc_auc_score(truth, proba[">50K"].to_numpy()),
                "train_s": train_s,
            }
    except Exception as exc:  # report and keep the peer numbers
        shipml_error = " ".join(f"{type(exc).__name__}: {exc}".split())

    base = systems["LightGBM default"]
    print(
        f"\n## predict_proba speed, adult, {n_rows:,} rows (best of {repeats}) and 1 row "
        f"(median of {calls} calls)\n"
    )
    if shipml_error:
        print(f"shipml: error: {shipml_error}\n")
    elif "shipml" in systems:
        train_s = systems["shipml"]["train_s"]
        print(f"shipml trained with time_budget={budget:g} in {train_s:.1f} s\n")
    print(
        f"| system | {n_rows:,} rows | rows/s | ÷ LightGBM | 1 row | ÷ LightGBM | AUC (same rows) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in ("shipml", "LightGBM default", "LightGBM + astype(category)"):
        if label not in systems:
            print(f"| {label} | error | | | | | |")
            continue
        s = systems[label]
        print(
            f"| {label} | {s['batch_s'] * 1000:.0f} ms | {n_rows / s['batch_s']:,.0f} | "
            f"{s['batch_s'] / base['batch_s']:.2f}x | {s['single_s'] * 1000:.2f} ms | "
            f"{s['single_s'] / base['single_s']:.2f}x | {s['auc']:.4f} |"
        )
    print(
        "\n(÷ LightGBM: time of this system / time of default LightGBM on prepared category "
        "columns; lower is faster)"
    )
    return {"systems": systems, "shipml_error": shipml_error, "rows": n_rows, "calls": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="help runs / batch predictions")
    parser.add_argument("--calls", type=int, default=200, help="single-row predictions")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=20.0, help="shipml time_budget (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-help", action="store_true")
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--out", type=Path, default=WORK_DIR / "cli_and_predict.json")
    args = parser.parse_args(argv)

    results: dict = {}
    if not args.skip_help:
        results["help"] = bench_help(args.repeats)
    if not args.skip_predict:
        results["predict"] = bench_predict(
            args.budget, args.rows, args.repeats, args.calls, args.seed
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float))
    print(f"\nraw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
