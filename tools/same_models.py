"""Same seeds and trial counts, same models: train a fixed set of small cases and write what
came out (predictions, probabilities, candidates, ensemble, threshold) to JSON, so that two
versions of the code can be compared exactly.

    PYTHONPATH=/work/main/src python tools/same_models.py before.json
    PYTHONPATH=src python tools/same_models.py after.json
    python tools/same_models.py --compare before.json after.json

The budgets are generous (no deadline is reached: the trial counts decide) and every run gets a
fresh SHIPML_HOME, so no embedding cache is shared between runs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
AI4I_LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF", "UDI", "Product ID"]
BUDGET = 600.0


def _cases() -> dict:
    german = pd.read_csv(DATA / "german_credit.csv")
    bank = pd.read_csv(DATA / "bank_slice.csv", sep=";")
    ai4i = pd.read_csv(DATA / "ai4i_slice.csv", encoding="utf-8-sig")
    ai4i = ai4i.drop(columns=AI4I_LEAKS + ["Machine_failure"])
    banking = pd.read_csv(DATA / "banking77_slice.csv")
    banking_test = pd.read_csv(DATA / "banking77_test_slice.csv")
    return {
        "german_binary": (german, "credit_risk", {"n_trials": 6}, german),
        "bank_binary": (bank, "y", {"n_trials": 6}, bank.head(500)),
        "ai4i_regression": (ai4i, "Rotational speed [rpm]", {"n_trials": 6}, ai4i.head(500)),
        "banking77_tfidf": (banking, "category", {"n_trials": 3, "mode": "tfidf"}, banking_test),
        "banking77_embed": (banking, "category", {"n_trials": 3, "mode": "embed"}, banking_test),
    }


def _record(model, test: pd.DataFrame) -> dict:
    out = {
        "predictions": [
            str(v) if model.task != "regression" else float(v) for v in model.predict(test)
        ],  # fmt: skip
        "members": [(m.name, m.weight) for m in model.members],
        "transform": model.transform,
        "threshold": model.threshold,
        "candidates": [
            {k: c[k] for k in ("name", "score", "params")} for c in model.info["candidates"]
        ],
        "trials": [(t["name"], t["value"], t["state"]) for t in model.info["trials"]],
        "metrics": {k: v for k, v in model.metrics.items() if isinstance(v, (int, float))},
        "text_features": model.info.get("text_features"),
        "text_runtime": (model.info.get("text_runtime") or {}).get("runtime"),
    }
    if model.task != "regression":
        out["proba"] = model.predict_proba(test).to_numpy().tolist()
    return out


def run(path: str, only: list[str]) -> None:
    import shipml

    results = {}
    for name, (frame, target, options, test) in _cases().items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as home:
            os.environ["SHIPML_HOME"] = home
            model = shipml.train(frame, target=target, time_budget=BUDGET, seed=0,
                                 progress=False, report=False, **options)  # fmt: skip
            results[name] = _record(model, test)
        print(name, model.describe()["ensemble"], file=sys.stderr)
    Path(path).write_text(json.dumps(results, indent=1))


def _diff(a, b, where: str, out: list[str]) -> float:
    """Largest absolute difference between numbers; structural differences listed in `out`."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b))
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            out.append(f"{where}: keys {sorted(set(a) ^ set(b))}")
        return max([_diff(a[k], b[k], f"{where}.{k}", out) for k in a if k in b] or [0.0])
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} vs {len(b)} items")
        return max([_diff(x, y, f"{where}[{i}]", out) for i, (x, y) in enumerate(zip(a, b))]
                   or [0.0])  # fmt: skip
    if a != b:
        out.append(f"{where}: {a!r} vs {b!r}")
    return 0.0


def compare(before: str, after: str) -> int:
    a, b = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    worst = 0
    for case in sorted(set(a) | set(b)):
        if case not in a or case not in b:
            print(f"{case}: only in one file")
            worst = 1
            continue
        out: list[str] = []
        delta = _diff(a[case], b[case], case, out)
        status = "identical" if not out and delta == 0 else f"max |diff| {delta:.3g}"
        print(f"{case}: {status}" + "".join(f"\n  {line}" for line in out[:10]))
        worst = max(worst, int(bool(out) or delta > 1e-12))
    return worst


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    run(sys.argv[1], sys.argv[2:])
