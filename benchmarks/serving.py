"""Serving benchmark: `shipml serve` against `mlflow models serve`, the same LightGBM booster.

One run trains a shipml model on adult (official train split), keeps its best LightGBM member
alone (weight 1) and registers it, so `shipml serve` loads it the normal way; the very same
booster text is saved as an MLflow LightGBM model and served by `mlflow models serve
--env-manager local` from its own virtualenv (benchmarks/.venv-mlflow, created on first use).
Both servers must return the same probabilities for the same rows (max abs diff < 1e-6) before
any load is applied. Then wrk loads each server on 127.0.0.1 for a fixed time per cell, after a
warm-up, the cells of the two servers interleaved: requests/s, p50, p99, errors (non-2xx +
socket errors) and the server's RSS (whole process tree, after the cell).

Usage (from the repository root; `apt-get install -y wrk` first)::

    .venv/bin/python benchmarks/serving.py                  # about 14 min: 32 cells of 3 + 20 s
    .venv/bin/python benchmarks/serving.py --duration 10 --workers 1 --concurrency 1,32 --rows 1

Raw results go to benchmarks/.work/serving.json (git-ignored).
"""

from __future__ import annotations

import os

# Spinning OpenMP threads steal the 2 shared cores from whatever runs next; before lightgbm loads.
# Every process started here (servers, wrk, the MLflow venv) inherits it too.
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse
import contextlib
import json
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import WORK_DIR, _import_shipml, datasets_dir, load_adult  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MLFLOW_VERSION = "3.17.2"  # what `pip install mlflow` resolved to here (2026-11); pinned
MLFLOW_VENV = REPO / "benchmarks" / ".venv-mlflow"
MODEL_NAME = "serving-bench"
KEY_NAME = "serving-bench"
VERIFY_ROWS = 200  # rows compared between the two servers before the load test
POOL_ROWS = 2000  # distinct test rows the load generator cycles through
GOAL_THROUGHPUT = 3.0  # shipml req/s >= 3x MLflow's at equal workers
GOAL_P99 = 0.5  # shipml p99 <= half of MLflow's


# --------------------------------------------------------------------------------------------
# Environment: wrk, the MLflow virtualenv


