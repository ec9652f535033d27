"""Recommendation benchmark: shipml against popularity, item-kNN, EASE, ALS, BPR and LightFM-WARP.

One run, one split for every system: MovieLens 100K (../shared/datasets/movielens_100k,
GroupLens terms: research use only, never copied into the repository) read by shipml's
`read_log` with every rating taken as one implicit interaction (weight 1, the rating value
ignored), then shipml's own protocol, `split_log(inter, "leave-last-out")`: each user's last
event (by time) is the test, every system trains on the other events (`train_val`). The peers'
tuning uses the split shipml selects on: `train` (train_val minus each user's last event) ->
`val` (that event); shipml gets the train_val events and does that same inner split itself.

Every cell runs alone in its own subprocess (OMP_WAIT_POLICY=PASSIVE): shipml in this
interpreter's environment (PYTHONPATH=--shipml-src), the peers in their own venv (`bash
benchmarks/setup_rec_peers.sh` makes /work/rec-venv: cornac, implicit, rectools-lightfm, no
torch). A cell returns the full (test users x items) score matrix; everything is scored here,
the same way for every system:

- full ranking over every item (`shipml.recommend.metrics.ranking_metrics`), the user's
  train_val items masked; items absent from train_val are at -inf for every system;
- sampled-100 HR@10: the target against 100 items the user has not seen, drawn once (seed 0)
  and the same for every system (ties count against the target);
- coverage@10: the share of the catalogue in at least one test user's top 10;
- train s: the final fit on train_val (for shipml: the whole `train_recommender` call, search
  included); tune s: the peers' grid on train -> val;
- p50/p99 ms: single-user top-10 requests (200 test users, one at a time) through each
  library's own call (`model.recommend(user=..., k=10)` for shipml).

The latency cell trains shipml on a seeded synthetic log (20,000 users, 10,000 items, 500,000
events, Zipf popularity, taste clusters) at a short budget, then times `model.recommend` in
process and the served route (POST /v1/models/<name>/recommend) through a live `shipml serve`
on 127.0.0.1 with one worker, sequential requests over one keep-alive connection (httpx).

Usage (from the repository root)::

    bash benchmarks/setup_rec_peers.sh                   # /work/rec-venv, once
    .venv/bin/python benchmarks/recommend.py             # every cell; resumes what it holds
    .venv/bin/python benchmarks/recommend.py --rerun shipml --shipml-src ../other/src

Raw results: benchmarks/.work/recommend.json (+ score matrices in benchmarks/.work/recommend/),
rewritten after every cell; the same command again skips the cells it holds (`--fresh`: all).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import hashlib
import json
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work"
HARNESS = 1
GOAL_RATIO, GOAL_P99_MS, BUDGET_SLACK = 1.25, 10.0, 1.10
PEERS = ("pop", "itemknn", "ease", "als", "bpr", "lightfm")
TITLES = {"shipml": "shipml", "pop": "popularity (count)", "itemknn": "item-kNN (implicit cosine)",
          "ease": "EASE (cornac)", "als": "ALS (implicit)", "bpr": "BPR (implicit)",
          "lightfm": "LightFM-WARP"}  # fmt: skip
N_LATENCY_USERS = 200


def _up_to(relative: str) -> Path | None:
    for parent in REPO.parents:
        if (parent / relative).exists():
            return parent / relative
    return None


def default_venv() -> Path:
    env = os.environ.get("SHIPML_REC_VENV")
    found = _up_to("rec-venv/bin/python")
    return Path(env) if env else found.parents[1] if found else REPO.parent / "rec-venv"


def movielens_dir() -> Path:
    root = os.environ.get("SHIPML_DATASETS")
    base = Path(root) if root else _up_to("shared/datasets") or REPO.parent / "shared/datasets"
    return base / "movielens_100k"


# --------------------------------------------------------------------------------------------
# The split (here, with shipml), written as arrays for the cells


def make_split(data_dir: Path, out: Path) -> dict:
    """Read MovieLens with shipml, split it leave-last-out, write the arrays; the split's
    description and fingerprint."""
    import pandas as pd

    from shipml.recommend.log import read_log
    from shipml.recommend.protocol import split_log

    raw = pd.read_csv(data_dir / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    frame = pd.DataFrame({"user": raw["user"].astype(str), "item": raw["item"].astype(str),
                          "time": pd.to_datetime(raw["ts"], unit="s", utc=True)})  # fmt: skip
    inter, _ = read_log(frame, user="user", item="item", time="time")  # ratings ignored: weight 1
    split = split_log(inter, "leave-last-out")
    tv, tr, test, val = split.train_val, split.train, split.test, split.val
    arrays = {"tv_user": tv.user, "tv_item": tv.item, "tv_time": tv.time,
              "tr_user": tr.user, "tr_item": tr.item,
              "val_users": val.history.users, "val_items": _one_target(val.target),
              "test_users": test.history.users, "test_items": _one_target(test.target)}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", np.asarray(arr), allow_pickle=False)
        digest.update(name.encode() + np.ascontiguousarray(arr).tobytes())
    meta = {"n_users": inter.n_users, "n_items": inter.n_items, "n_events": inter.n_events,
            "users": [str(u) for u in inter.users], "items": [str(i) for i in inter.items],
            "fingerprint": digest.hexdigest()[:16], "protocol": split.description,
            "n_train_val": tv.n_events, "n_test_users": len(test)}  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta))
    return meta


def _one_target(target) -> np.ndarray:
    t = target.tocsr()
    if not np.all(np.diff(t.indptr) == 1):
        raise SystemExit("leave-last-out should hold out exactly one event per user")
    return t.indices.astype(np.int32)


def load_arrays(data: Path) -> tuple[dict, dict]:
    meta = json.loads((data / "meta.json").read_text())
    arrays = {p.stem: np.load(p, allow_pickle=False) for p in data.glob("*.npy")}
    return meta, arrays


def _csr(users, items, n_users: int, n_items: int):
    import scipy.sparse as sp

    m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0  # binary: each (user, item) pair once
    return m


# --------------------------------------------------------------------------------------------
# Peers (in the peers' venv: no shipml import on this path)


def _top10(row: np.ndarray, seen: np.ndarray) -> np.ndarray:
    row = row.astype(np.float32, copy=True)
    row[seen] = -np.inf
    part = np.argpartition(-row, 9)[:10]
    return part[np.argsort(-row[part])]


def fit_pop(cfg, ui, seed):
    counts = np.asarray(ui.sum(axis=0)).ravel().astype(np.float32)
    return (lambda users: np.tile(counts, (len(users), 1)),
            lambda u: _top10(counts, ui[u].indices))  # fmt: skip


def fit_itemknn(cfg, ui, seed):
    from implicit.nearest_neighbours import CosineRecommender

    m = CosineRecommender(**cfg)
    m.fit(ui, show_progress=False)
    return (lambda users: (ui[users] @ m.similarity).toarray(),
            lambda u: m.recommend(u, ui[u], N=10)[0])  # fmt: skip


def fit_ease(cfg, ui, seed):
    import cornac

    coo = ui.tocoo()
    triplets = [(str(u), str(i), 1.0) for u, i in zip(coo.row, coo.col)]
    data = cornac.data.Dataset.from_uir(triplets, seed=seed)
    m = cornac.models.EASE(**cfg, verbose=False, seed=seed)
    m.fit(data)
    cols = np.array([int(i) for i in data.item_ids])  # cornac's item index -> our item code

    def scores(users):
        out = np.full((len(users), ui.shape[1]), -np.inf, np.float32)
        for r, u in enumerate(users):
            if str(u) in data.uid_map:
                out[r, cols] = m.score(data.uid_map[str(u)])
        return out

    def one(u):
        ranked = m.recommend(str(u), k=10, remove_seen=True, train_set=data)
        return np.array([int(i) for i in ranked])

    return scores, one


def fit_mf(cfg, ui, seed, cls):
    m = cls(**cfg, random_state=seed)
    m.fit(ui, show_progress=False)
    return (lambda users: m.user_factors[users] @ m.item_factors.T,
            lambda u: m.recommend(u, ui[u], N=10)[0])  # fmt: skip


def fit_als(cfg, ui, seed):
    from implicit.cpu.als import AlternatingLeastSquares

    return fit_mf(cfg, ui, seed, AlternatingLeastSquares)


def fit_bpr(cfg, ui, seed):
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    return fit_mf(cfg, ui, seed, BayesianPersonalizedRanking)


def fit_lightfm(cfg, ui, seed):
    from lightfm import LightFM

    cfg = dict(cfg)
    epochs = cfg.pop("epochs", 1)  # LightFM.fit's default
    m = LightFM(loss="warp", random_state=seed, **cfg)
    m.fit(ui.tocoo(), epochs=epochs, num_threads=2)
    all_items = np.arange(ui.shape[1], dtype=np.int32)

    def scores(users):
        ub, ue = m.get_user_representations()
        ib, ie = m.get_item_representations()
        return ue[users] @ ie.T + ib[None, :] + ub[users][:, None]

    return scores, lambda u: _top10(m.predict(int(u), all_items), ui[u].indices)


FITS = {"pop": fit_pop, "itemknn": fit_itemknn, "ease": fit_ease, "als": fit_als,
        "bpr": fit_bpr, "lightfm": fit_lightfm}  # fmt: skip


def _grid(default: dict, **axes) -> list[dict]:
    """`default` (the library's defaults) first, then the product of `axes` without it."""
    out = [{}]
    for key, values in axes.items():
        out = [dict(c, **{key: v}) for c in out for v in values]
    return [default] + [c for c in out if c != default]


# The first config is the library's defaults (LightFM: loss="warp", the rest default, 1 epoch).
GRIDS = {
    "pop": [{}],
    "itemknn": _grid({"K": 20}, K=[20, 50, 100, 200, 400]),
    "ease": _grid(
        {"lamb": 500, "posB": True}, lamb=[50, 100, 250, 500, 1000, 2000], posB=[False, True]
    ),  # fmt: skip
    "als": _grid({}, factors=[32, 64, 128], regularization=[0.01, 0.1], alpha=[1.0, 10.0]),
    "bpr": _grid({}, factors=[64, 128], learning_rate=[0.01, 0.05], iterations=[100, 300]),
    "lightfm": _grid({}, no_components=[32, 64, 128], epochs=[10, 30, 60]),
}


def val_ndcg10(scores: np.ndarray, seen, targets: np.ndarray) -> float:
    """NDCG@10 with one held-out item per user (the peers' tuning, seen items masked)."""
    s = np.array(scores, dtype=np.float32)
    coo = seen.tocoo()
    s[coo.row, coo.col] = -np.inf
    target = s[np.arange(len(s)), targets]
    rank = (s >= target[:, None]).sum(axis=1)
    return float(np.mean(np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0)))


