"""`shipml --help` start-up and single-row predict latency of two source trees, in one run.

The project's rule: a time is a ratio against a peer measured in the same run. Here the peer is
another source tree of shipml (e.g. main before a change and after it), each imported through
PYTHONPATH in its own subprocesses, with the same interpreter and packages:

1. `shipml --help` wall time: median of N subprocesses per tree, the two trees interleaved;
   plus the heavy modules (lightgbm, sklearn, torch, ...) the help loads (must be none).
2. Model.predict on one row of German credit (a one-row DataFrame, as a caller holding a row
   has): each tree trains its own model with the same seed and trial count in a long-lived
   worker, warms up, then the two workers take turns measuring in rounds (alternating which goes
   first), so a noisy second hurts both; median and p95 over all calls. With the same seed and
   trials the two models should be the same: the largest probability difference on the test
   rows is printed with them.

Usage (from the repository root)::

    git -C /work/main worktree add --detach /work/wt/before14 main     # the "before" tree
    .venv/bin/python benchmarks/latency.py --before /work/wt/before14/src --after src
    .venv/bin/python benchmarks/latency.py --before ../before/src --after src --after-families=-mlp

Raw results go to benchmarks/.work/latency.json (git-ignored).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before lightgbm is imported

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK_DIR = REPO / "benchmarks" / ".work"
HEAVY = ("lightgbm", "sklearn", "matplotlib", "torch", "optuna", "pandas", "transformers")
TARGET = "credit_risk"


# --------------------------------------------------------------------------------------------
# Worker: one tree's model, measured on request


def _send(channel, message: dict) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _train(args: argparse.Namespace):
    """(model, test rows, seconds): German credit trained by the shipml on PYTHONPATH."""
    import warnings

    sys.path.insert(0, str(HERE))
    from tabular import datasets_dir, load_german_credit

    import shipml

    source = Path(shipml.__file__).resolve()
    if not source.is_relative_to(Path(args.tree).resolve()):
        raise RuntimeError(f"imported shipml from {source}, not from {args.tree}")
    ds = load_german_credit(datasets_dir(), args.seed)
    kwargs = {"families": args.families} if args.families else {}
    with tempfile.TemporaryDirectory(prefix="latency-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model = shipml.train(
            ds.train,
            target=TARGET,
            time_budget=args.budget,
            n_trials=args.n_trials,
            seed=args.seed,
            name=None,
            registry_uri=tmp,
            progress=False,
            **kwargs,
        )
        seconds = time.perf_counter() - start
    return model, ds.test.drop(columns=[TARGET]), seconds


def worker(args: argparse.Namespace) -> int:
    channel = os.fdopen(os.dup(1), "w")  # the protocol's own copy of stdout
    os.dup2(2, 1)  # anything a library prints goes to the log, not into the protocol
    try:
        model, test, train_s = _train(args)
    except Exception as exc:  # reported to the parent, which prints it
        _send(channel, {"error": " ".join(f"{type(exc).__name__}: {exc}".split())})
        return 1
    rows = [test.iloc[[i]] for i in range(len(test))]
    for i in range(args.warmup):
        model.predict(rows[i % len(rows)])
    import shipml

    _send(
        channel,
        {
            "ready": True,
            "train_s": train_s,
            "source": str(Path(shipml.__file__).parent),
            "members": [f"{m.name} {m.weight:.2f}" for m in model.members],
            "proba": model.predict_proba(test).to_numpy().tolist(),
        },
    )
    offset = 0
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") != "measure":
            break
        times = []
        for _ in range(command["calls"]):
            row = rows[offset % len(rows)]
            offset += 1
            start = time.perf_counter()
            model.predict(row)
            times.append(time.perf_counter() - start)
        _send(channel, {"times": times})
    return 0


# --------------------------------------------------------------------------------------------
# Parent


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(tree))
    env.setdefault("SHIPML_DATASETS", str(_datasets()))
    return env


def _datasets() -> Path:
    sys.path.insert(0, str(HERE))
    from tabular import datasets_dir

    return datasets_dir()


def _git(tree: Path) -> str:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", "-C", str(tree), *cmd], capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "?"
    return commit + (" + uncommitted changes" if git("status", "--porcelain", "--", ".") else "")


def _help_command(python: str) -> list[str]:
    script = Path(python).parent / "shipml"
    return [str(script), "--help"] if script.exists() else [python, "-m", "shipml", "--help"]


def _run(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, done


def _heavy_after_help(python: str, env: dict) -> str:
    code = (
        "import sys\nsys.argv = ['shipml', '--help']\nfrom shipml.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('\\nHEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    _, done = _run([python, "-c", code], env)
    marked = [line for line in done.stdout.splitlines() if line.startswith("HEAVY:")]
    if done.returncode != 0 or not marked:
        return "error: " + (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return marked[-1].removeprefix("HEAVY:") or "none"


def bench_help(trees: dict[str, Path], python: str, runs: int) -> dict:
    cmd = _help_command(python)
    envs = {label: _env(tree) for label, tree in trees.items()}
    times: dict[str, list[float]] = {label: [] for label in trees}
    errors: dict[str, str] = {}
    for label in trees:
        _, done = _run(cmd, envs[label])  # warm the file cache; fail early
        if done.returncode != 0:
            errors[label] = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    for i in range(runs):  # interleaved, alternating which tree goes first
        for label in list(trees)[:: 1 if i % 2 == 0 else -1]:
            if label not in errors:
                times[label].append(_run(cmd, envs[label])[0])
    heavy = {label: _heavy_after_help(python, envs[label]) for label in trees}
    return {"command": cmd, "runs_s": times, "errors": errors, "heavy": heavy}


class Worker:
    """A long-lived subprocess holding one tree's trained model."""

    def __init__(self, label: str, tree: Path, args: argparse.Namespace, families: str | None):
        log_dir = args.out.parent / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(log_dir / f"latency-{label}.log", "w")  # noqa: SIM115 (closed in close)
        cmd = [args.python, str(Path(__file__).resolve()), "--worker", "--tree", str(tree)]
        cmd += ["--budget", repr(args.budget), "--n-trials", str(args.n_trials)]
        cmd += ["--seed", str(args.seed), "--warmup", str(args.warmup)]
        if families:
            cmd.append(f"--families={families}")  # "-mlp" is a value, not an option
        self.proc = subprocess.Popen(
            cmd, env=_env(tree), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True,
        )  # fmt: skip
        self.label = label

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(
                f"{self.label} worker exited {self.proc.returncode} (see {self.log.name})"
            )  # noqa: E501
        return json.loads(line)

    def measure(self, calls: int) -> list[float]:
        self.proc.stdin.write(json.dumps({"op": "measure", "calls": calls}) + "\n")
        self.proc.stdin.flush()
        return self.receive()["times"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        self.log.close()


def bench_predict(trees: dict[str, Path], args: argparse.Namespace) -> dict:
    families = {"before": args.before_families, "after": args.after_families}
    workers, ready = {}, {}
    try:
        for label, tree in trees.items():  # one at a time: training is not measured, but alone
            workers[label] = Worker(label, tree, args, families[label])
            ready[label] = workers[label].receive()
            if "error" in ready[label]:
                raise RuntimeError(f"{label}: {ready[label]['error']}")
        times: dict[str, list[float]] = {label: [] for label in trees}
        per_round = max(1, args.calls // args.rounds)
        for i in range(args.rounds):
            for label in list(trees)[:: 1 if i % 2 == 0 else -1]:
                times[label] += workers[label].measure(per_round)
    finally:
        for w in workers.values():
            w.close()
    a, b = ready["before"]["proba"], ready["after"]["proba"]
    diff = max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))
    return {
        "times_s": times,
        "max_proba_diff": diff,
        **{f"{label}_{k}": ready[label][k] for label in trees for k in ("train_s", "members")},
    }


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[94] if len(values) > 1 else values[0]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def table(help_result: dict | None, predict: dict | None, args) -> str:
    lines = ["| measure | before | after | after ÷ before |", "|---|---|---|---|"]

    def row(title: str, before: float, after: float) -> None:
        lines.append(f"| {title} | {_ms(before)} | {_ms(after)} | {after / before:.2f}x |")

    if help_result:
        runs = help_result["runs_s"]
        if runs["before"] and runs["after"]:
            n = len(runs["after"])
            row(
                f"`shipml --help`, median of {n}",
                statistics.median(runs["before"]),
                statistics.median(runs["after"]),
            )
        for label, error in help_result["errors"].items():
            lines.append(f"| `shipml --help` ({label}) | error: {error} | | |")
    if predict:
        t = predict["times_s"]
        n = len(t["after"])
        row(
            f"Model.predict, 1 row, median of {n}",
            statistics.median(t["before"]),
            statistics.median(t["after"]),
        )
        row(f"Model.predict, 1 row, p95 of {n}", _p95(t["before"]), _p95(t["after"]))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="source tree before (its src/ folder)")
    parser.add_argument("--after", type=Path, default=REPO / "src", help="default: this src/")
    parser.add_argument("--python", default=sys.executable, help="interpreter for both trees")
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300, help="single-row predictions per tree")
    parser.add_argument("--rounds", type=int, default=6, help="turns the calls are split into")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--budget", type=float, default=60.0, help="train time_budget (s)")
    parser.add_argument("--n-trials", type=int, default=8, help="train n_trials (same models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before-families", default=None, help="train(families=...) before")
    parser.add_argument("--after-families", default=None, help='e.g. "-mlp": the MLP off')
    parser.add_argument("--skip-help", action="store_true")
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--out", type=Path, default=WORK_DIR / "latency.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--families", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.worker:
        if args.before is None:
            parser.error("--before is required (the src/ folder of the tree to compare against)")
        for name in ("before", "after"):
            tree = getattr(args, name).resolve()
            if not (tree / "shipml" / "__init__.py").exists():
                parser.error(f"--{name} {tree}: no shipml package in it (give its src/ folder)")
            setattr(args, name, tree)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    trees = {"before": args.before, "after": args.after}
    print("# python benchmarks/latency.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    for label, tree in trees.items():
        print(f"{label}: {tree} ({_git(tree)})")
    print(f"python: {args.python} | {os.cpu_count()} CPUs", flush=True)
    help_result = None if args.skip_help else bench_help(trees, args.python, args.help_runs)
    predict = None if args.skip_predict else bench_predict(trees, args)
    print()
    print(table(help_result, predict, args))
    print()
    if help_result:
        heavy = ", ".join(f"{k} {v}" for k, v in help_result["heavy"].items())
        print(f"heavy modules loaded by `shipml --help`: {heavy} (must be none)")
    if predict:
        for label in trees:
            print(
                f"{label} model: trained in {predict[f'{label}_train_s']:.1f} s "
                f"(n_trials={args.n_trials}, seed {args.seed}); "
                f"members: {', '.join(predict[f'{label}_members'])}"
            )
        same = predict["max_proba_diff"] < 1e-9
        print(
            f"predictions of the two models on the 200 test rows: "
            f"{'the same' if same else 'different'} "
            f"(largest probability difference {predict['max_proba_diff']:.2e})"
        )
        if not same:
            print(
                "  the predict rows compare different ensembles: if the members differ, the "
                "budget ended a search before its n_trials (raise --budget), or the trees "
                "train different models"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"trees": {k: str(v) for k, v in trees.items()}, "help": help_result}
    payload["predict"] = predict
    args.out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