def _env(extra: dict | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    src = str(REPO / "src")  # works from a source tree too
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def ensure_wrk() -> tuple[str, str]:
    """(path, version) of wrk."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: install it with `apt-get install -y wrk`")
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    return wrk, (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0].strip()


def ensure_mlflow_venv(venv: Path) -> dict[str, str]:
    """Create the MLflow virtualenv if missing (mlflow pinned; lightgbm, pandas and uvicorn at
    our versions); returns the versions installed in it."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlflow").exists():
        print(f"creating {venv.relative_to(REPO)} (mlflow=={MLFLOW_VERSION}; once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pins = [
            f"mlflow=={MLFLOW_VERSION}",
            f"lightgbm=={metadata.version('lightgbm')}",
            f"pandas=={metadata.version('pandas')}",
            # The same HTTP stack as shipml's (uvloop + httptools): `pip install mlflow` alone
            # brings plain uvicorn. This favours MLflow.
            f"uvicorn[standard]=={metadata.version('uvicorn')}",
        ]
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        done = subprocess.run([*pip, *pins], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"pip install {' '.join(pins)} failed:\n{done.stderr[-3000:]}")
    code = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps({p: m.version(p) for p in "
        "('mlflow', 'lightgbm', 'pandas', 'numpy', 'uvicorn', 'fastapi')}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


# --------------------------------------------------------------------------------------------
# The model: shipml's best LightGBM member, alone, registered; the same booster for MLflow


def bake_offset(model_text: str, offset: float) -> str:
    """The booster with `offset` added to every leaf of its first tree: its raw score becomes
    raw + offset, so plain `booster.predict` returns what shipml returns (shipml adds a class
    weighting offset after the trees). Reloaded so that LightGBM rewrites `tree_sizes`."""
    from shipml._lazy import lightgbm

    lines = model_text.split("\n")
    start = lines.index("Tree=0")
    for i in range(start, len(lines)):
        if lines[i].startswith("leaf_value="):
            values = [float(v) + offset for v in lines[i][len("leaf_value=") :].split()]
            lines[i] = "leaf_value=" + " ".join(repr(v) for v in values)
            break
    else:
        raise ValueError("no leaf_value line in the first tree")
    lines = [line for line in lines if not line.startswith("tree_sizes=")]
    booster = lightgbm().Booster(model_str="\n".join(lines))
    return booster.model_to_string()


@dataclass
class Served:
    model: object  # shipml Model with one member
    booster_text: str
    registry: Path
    feature_names: list[str]
    note: str
    train_s: float
    test_auc: float
    member_name: str
    n_trees: int


def build_model(ds, budget: float, n_trials: int, seed: int, work: Path) -> Served:
    from sklearn.metrics import roc_auc_score

    shipml = _import_shipml()
    from shipml.learners.lightgbm import LightGBMFitted
    from shipml.model import Member, Model
    from shipml.registry.store import Registry

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trained = shipml.train(
            ds.train,
            target=ds.target,
            time_budget=budget,
            n_trials=n_trials,
            seed=seed,
            progress=False,
            report=False,
        )
    train_s = time.perf_counter() - started
    if trained.task != "binary":
        raise SystemExit(f"expected a binary model, got {trained.task}")
    boosting = [
        m
        for m in trained.members
        if getattr(m.fitted, "kind", "") == "lightgbm"
        and "\naverage_output\n" not in m.fitted.models[0]  # a random forest: not comparable
    ]
    if not boosting:
        members = ", ".join(f"{m.name} x{m.weight:.2f}" for m in trained.members)
        raise SystemExit(
            f"the trained ensemble has no gradient-boosted LightGBM member ({members}): the "
            "budget probably cut the boosting trials short; raise --budget"
        )
    member = max(boosting, key=lambda m: m.weight)
    note = f"{member.name} (weight {member.weight:.2f} in a {len(trained.members)}-member ensemble)"
    if len(member.fitted.models) > 1:
        note += f"; first of its {len(member.fitted.models)} fold boosters"
    baked = bake_offset(member.fitted.models[0], float(member.fitted.offset[0]))
    single = LightGBMFitted([baked], np.zeros(1), trained.task)

    # The baked booster must be the member, exactly (up to float summation order).
    _, X = trained.encode(ds.test.drop(columns=[ds.target]).iloc[:POOL_ROWS])
    original = LightGBMFitted(member.fitted.models[:1], member.fitted.offset, trained.task)
    diff = np.max(np.abs(single.raw(X) - original.raw(X)))
    if diff > 1e-9:
        raise SystemExit(f"baking the class-weight offset changed raw scores by {diff:g}")

    info = {
        "lineage": trained.info.get("lineage", {}),
        "notes": [f"serving benchmark: {note}, served alone"],
    }
    model = Model(
        trained.schema,
        trained.encoder,
        [Member(single, 1.0, member.name)],
        trained.transform,
        trained.threshold,
        info,
    )
    registry = work / "registry"
    reg = Registry(str(registry))
    writer = reg.writer()
    try:
        model.write(writer)
        writer.finish()
        reg.register(
            MODEL_NAME,
            writer,
            task=model.task,
            metrics={},
            lineage=info["lineage"],
            schema=model.schema.to_dict(),
        )
    except BaseException:
        writer.abort()
        raise
    test_x = ds.test.drop(columns=[ds.target])
    positive = model.classes[1]
    auc = roc_auc_score(ds.test[ds.target] == positive, model.predict_proba(test_x)[positive])
    booster = single.boosters[0]
    return Served(
        model,
        baked,
        registry,
        list(model.encoder.names),
        note,
        train_s,
        auc,
        member.name,
        booster.num_trees(),
    )


_SAVE_MLFLOW = """
import json, sys
import lightgbm, mlflow.lightgbm, pandas as pd
from mlflow.models import infer_signature
booster_path, sample_path, dest = sys.argv[1:4]
booster = lightgbm.Booster(model_file=booster_path)
sample = json.load(open(sample_path))
frame = pd.DataFrame(sample["data"], columns=sample["columns"], dtype="float64")
signature = infer_signature(frame, booster.predict(frame))
mlflow.lightgbm.save_model(booster, dest, signature=signature)
"""


def save_mlflow_model(venv: Path, served: Served, sample: np.ndarray, work: Path) -> Path:
    booster_path = work / "booster.txt"
    booster_path.write_text(served.booster_text)
    sample_path = work / "signature_sample.json"
    sample_path.write_text(
        json.dumps(_split_payload(served.feature_names, sample)["dataframe_split"])
    )
    dest = work / "mlflow-model"
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [
        str(venv / "bin" / "python"),
        "-c",
        _SAVE_MLFLOW,
        str(booster_path),
        str(sample_path),
        str(dest),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise SystemExit(f"saving the MLflow model failed:\n{done.stderr[-3000:]}")
    return dest


# --------------------------------------------------------------------------------------------
# Payloads


def _records(frame) -> list[dict]:
    """Raw rows as a user sends them: JSON values, missing cells as null."""
    out = []
    for record in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()})
    return out


def _split_payload(columns: list[str], X: np.ndarray) -> dict:
    data = [[None if v != v else float(v) for v in row] for row in X.tolist()]
    return {"dataframe_split": {"columns": columns, "data": data}}


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), default=lambda v: v.item())