def _latency_ms(one, users: np.ndarray) -> list[float]:
    for u in users[:10]:
        one(int(u))
    out = []
    for u in users:
        t0 = time.perf_counter()
        one(int(u))
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def peer_worker(system: str, data: Path, out: Path, seed: int) -> dict:
    meta, a = load_arrays(data)
    n_users, n_items = meta["n_users"], meta["n_items"]
    train = _csr(a["tr_user"], a["tr_item"], n_users, n_items)
    train_val = _csr(a["tv_user"], a["tv_item"], n_users, n_items)
    fit, grid = FITS[system], GRIDS[system]
    t0 = time.perf_counter()
    tried = []
    for cfg in grid if len(grid) > 1 else []:
        scores, _ = fit(cfg, train, seed)
        val = val_ndcg10(scores(a["val_users"]), train[a["val_users"]], a["val_items"])
        tried.append({"config": cfg, "val_ndcg@10": val})
    tune_s = time.perf_counter() - t0
    best = max(tried, key=lambda t: t["val_ndcg@10"])["config"] if tried else grid[0]
    rows = []
    for label, cfg in (("defaults", grid[0]), ("tuned", best)):
        if label == "tuned" and len(grid) == 1:
            rows[0]["label"] = ""
            break
        if label == "tuned" and cfg == grid[0]:
            rows.append(dict(rows[0], label="tuned (= defaults)", same_as="defaults"))
            continue
        t0 = time.perf_counter()
        scores, one = fit(cfg, train_val, seed)
        train_s = time.perf_counter() - t0
        path = out / f"{system}-{label}.npy"
        np.save(path, np.asarray(scores(a["test_users"]), np.float32), allow_pickle=False)
        lat = _latency_ms(one, a["test_users"][:N_LATENCY_USERS])
        rows.append({"label": label, "config": cfg, "scores": str(path), "train_s": train_s,
                     "latency_ms": lat})  # fmt: skip
    return {"rows": rows, "tune_s": tune_s, "tried": tried, "versions": _versions()}


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "cornac", "implicit", "rectools-lightfm", "shipml"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


