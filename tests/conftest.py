"""Shared fixtures: real data slices (tests/data, CC BY 4.0) and small trained models."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The suite's models are today's: the MLP family (learners/mlp.py, on by default for users) is
# switched off here and on in the tests that are about it (tests/learners/test_mlp.py, ...);
# so is the sequential recommender (learners/sasrec.py: tests/learners/test_sasrec.py).
os.environ.setdefault("SHIPML_FAMILIES", "-mlp,-sasrec")

ROOT = Path(__file__).resolve().parent.parent  # the repository (README.md, pyproject.toml, tools/)
DATA = ROOT / "tests" / "data"  # the datasets, whichever folder a test sits in
GERMAN = DATA / "german_credit.csv"


class Tick:
    """A clock that advances one second each time it is read: a run's step count then
    depends on the code alone, not on the machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


ADULT = DATA / "adult_slice.csv"
ADULT_TEST = DATA / "adult_test_slice.csv"
BANK = DATA / "bank_slice.csv"
AI4I = DATA / "ai4i_slice.csv"
BANKING = DATA / "banking77_slice.csv"  # 20 intents
BANKING_TEST = DATA / "banking77_test_slice.csv"
SHOP_EVENTS = DATA / "shop_log" / "events.csv"  # synthetic, CC0 (tests/data/shop_log/LICENSE)
SHOP_ITEMS = DATA / "shop_log" / "items.csv"
AI4I_LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF", "UDI", "Product ID"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's ~/.shipml: every test gets its own default registry."""
    monkeypatch.setenv("SHIPML_HOME", str(tmp_path_factory.mktemp("shipml-home")))
    monkeypatch.delenv("SHIPML_REGISTRY_URI", raising=False)


@pytest.fixture(scope="module")
def encoder():
    """The packaged all-MiniLM-L6-v2, no embedding cache (one per test module: tuning tests
    must not see another module's state)."""
    from shipml.encoders import load_encoder

    return load_encoder(cache=False)


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="session")
def german() -> pd.DataFrame:
    return pd.read_csv(GERMAN)


@pytest.fixture(scope="session")
def credit_model(registry_dir):
    """German credit, registered as 'credit' version 1 (small, fixed search)."""
    import shipml

    return shipml.train(GERMAN, target="credit_risk", name="credit", time_budget=60, n_trials=4,
                        registry_uri=str(registry_dir), progress=False)  # fmt: skip


@pytest.fixture(scope="session")
def torque_model(tmp_path_factory):
    """Regression on real sensor data: machine torque from the other readings (unregistered)."""
    import shipml

    frame = pd.read_csv(AI4I, encoding="utf-8-sig").drop(columns=AI4I_LEAKS + ["Machine_failure"])
    return shipml.train(frame, target="Torque [Nm]", time_budget=60, n_trials=3, progress=False)


class FakeClock:
    """Seconds that pass only when the test says so (`tick` per read, if given)."""

    def __init__(self, start: float = 100.0, tick: float = 0.0) -> None:
        self.t, self.tick = start, tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def fake_train_clock(monkeypatch, tick: float) -> FakeClock:
    """Make `shipml.train` run on a fake clock that moves `tick` seconds per reading (its CPU
    clock stands still: the plan sees no slowdown). Every deadline of the call, the tuning
    loop's included, is then the same however busy the machine is."""
    from shipml.planning import TimePlan

    clock = FakeClock(tick=tick)

    def plan(budget_s: float) -> TimePlan:
        return TimePlan(budget_s, clock=clock, cpu_clock=FakeClock())

    monkeypatch.setattr("shipml.training.TimePlan", plan)
    return clock


class Clock:
    """A clock that moves only when a test sets `now` (inject it where code reads the time)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_cli(args, capsys):
    """Run `shipml ARGS` in-process: (exit code, stdout, stderr)."""
    from shipml.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def copy_versions(registry_dir, dest, n: int = 2):
    """A registry of its own at `dest` with `n` versions of "credit" (copies of credit/1's files
    from the session registry), the production alias on version 1."""
    from shipml.registry.store import Registry

    source = Registry(registry_dir).resolve("credit/1")
    reg = Registry(dest)
    for _ in range(n):
        w = reg.writer()
        for name in reg.open(source).files:
            w.write_bytes(name, (source.artifact_dir / name).read_bytes())
        w.finish()
        reg.register("credit", w, task=source.task, metrics=source.metrics,
                     lineage=source.lineage, schema=source.schema)  # fmt: skip
    reg.set_alias("credit", "production", 1)
    return reg


def start_server(registry_dir, *refs: str, workers: int = 1, options=()):
    """`shipml serve` in a subprocess on a free port, waited on until ready: (process, base URL).
    `options`: more `shipml serve` arguments."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipml", "serve", *refs, "--port", str(port), "--workers",
         str(workers), "--registry-uri", str(registry_dir), *map(str, options)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    return proc, base


DEFECTS = DATA / "images" / "defects"  # ok / scratch / spot, 48 each, 64 px (CC0)


@pytest.fixture(scope="session")
def image_registry(tmp_path_factory) -> Path:
    """A registry of its own for the image model (tests that list models see only theirs)."""
    return tmp_path_factory.mktemp("image-registry")


@pytest.fixture(scope="session")
def defects_model(image_registry):
    """The defect photos, registered as 'defects' version 1: EfficientNet-Lite0 embeddings and
    a linear head (~15 s)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    import shipml

    return shipml.train(DEFECTS, name="defects", time_budget=30, n_trials=2, families=["linear"],
                        registry_uri=str(image_registry), progress=False)  # fmt: skip