def make_bodies(served: Served, rows, per_request: int) -> tuple[list[str], list[str]]:
    """(shipml bodies, MLflow bodies) of `per_request` rows each, the same rows in the same
    order on both sides: raw records for shipml, the encoded feature matrix for MLflow."""
    records = _records(rows)
    _, X = served.model.encode(rows)
    ours, theirs = [], []
    for start in range(0, len(records) - per_request + 1, per_request):
        stop = start + per_request
        ours.append(_dumps({"records": records[start:stop]}))
        theirs.append(_dumps(_split_payload(served.feature_names, X[start:stop])))
    return ours, theirs


# --------------------------------------------------------------------------------------------
# Servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _started(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), None if it is gone: with the pid, it
    names one process even after its pid is reused."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Server:
    label: str
    cmd: list[str]
    env: dict
    url: str  # base URL
    ready_path: str
    predict_path: str
    headers: dict
    log: Path
    proc: subprocess.Popen | None = None
    pids: dict = field(default_factory=dict)  # pid -> start time, for stop()

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            # Own session = own process group: stop() kills the whole tree, workers included.
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.label} exited ({self.proc.returncode}):\n{tail}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as r:
                    if r.status == 200:
                        self._remember()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.label} not ready after {timeout:.0f} s (log: {self.log})")

    def post(self, body: str) -> dict:
        request = urllib.request.Request(
            self.url + self.predict_path, data=body.encode(), headers=self.headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())

    def memory_mb(self) -> tuple[float, float, int]:
        """(RSS, PSS) summed over the server's process tree, in MB, and the process count.
        RSS counts pages shared between processes once per process; PSS splits them."""
        pids = self._remember()
        rss = sum(_status_kb(p, "VmRSS") for p in pids) / 1024
        pss = sum(_pss_kb(p) for p in pids) / 1024
        return rss, pss, len(pids)

    def _remember(self) -> list[int]:
        pids = _tree(self.proc.pid)
        self.pids.update({p: _started(p) for p in pids})
        return pids

    def _alive(self) -> list[int]:
        """Processes of this server still running: same pid and same start time."""
        return [p for p, t in self.pids.items() if t is not None and _started(p) == t]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._remember()
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
            deadline = time.monotonic() + wait
            while self._alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not self._alive():
                break
        for pid in self._alive():  # left the process group (none expected): by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None