# --------------------------------------------------------------------------------------------
# shipml (this environment, shipml from PYTHONPATH)


def shipml_worker(data: Path, out: Path, budget: float, seed: int) -> dict:
    import pandas as pd

    from shipml.recommend.training import train_recommender

    meta, a = load_arrays(data)
    users, items = np.array(meta["users"], object), np.array(meta["items"], object)
    frame = pd.DataFrame({"user": users[a["tv_user"]], "item": items[a["tv_item"]],
                          "time": pd.to_datetime(a["tv_time"], unit="s", utc=True)})  # fmt: skip
    t0 = time.perf_counter()
    model = train_recommender(frame, user="user", item="item", time="time",
                              time_budget=budget, seed=seed,
                              **_same_split(train_recommender))  # fmt: skip
    train_s = time.perf_counter() - t0
    test_users = a["test_users"]
    scores = shipml_scores(model, users[test_users], items)
    path = out / "shipml.npy"
    np.save(path, scores, allow_pickle=False)
    ids = users[test_users[:N_LATENCY_USERS]]
    lat = _latency_ms(lambda u: model.recommend(user=ids[u], k=10), np.arange(len(ids)))
    info = {k: model.info.get(k) for k in ("validation_score", "metric", "protocol", "plan",
                                           "notes")}  # fmt: skip
    info["members"] = [{"name": m.name, "weight": m.weight} for m in model.members]
    info["trials"] = len(model.info.get("trials") or [])
    info["own_test_metrics"] = model.info.get("metrics")
    row = {"label": "", "scores": str(path), "train_s": train_s, "latency_ms": lat,
           "config": {"time_budget": budget}}  # fmt: skip
    return {"rows": [row], "info": info, "versions": _versions(), "src": _src_commit()}