def shipml_server(
    registry: Path, key: str, workers: int, work: Path, access_log: bool, extra: list[str]
) -> Server:
    port = _free_port()
    script = Path(sys.executable).parent / "shipml"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "shipml"]
    cmd = [
        *base,
        "serve",
        MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--registry-uri",
        str(registry),
        # Rate limiting stays on (as a user runs it), set high enough never to answer 429.
        "--rate",
        "1000000",
        "--burst",
        "1000000",
    ]
    if not access_log:
        cmd.append("--no-access-log")
    cmd += extra
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return Server(
        "shipml",
        cmd,
        _env(),
        f"http://127.0.0.1:{port}",
        "/v2/health/ready",
        f"/v1/models/{MODEL_NAME}/predict",
        headers,
        work / f"shipml-w{workers}.log",
    )


def mlflow_server(
    venv: Path, model_dir: Path, workers: int, work: Path, access_log: bool
) -> Server:
    port = _free_port()
    cmd = [
        str(venv / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = _env({"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"})
    env.pop("PYTHONPATH", None)
    env["VIRTUAL_ENV"] = str(venv)
    if not access_log:  # `mlflow models serve` has no option for it; uvicorn reads UVICORN_*
        env["UVICORN_ACCESS_LOG"] = "false"
    headers = {"Content-Type": "application/json"}
    return Server(
        "MLflow",
        cmd,
        env,
        f"http://127.0.0.1:{port}",
        "/ping",
        "/invocations",
        headers,
        work / f"mlflow-w{workers}.log",
    )


def create_key(registry: Path) -> str:
    script = Path(sys.executable).parent / "shipml"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "shipml"]
    cmd = [
        *base,
        "keys",
        "create",
        "--name",
        KEY_NAME,
        "--scope",
        "predict",
        "--registry-uri",
        str(registry),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env({"COLUMNS": "500"}))
    if done.returncode != 0:
        raise SystemExit(f"shipml keys create failed: {done.stderr or done.stdout}")
    return done.stdout.strip().splitlines()[-1].strip()


# --------------------------------------------------------------------------------------------
# Checks and load


def verify(ours: Server, theirs: Server, served: Served, rows) -> float:
    """Max abs difference of P(positive) between the two servers and shipml in-process, over
    `rows` sent in one batch and the first 20 one at a time. Raises if over 1e-6."""
    positive = str(served.model.classes[1])
    local = served.model.predict_proba(rows)[served.model.classes[1]].to_numpy()
    shipml_bodies, mlflow_bodies = make_bodies(served, rows, len(rows))
    got_ours = [p["probabilities"][positive] for p in ours.post(shipml_bodies[0])["predictions"]]
    got_theirs = theirs.post(mlflow_bodies[0])["predictions"]
    singles_ours, singles_theirs = make_bodies(served, rows.iloc[:20], 1)
    one_ours = [ours.post(b)["predictions"][0]["probabilities"][positive] for b in singles_ours]
    one_theirs = [theirs.post(b)["predictions"][0] for b in singles_theirs]
    a, b = np.asarray(got_ours, dtype=float), np.asarray(got_theirs, dtype=float).ravel()
    if a.shape != local.shape or b.shape != local.shape:
        raise SystemExit(f"prediction shapes differ: shipml {a.shape}, MLflow {b.shape}")
    diffs = [
        np.abs(a - b).max(),
        np.abs(a - local).max(),
        np.abs(b - local).max(),
        np.abs(np.asarray(one_ours) - np.asarray(one_theirs, dtype=float).ravel()).max(),
        np.abs(np.asarray(one_ours) - a[:20]).max(),
    ]
    worst = float(max(diffs))
    if not worst < 1e-6:
        raise SystemExit(
            f"the servers disagree (max abs diff {worst:g} >= 1e-6): the comparison is void"
        )
    return worst


_LUA = """
local bodies = {
%(bodies)s
}
local headers = %(headers)s
local requests = {}
local i = 0
function init(args)
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format("POST", "%(path)s", headers, body)
  end
  i = math.random(#requests) - 1 -- threads start at different rows
end
function request()
  i = i %% #requests + 1
  return requests[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f,' ..
    '"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0),
    latency.mean, latency.max))
end
"""


def _lua_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def write_lua(path: Path, server: Server, bodies: list[str]) -> Path:
    headers = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in server.headers.items()) + "}"
    text = _LUA % {
        "bodies": ",\n".join(_lua_string(b) for b in bodies),
        "headers": headers,
        "path": server.predict_path,
    }
    path.write_text(text)
    return path


def run_wrk(
    wrk: str, url: str, lua: Path, connections: int, seconds: float, timeout_s: float
) -> dict:
    threads = min(2, connections)
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    # wrk ends by itself after -d; the subprocess timeout is only a guard.
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=_env(), timeout=seconds + timeout_s + 30
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-1000:]}")
    out = json.loads(line[len("WRKJSON ") :])
    out["socket_errors"] = out["connect"] + out["read"] + out["write"] + out["timeout"]
    out["errors"] = out["status"] + out["socket_errors"]
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    return out


# --------------------------------------------------------------------------------------------
# Report


def _ms(us: float) -> str:
    ms = us / 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def print_table(cells: list[dict]) -> None:
    print(
        "| server | workers | concurrency | rows/request | req/s | rows/s | p50 ms | p99 ms | "
        "errors | RSS MB | req/s shipml ÷ MLflow | p99 shipml ÷ MLflow |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    by_key = {(c["server"], c["workers"], c["concurrency"], c["rows"]): c for c in cells}
    for c in cells:
        ratio_rps = ratio_p99 = ""
        if c["server"] == "shipml":
            peer = by_key.get(("MLflow", c["workers"], c["concurrency"], c["rows"]))
            if peer and "error" not in peer and "error" not in c:
                ratio_rps = f"{c['rps'] / peer['rps']:.2f}x" if peer["rps"] else "—"
                ratio_p99 = f"{c['p99_us'] / peer['p99_us']:.2f}" if peer["p99_us"] else "—"
        head = f"| {c['server']} | {c['workers']} | {c['concurrency']} | {c['rows']} |"
        if "error" in c:
            print(f"{head} error: {c['error']} | | | | | | | |")
            continue
        print(
            f"{head} {c['rps']:,.0f} | {c['rps'] * c['rows']:,.0f} | {_ms(c['p50_us'])} | "
            f"{_ms(c['p99_us'])} | {c['errors']} | {c['rss_mb']:.0f} | {ratio_rps} | "
            f"{ratio_p99} |"
        )


def print_goals(cells: list[dict]) -> None:
    by_key = {(c["server"], c["workers"], c["concurrency"], c["rows"]): c for c in cells}
    pairs = [
        (c, by_key.get(("MLflow", c["workers"], c["concurrency"], c["rows"])))
        for c in cells
        if c["server"] == "shipml" and c["rows"] == 1
    ]
    pairs = [(a, b) for a, b in pairs if b and "error" not in a and "error" not in b]
    if not pairs:
        return
    fast = sum(a["rps"] >= GOAL_THROUGHPUT * b["rps"] for a, b in pairs)
    p99 = sum(a["p99_us"] <= GOAL_P99 * b["p99_us"] for a, b in pairs)
    clean = sum(a["errors"] == 0 for a, _ in pairs)
    n = len(pairs)
    print(
        f"\nGoals (one-row cells, equal workers): req/s >= {GOAL_THROUGHPUT:g}x MLflow's: "
        f"{fast} of {n}; p99 <= {GOAL_P99:g}x MLflow's: {p99} of {n}; shipml errors = 0: "
        f"{clean} of {n}"
    )


NOTES = """\
How to read it (which side each choice favours):

- Same model: shipml's best gradient-boosted LightGBM member, served alone (weight 1). shipml
  adds a class-weighting offset after the trees; it is baked into the first tree's leaves so
  that MLflow's plain `booster.predict` returns the same probabilities (checked above). Both
  servers run the same trees: neutral.
- Input: shipml receives raw records (strings, nulls) and validates and encodes them against its
  schema; MLflow receives the already-encoded float matrix (`dataframe_split`) for the same rows,
  checked against an all-double signature. That skips the encoding MLflow users must do in their
  client: favours MLflow.
- Output: shipml returns a label and both class probabilities per row with an id; MLflow a bare
  probability list. Favours MLflow.
- Auth: shipml checks a `predict`-scoped API key and a per-key rate limit (set high enough never
  to answer 429) on every request; MLflow has no auth. Favours MLflow.
- Logging: each server with its defaults: one access-log line per request on both (shipml's
  JSON line, uvicorn's for MLflow; both off with --no-access-logs), and shipml also keeps its
  prediction log for monitoring, which MLflow has no equivalent of: favours MLflow.
- HTTP stack: both uvicorn with uvloop + httptools at the same versions (the MLflow venv gets
  `uvicorn[standard]`, which `pip install mlflow` alone does not bring): favours MLflow.
- Threads: shipml predicts batches under 2,000 rows on one LightGBM thread; MLflow calls
  `booster.predict` with LightGBM's default (all cores). Can favour either side.
- RSS is summed over each server's process tree after the cell (MLflow's tree includes the
  `mlflow models serve` CLI process that supervises uvicorn; with several workers, pages shared
  between processes are counted once per process: PSS in the JSON splits them).
- Load: wrk on the same 2 cores as the server (closed loop, -t1 for concurrency 1, -t2
  otherwise), the cells of the two servers interleaved, each after its own warm-up. Errors =
  non-2xx responses + socket errors (connect, read, write, timeout)."""


# --------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


@contextlib.contextmanager
def started(servers: list[Server]):
    """Both servers up and ready for the block, stopped after it whatever happens (SIGTERM
    included: main turns it into SystemExit)."""
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready()
        yield servers
    finally:
        for s in servers:
            s.stop()


def run_cells(wrk: str, servers: list[Server], bodies: dict, workers: int, args, work: Path,
              unit: str) -> list[dict]:  # fmt: skip
    """wrk on each server for every (rows per request, concurrency) of `args`, the servers'
    cells interleaved (a noisy minute hurts both alike). `bodies[rows][i]`: server i's request
    bodies; `unit`: what a row is called in the progress lines ("rows", "texts")."""
    cells: list[dict] = []
    for rows in args.rows:
        luas = {
            s.label: write_lua(work / f"{s.label}-r{rows}.lua", s, bodies[rows][i])
            for i, s in enumerate(servers)
        }
        for conc in args.concurrency:
            for s in servers:
                cell = {"server": s.label, "workers": workers, "concurrency": conc, "rows": rows}
                try:
                    url = s.url + s.predict_path
                    if args.warmup > 0:
                        run_wrk(wrk, url, luas[s.label], conc, args.warmup, args.timeout)
                    cell.update(run_wrk(wrk, url, luas[s.label], conc, args.duration, args.timeout))
                    rss, pss, nproc = s.memory_mb()
                    cell.update(rss_mb=rss, pss_mb=pss, processes=nproc)
                    print(
                        f"  {s.label:6} w={workers} c={conc:<3} {unit}={rows:<4} "
                        f"{cell['rps']:8,.1f} req/s  p50 {_ms(cell['p50_us'])} ms  "
                        f"p99 {_ms(cell['p99_us'])} ms  errors {cell['errors']}  "
                        f"RSS {rss:.0f} MB",
                        flush=True,
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    cell["error"] = " ".join(str(exc).split())[:200]
                    print(
                        f"  {s.label} w={workers} c={conc} {unit}={rows}: {cell['error']}",
                        flush=True,
                    )
                cells.append(cell)
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per cell")
    parser.add_argument("--workers", type=_ints, default=[1, 2], help="server workers, e.g. 1,2")
    parser.add_argument("--concurrency", type=_ints, default=[1, 32], help="connections, e.g. 1,32")
    parser.add_argument("--rows", type=_ints, default=[1, 100], help="rows per request, e.g. 1,100")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk request timeout (s)")
    parser.add_argument("--budget", type=float, default=60.0, help="shipml time_budget (s)")
    parser.add_argument(
        "--trials",
        type=int,
        default=3,
        help="shipml n_trials: boosting trials after the fixed linear and forest "
        "ones (a fixed count keeps the model the same from run to run)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mlflow-venv", type=Path, default=MLFLOW_VENV)
    parser.add_argument(
        "--no-access-logs",
        action="store_true",
        help="turn off both servers' per-request access log (on by default in both)",
    )
    parser.add_argument(
        "--shipml-args",
        default="",
        help="more `shipml serve` options for experiments, e.g. --shipml-args=--no-log",
    )
    parser.add_argument("--out", type=Path, default=WORK_DIR / "serving.json")
    args = parser.parse_args(argv)

    # SIGTERM (e.g. a CI timeout) unwinds through the finally below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "python benchmarks/serving.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"# OMP_WAIT_POLICY=PASSIVE {command.strip()}\n")

    wrk, wrk_version = ensure_wrk()
    theirs_versions = ensure_mlflow_venv(args.mlflow_venv)
    work = WORK_DIR / "serving"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    ds = load_adult(datasets_dir(), args.seed)
    served = build_model(ds, args.budget, args.trials, args.seed, work)
    key = create_key(served.registry)
    test_x = ds.test.drop(columns=[ds.target]).reset_index(drop=True)
    pool = test_x.iloc[:POOL_ROWS]
    _, X_pool = served.model.encode(pool)
    model_dir = save_mlflow_model(args.mlflow_venv, served, X_pool[:50], work)

    ours_versions = {
        p: metadata.version(p)
        for p in ("shipml", "lightgbm", "pandas", "numpy", "uvicorn", "fastapi")
    }
    print(
        f"shipml {ours_versions['shipml']} vs MLflow {theirs_versions['mlflow']}; "
        f"{wrk_version}; Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print("shipml side: " + ", ".join(f"{k} {v}" for k, v in ours_versions.items()))
    print("MLflow side: " + ", ".join(f"{k} {v}" for k, v in theirs_versions.items()))
    print(
        f"model: {served.note}; {served.n_trees} trees, {len(served.feature_names)} features; "
        f"adult test ROC AUC {served.test_auc:.4f}; shipml.train {served.train_s:.0f} s "
        f"(budget {args.budget:g} s, n_trials={args.trials})"
    )
    print(
        f"load: wrk {args.duration:g} s per cell after {args.warmup:g} s warm-up, "
        f"{POOL_ROWS:,} adult test rows cycled, timeout {args.timeout:g} s\n"
    )

    bodies = {r: make_bodies(served, pool, r) for r in args.rows}
    cells: list[dict] = []
    verified: dict[int, float] = {}
    for workers in args.workers:
        logs = not args.no_access_logs
        extra = shlex.split(args.shipml_args)
        ours = shipml_server(served.registry, key, workers, work, logs, extra)
        theirs = mlflow_server(args.mlflow_venv, model_dir, workers, work, logs)
        with started([ours, theirs]) as servers:
            verified[workers] = verify(ours, theirs, served, pool.iloc[:VERIFY_ROWS])
            print(
                f"workers={workers}: both servers up; max abs diff of P(>50K) between them "
                f"and in-process: {verified[workers]:.1e}",
                flush=True,
            )
            cells += run_cells(wrk, servers, bodies, workers, args, work, unit="rows")

    print()
    print_table(cells)
    print_goals(cells)
    print()
    print(NOTES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "cells": cells,
                "verified_max_abs_diff": verified,
                "model": {
                    "note": served.note,
                    "trees": served.n_trees,
                    "test_auc": served.test_auc,
                },
                "versions": {
                    "shipml_side": ours_versions,
                    "mlflow_side": theirs_versions,
                    "wrk": wrk_version,
                },
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            indent=2,
        )
    )
    print(f"\nraw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