def _same_split(train_recommender) -> dict:
    """Leave-last-out inside shipml too (its selection split), where the branch lets one say
    so (`split="auto"` may choose a global time split)."""
    import inspect

    return {"split": "leave-last-out"} if "split" in inspect.signature(
        train_recommender).parameters else {}  # fmt: skip


def shipml_scores(model, test_ids, items) -> np.ndarray:
    """The model's scores for the test users from its own view of them (`model.events`: the
    train_val events as it read them), as columns of the benchmark's item codes (items the
    model lacks at -inf)."""
    if hasattr(model, "user_code"):  # user IDs may be stored pseudonymized
        codes = np.array([model.user_code(u) for u in test_ids])
    else:
        index = {str(u): i for i, u in enumerate(model.users)}
        codes = np.array([index.get(str(u), -1) for u in test_ids])
    if (codes < 0).any():
        raise RuntimeError(f"{int((codes < 0).sum())} test users unknown to the model")
    raw = np.asarray(model.scores(model.events.histories(codes)), np.float32)
    m_items = {str(t): i for i, t in enumerate(model.items)}
    out = np.full((len(test_ids), len(items)), -np.inf, np.float32)
    cols = np.array([m_items.get(str(t), -1) for t in items])
    out[:, cols >= 0] = raw[:, cols[cols >= 0]]
    return out


def _src_commit() -> dict:
    import shipml

    src = Path(shipml.__file__).resolve().parents[1]
    run = lambda *c: subprocess.run(["git", "-C", str(src), *c], capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()  # fmt: skip
    return {"src": str(src), "commit": run("rev-parse", "--short", "HEAD"),
            "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}  # fmt: skip


# --------------------------------------------------------------------------------------------
# The latency cell: a 10,000-item synthetic catalogue, in process and through `shipml serve`


def synthetic_log(seed: int, n_users=20_000, n_items=10_000, n_events=500_000, n_tastes=40):
    """Users with a taste cluster; each event is from the user's cluster (60 %) or the whole
    catalogue (40 %), both Zipf-skewed; times increase per user."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    perm = rng.permutation(n_items)
    cluster_items = [rng.choice(n_items, 300, replace=False) for _ in range(n_tastes)]
    user = rng.integers(0, n_users, n_events)
    taste = rng.integers(0, n_tastes, n_users)[user]
    local = rng.random(n_events) < 0.6
    item = perm[rng.choice(n_items, n_events, p=pop / pop.sum())]
    cp = 1.0 / np.arange(1, 301) ** 0.7
    pick = rng.choice(300, n_events, p=cp / cp.sum())
    item[local] = np.array(cluster_items)[taste[local], pick[local]]
    item[rng.choice(n_events, n_items, replace=False)] = np.arange(n_items)  # all 10,000 occur
    ts = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.random(n_events))
                                                               * 9e6, unit="s")  # fmt: skip
    return pd.DataFrame({"user": "u" + user.astype(str), "item": "i" + item.astype(str),
                         "time": ts})  # fmt: skip


def _percentiles(ms: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": len(ms)}  # fmt: skip


def latency_worker(out: Path, budget: float, seed: int, requests: int, families=None) -> dict:
    from shipml.recommend.training import train_recommender
    from shipml.registry.store import Registry

    frame = synthetic_log(seed)
    reg_dir = out / "latency-registry"
    shutil.rmtree(reg_dir, ignore_errors=True)  # this cell's own registry: a fresh one per run
    reg = Registry(str(reg_dir))
    t0 = time.perf_counter()
    model = train_recommender(frame, user="user", item="item", time="time", name="reclat",
                              time_budget=budget, seed=seed, registry=reg,
                              **({"families": families} if families else {}))  # fmt: skip
    train_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed + 1)
    known = np.array([str(u) for u in model.users])
    ask = known[rng.integers(0, len(known), requests + 50)]
    ms = _latency_ms(lambda i: model.recommend(user=ask[i], k=10), np.arange(len(ask)))[50:]
    res = {"train_s": train_s, "budget": budget, "n_items": len(model.items),
           "n_users": len(known), "n_events": len(frame), "in_process": _percentiles(ms),
           "members": [{"name": m.name, "weight": m.weight} for m in model.members],
           "src": _src_commit(), "versions": _versions()}  # fmt: skip
    try:
        res["served"] = served_latency(reg_dir, ask, out)
    except Exception as exc:  # recorded, not fatal: the in-process numbers stand
        res["served"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    return res


def _shipml_cmd() -> list[str]:
    script = Path(sys.executable).parent / "shipml"
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipml"]


def served_latency(registry: Path, ask: np.ndarray, out: Path) -> dict:
    import socket

    import httpx

    create = ["keys", "create", "--name", "recbench", "--scope", "predict", "--registry-uri"]
    done = subprocess.run([*_shipml_cmd(), *create, str(registry)], capture_output=True,
                          text=True, env=dict(os.environ, COLUMNS="500"))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"shipml keys create: {done.stderr or done.stdout}")
    key = done.stdout.strip().splitlines()[-1].strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [*_shipml_cmd(), "serve", "reclat", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--registry-uri", str(registry), "--rate", "1000000", "--burst",
           "1000000", "--no-access-log"]  # fmt: skip
    log = open(out / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip
            _wait_ready(client, proc, out / "serve.log")
            first = client.post("/v1/models/reclat/recommend", json={"user": ask[0], "k": 10})
            if first.status_code != 200:
                return {"error": f"POST /v1/models/reclat/recommend answered "
                                 f"{first.status_code}: {first.text[:300]}"}  # fmt: skip
            ms = []
            for i, u in enumerate(ask):
                t0 = time.perf_counter()
                r = client.post("/v1/models/reclat/recommend", json={"user": u, "k": 10})
                if i >= 50:
                    ms.append((time.perf_counter() - t0) * 1e3)
                if r.status_code != 200:
                    return {"error": f"request {i} answered {r.status_code}: {r.text[:300]}"}
            body = first.json()
            health = []  # the HTTP stack's own cost, the same client: GET /v2/health/ready
            for _ in range(300):
                t0 = time.perf_counter()
                client.get("/v2/health/ready")
                health.append((time.perf_counter() - t0) * 1e3)
            return {**_percentiles(ms), "health": _percentiles(health[50:]),
                    "example": body.get("items", [])[:3],
                    "fallback": body.get("fallback")}  # fmt: skip
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)  # the server's own process group only
                proc.wait(timeout=10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def _wait_ready(client, proc, log: Path, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shipml serve exited: {log.read_text(errors='replace')[-800:]}")
        try:
            if client.get("/v2/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"shipml serve not ready after {timeout:.0f} s")


# --------------------------------------------------------------------------------------------
# Scoring (here, with shipml's metrics)


def sampled_negatives(split, meta: dict, a: dict, n: int = 100, seed: int = 0):
    """(n_test, n) items each test user has not seen in train_val nor as its target, and who
    drew them: shipml's own sampler when the branch has it, else a seeded one here."""
    from shipml.recommend import metrics as rm

    if hasattr(rm, "sample_negatives"):
        return rm.sample_negatives(split.test, n, seed=seed)[1], "shipml.recommend.metrics"
    rng = np.random.default_rng(seed)
    seen = _csr(a["tv_user"], a["tv_item"], meta["n_users"], meta["n_items"])
    out = np.empty((len(a["test_users"]), n), np.int64)
    for r, (u, t) in enumerate(zip(a["test_users"], a["test_items"])):
        banned = set(seen[u].indices.tolist()) | {int(t)}
        pool = np.array([i for i in range(meta["n_items"]) if i not in banned])
        out[r] = rng.choice(pool, n, replace=False)
    return out, "the benchmark's seeded sampler"


def score_row(scores: np.ndarray, split, a: dict, negatives: np.ndarray, known: np.ndarray):
    from shipml.recommend import metrics as rm

    s = np.array(scores, dtype=np.float32)
    s[:, ~known] = -np.inf  # nobody can recommend an item absent from train_val
    s[np.isnan(s)] = -np.inf  # a NaN never outranks anything
    out = rm.ranking_metrics(s, split.test, ks=(5, 10, 20))
    masked = rm.masked(s, split.test)
    if hasattr(rm, "sampled_ranks"):
        rows, ranks = rm.sampled_ranks(masked, split.test, negatives)
        out["sampled100_hr@10"] = rm.sampled_metrics(rows, ranks, ks=(10,))["hr@10"]
    else:
        target = masked[np.arange(len(s)), a["test_items"]]
        neg = np.take_along_axis(masked, negatives, axis=1)
        out["sampled100_hr@10"] = float(np.mean((neg >= target[:, None]).sum(axis=1) < 10))
    top = rm.top_k(masked, 10)
    out["coverage@10"] = len(np.unique(top)) / s.shape[1]
    popular = np.argsort(-np.bincount(a["tv_item"], minlength=s.shape[1]), kind="stable")
    out["top1%_share@10"] = float(np.isin(top, popular[: max(1, s.shape[1] // 100)]).mean())
    return out


# --------------------------------------------------------------------------------------------
# Running the cells


def run_cell(system: str, args, data: Path) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if system in PEERS:
        python = str(args.peer_venv / "bin" / "python")
        if not Path(python).exists():
            return {"error": f"no peers' venv at {args.peer_venv}: bash "
                             "benchmarks/setup_rec_peers.sh"}  # fmt: skip
        env.pop("PYTHONPATH", None)
    else:
        python = sys.executable
        env["PYTHONPATH"] = str(args.shipml_src)
    cell = args.work / "cells" / system
    cell.mkdir(parents=True, exist_ok=True)
    result = cell / "result.json"
    result.unlink(missing_ok=True)
    cmd = [python, str(Path(__file__).resolve()), "--worker", system, "--data", str(data),
           "--cell-dir", str(cell), "--budget", repr(args.budget), "--seed", str(args.seed),
           "--latency-budget", repr(args.latency_budget),
           "--requests", str(args.requests)]  # fmt: skip
    if args.latency_families:
        cmd += ["--latency-families", ",".join(args.latency_families)]
    timeout = args.budget * 1.1 + 600 if system in ("shipml", "latency") else args.cell_timeout
    start = time.perf_counter()
    with open(cell / "log.txt", "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the cell's own process group only
            proc.wait()
            return {"error": f"killed after {timeout:.0f} s", "wall_s": timeout}
    wall = time.perf_counter() - start
    if not result.exists():
        tail = (cell / "log.txt").read_text(errors="replace")[-1500:]
        return {"error": f"worker exit {code}: {tail}", "wall_s": wall}
    return dict(json.loads(result.read_text()), wall_s=wall)


def worker(args) -> int:
    out = Path(args.cell_dir)
    try:
        if args.worker in PEERS:
            res = peer_worker(args.worker, Path(args.data), out, args.seed)
        elif args.worker == "shipml":
            res = shipml_worker(Path(args.data), out, args.budget, args.seed)
        else:
            res = latency_worker(out, args.latency_budget, args.seed, args.requests,
                                 args.latency_families)  # fmt: skip
    except Exception as exc:
        res = {"error": f"{type(exc).__name__}: {exc}"[:3000], "traceback": traceback.format_exc()}
    (out / "result.json").write_text(json.dumps(res, default=_json_default))
    return 0


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def load_results(path: Path, fingerprint: str, fresh: bool) -> dict:
    if path.exists() and not fresh:
        res = json.loads(path.read_text())
        if res.get("harness") == HARNESS and res.get("fingerprint") == fingerprint:
            return res
    return {"harness": HARNESS, "fingerprint": fingerprint, "cells": {}}


def main(argv=None) -> int:
    args = parse(argv)
    if args.worker:
        return worker(args)
    args.work.mkdir(parents=True, exist_ok=True)
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))  # the split and the scores: this checkout's shipml
    data = args.work / "data"
    meta = make_split(movielens_dir(), data)
    results_path = args.work.parent / "recommend.json"
    res = load_results(results_path, meta["fingerprint"], args.fresh)
    res["protocol"], res["n_events"] = meta["protocol"], meta["n_events"]
    for system in args.systems:
        old = res["cells"].get(system)
        if old and not old.get("error") and system not in args.rerun:
            print(f"[{system}] kept from {old.get('finished')}", flush=True)
            continue
        print(f"[{system}] running ...", flush=True)
        cell = run_cell(system, args, data)
        cell["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        res["cells"][system] = cell
        results_path.write_text(json.dumps(res, indent=1, default=_json_default))
        print(f"[{system}] {'ERROR ' + cell['error'][:300] if cell.get('error') else 'done'} "
              f"({cell.get('wall_s', 0):.0f} s)", flush=True)  # fmt: skip
    print(report(res, meta, data, args))
    results_path.write_text(json.dumps(res, indent=1, default=_json_default))  # + the table
    return 0


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--systems", type=lambda s: s.split(","),
                   default=["shipml", *PEERS, "latency"])  # fmt: skip
    p.add_argument("--rerun", type=lambda s: s.split(","), default=[])
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--budget", type=float, default=300.0, help="shipml's time budget (s)")
    p.add_argument("--latency-budget", type=float, default=120.0)
    p.add_argument("--requests", type=int, default=1000, help="latency cell requests")
    p.add_argument("--latency-families", type=lambda s: s.split(","), default=None,
                   help="the latency cell's shipml families (default: all)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cell-timeout", type=float, default=1800.0, help="a peer cell's limit (s)")
    p.add_argument("--peer-venv", type=Path, default=default_venv())
    p.add_argument("--shipml-src", type=Path, default=REPO / "src")
    p.add_argument("--work", type=Path, default=WORK / "recommend")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--cell-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.shipml_src = args.shipml_src.resolve()
    return args


# --------------------------------------------------------------------------------------------
# The table


def report(res: dict, meta: dict, data: Path, args) -> str:
    split, a = _rebuild_split(data)
    negatives, sampler = sampled_negatives(split, meta, a)
    known = np.bincount(a["tv_item"], minlength=meta["n_items"]) > 0
    rows = []
    for system in [s for s in ("shipml", *PEERS) if s in res["cells"]]:
        cell = res["cells"][system]
        if cell.get("error"):
            rows.append((system, TITLES[system], None, cell))
            continue
        for row in cell["rows"]:
            ref = next((r for r in cell["rows"] if r["label"] == row.get("same_as")), row)
            m = score_row(np.load(ref["scores"], allow_pickle=False), split, a, negatives, known)
            title = f"{TITLES[system]} {row['label']}".strip()
            rows.append((system, title, m, ref))
    lines = [f"MovieLens 100K: {meta['n_events']:,} ratings as implicit events, "
             f"{meta['n_users']} users, {meta['n_items']} items; {meta['protocol']}; "
             f"{meta['n_test_users']} test users, train on {meta['n_train_val']:,} events", "",
             "| system | NDCG@10 | HR@10 | recall@10 | sampled-100 HR@10 | coverage@10 | "
             "train s | top-10 p50 / p99 ms |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for _, title, m, ref in rows:
        if m is None:
            lines.append(f"| {title} | error: {ref['error'][:120]} |")
            continue
        lat = np.asarray(ref["latency_ms"])
        lines.append(f"| {title} | {m['ndcg@10']:.4f} | {m['hr@10']:.4f} | {m['recall@10']:.4f} "
                     f"| {m['sampled100_hr@10']:.4f} | {m['coverage@10']:.3f} | "
                     f"{ref['train_s']:.1f} | {np.percentile(lat, 50):.2f} / "
                     f"{np.percentile(lat, 99):.2f} |")  # fmt: skip
    lines += ["", *goal_lines(rows, res, args), f"- sampled-100 negatives drawn by {sampler}"]
    res["table"] = [{"system": t, **(m or {})} for _, t, m, _ in rows]
    return "\n".join(lines)


def _rebuild_split(data: Path):
    """The RankTargets of the test users, from the arrays the cells received."""
    from shipml.recommend.interactions import Interactions, RankTargets

    meta, a = load_arrays(data)
    n_users, n_items = meta["n_users"], meta["n_items"]
    users = np.arange(n_users).astype(str).astype(object)
    items = np.arange(n_items).astype(str).astype(object)
    tv = Interactions(users, items, a["tv_user"].astype(np.int32), a["tv_item"].astype(np.int32),
                      np.ones(len(a["tv_user"]), np.float32), a["tv_time"])  # fmt: skip
    target = _csr(np.arange(len(a["test_users"])), a["test_items"], len(a["test_users"]), n_items)

    return SimpleNamespace(test=RankTargets(tv.histories(a["test_users"]), target)), a


def goal_lines(rows, res: dict, args) -> list[str]:
    out = []
    ship = next((m for s, _, m, _ in rows if s == "shipml" and m), None)
    base = [(m["ndcg@10"], t) for s, t, m, _ in rows if s != "shipml" and m]
    if ship and base:
        best, title = max(base)
        ratio = ship["ndcg@10"] / best if best > 0 else float("inf")
        out.append(f"- shipml NDCG@10 {ship['ndcg@10']:.4f} / best baseline ({title}) "
                   f"{best:.4f} = {ratio:.2f} (goal >= {GOAL_RATIO}): "
                   f"{_met(ratio >= GOAL_RATIO)}")  # fmt: skip
    cell = res["cells"].get("shipml", {})
    if cell.get("rows"):
        t, b = cell["rows"][0]["train_s"], cell["rows"][0]["config"]["time_budget"]
        src = cell.get("src", {})
        out.append(f"- shipml train {t:.1f} s at a {b:g} s budget (goal <= {b * BUDGET_SLACK:.0f}"
                   f" s): {_met(t <= b * BUDGET_SLACK)}; members: "
                   f"{_members(cell['info']['members'])}; shipml from {src.get('branch')}@"
                   f"{src.get('commit')}{' (dirty)' if src.get('dirty') else ''}")  # fmt: skip
    lat = res["cells"].get("latency")
    if lat and not lat.get("error"):
        ip, sv = lat["in_process"], lat.get("served", {})
        out.append(
            f"- latency cell: {lat['n_items']:,} items, {lat['n_users']:,} users, "
            f"{lat['n_events']:,} events; trained {lat['train_s']:.0f} s at a "
            f"{lat['budget']:g} s budget; members: {_members(lat['members'])}"
        )
        out.append(f"  - model.recommend(user=..., k=10): p50 {ip['p50_ms']:.2f} ms, p99 "
                   f"{ip['p99_ms']:.2f} ms over {ip['n']} requests")  # fmt: skip
        if "p99_ms" in sv:
            ok = sv["p99_ms"] <= GOAL_P99_MS
            out.append(f"  - served POST /v1/models/reclat/recommend (1 worker, sequential): p50 "
                       f"{sv['p50_ms']:.2f} ms, p99 {sv['p99_ms']:.2f} ms (goal <= "
                       f"{GOAL_P99_MS:g} ms): {_met(ok)}")  # fmt: skip
            if "health" in sv:
                h = sv["health"]
                out.append(f"  - GET /v2/health/ready, same client (the HTTP stack alone): p50 "
                           f"{h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms")  # fmt: skip
        else:
            out.append(f"  - served route: not measured ({sv.get('error', '?')[:300]})")
    elif lat:
        out.append(f"- latency cell: error {lat['error'][:300]}")
    return out


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _members(members: list[dict]) -> str:
    return ", ".join(f"{m['name']} {m['weight']:.2f}" for m in members)


if __name__ == "__main__":
    sys.exit(main())
