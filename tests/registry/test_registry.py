"""Versions, aliases, rollback, integrity and crash safety of the registry."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import shipml
from conftest import GERMAN
from shipml.errors import ArtifactIntegrityError, ModelNotFound, RegistryError
from shipml.registry.store import HEAD_REVISION, Registry


def fake_version(reg: Registry, name: str, payload: dict):
    w = reg.writer()
    w.write_json("model.json", payload)
    w.finish()
    return reg.register(name, w, task="binary", metrics={"primary": "roc_auc", "roc_auc": 0.8},
                        lineage={"rows": 1}, schema={"target": "y", "columns": []})  # fmt: skip


def test_versions_count_up_and_refs_resolve(tmp_path):
    reg = Registry(tmp_path)
    assert [fake_version(reg, "churn", {"i": i}).version for i in range(3)] == [1, 2, 3]
    assert reg.resolve("churn").version == 3
    assert reg.resolve("churn/2").version == 2
    assert reg.resolve("churn@1").version == 1
    reg.set_alias("churn", "production", 2)
    assert reg.resolve("churn@production").version == 2
    assert reg.get("churn", 2).aliases == ["production"]
    assert [m["name"] for m in reg.list_models()] == ["churn"]


def test_unknown_names_versions_and_aliases_are_clear(tmp_path):
    reg = Registry(tmp_path)
    fake_version(reg, "churn", {})
    with pytest.raises(ModelNotFound, match="Did you mean 'churn'"):
        reg.resolve("chrun")
    with pytest.raises(ModelNotFound, match="no version 7 \\(versions: 1\\)"):
        reg.resolve("churn/7")
    with pytest.raises(ModelNotFound, match="no alias 'staging'"):
        reg.resolve("churn@staging")
    with pytest.raises(RegistryError, match="bad model name"):
        reg.resolve(".hidden")
    with pytest.raises(ModelNotFound, match="after .* comes a version number"):
        reg.resolve("../etc")
    with pytest.raises(RegistryError, match="bad alias"):
        reg.set_alias("churn", "no spaces", 1)


def test_rollback_walks_back_through_promotions(tmp_path):
    reg = Registry(tmp_path)
    for i in range(3):
        fake_version(reg, "churn", {"i": i})
    reg.set_alias("churn", "production", 1)
    reg.set_alias("churn", "production", 3)
    reg.set_alias("churn", "production", 2)
    assert reg.rollback("churn") == (2, 3)
    assert reg.rollback("churn") == (3, 1)  # two rollbacks go two promotions back
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("churn")
    assert reg.resolve("churn@production").version == 1


def test_tampered_file_refuses_to_load(credit_model, registry_dir, tmp_path):
    import shutil

    reg = Registry(registry_dir)
    info = reg.resolve("credit/1")
    copy = Registry(tmp_path)  # tamper with a copy; the session's model stays intact
    w = copy.writer()
    for name in reg.open(info).files:
        w.write_bytes(name, (info.artifact_dir / name).read_bytes())
    w.finish()
    version = copy.register("credit", w, task=info.task, metrics=info.metrics,
                            lineage=info.lineage, schema=info.schema)  # fmt: skip
    assert shipml.load("credit", registry=copy).predict(GERMAN).shape == (1000,)
    victim = version.artifact_dir / "member0_0.txt"
    if not victim.exists():
        victim = next(p for p in version.artifact_dir.iterdir() if p.name.startswith("member"))
    victim.write_bytes(victim.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(ArtifactIntegrityError, match="modified after it was saved"):
        shipml.load("credit", registry=copy)
    (version.artifact_dir / "schema.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match="files missing: schema.json"):
        shipml.load("credit", registry=copy)
    shutil.rmtree(version.artifact_dir)
    with pytest.raises(ArtifactIntegrityError, match="manifest.json is missing"):
        shipml.load("credit", registry=copy)


def test_loading_never_unpickles(credit_model, registry_dir):
    """Only JSON, text and .npy (allow_pickle=False) files exist in a version."""
    info = Registry(registry_dir).resolve("credit/1")
    suffixes = {p.suffix for p in info.artifact_dir.iterdir()}
    assert suffixes <= {".json", ".txt", ".npy", ".html"}
    for npy in info.artifact_dir.glob("*.npy"):
        assert np.load(npy, allow_pickle=False).dtype != object


KILL_SCRIPT = textwrap.dedent("""
    import sys, shipml
    shipml.train(sys.argv[1], target="credit_risk", name="credit", time_budget=float(sys.argv[3]),
                 registry_uri=sys.argv[2], progress=False)
    print("DONE", flush=True)
""")


@pytest.mark.slow
def test_kill_9_during_train_leaves_no_half_version(tmp_path):
    """Kill the trainer at several moments: the registry holds only complete, loadable
    versions, and a later train still works."""
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    reg_dir = tmp_path / "reg"
    survived = 0
    for delay in (0.5, 3.0, 7.5, 9.5):
        proc = subprocess.Popen([sys.executable, str(script), str(GERMAN), str(reg_dir), "8"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        survived += b"DONE" in out
        if reg_dir.exists():
            reg = Registry(reg_dir)
            for version in reg.versions("credit") if reg.list_models() else []:
                model = shipml.load(version.ref, registry=reg)  # complete and verified
                assert model.predict(GERMAN).shape == (1000,)
    reg = Registry(reg_dir)
    before = len(reg.versions("credit")) if reg.list_models() else 0
    model = shipml.train(GERMAN, target="credit_risk", name="credit", time_budget=8,
                         registry=reg, progress=False)  # fmt: skip
    assert model.version == before + 1
    assert survived < 4  # the kills really interrupted training


def test_concurrent_registrations_get_distinct_versions(tmp_path):
    script = tmp_path / "reg.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        from shipml.registry.store import Registry
        reg = Registry(sys.argv[1])
        for i in range(5):
            w = reg.writer(); w.write_json("model.json", {"i": i}); w.finish()
            reg.register("m", w, task="binary", metrics={}, lineage={}, schema={})
    """)
    )
    Registry(tmp_path / "r")  # create the tables once
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "r")])
             for _ in range(3)]  # fmt: skip
    assert all(p.wait(timeout=120) == 0 for p in procs)
    versions = [v.version for v in Registry(tmp_path / "r").versions("m")]
    assert versions == list(range(1, 16))


def test_alembic_head_matches_the_constant():
    from alembic.script import ScriptDirectory

    from shipml.registry import store

    migrations = Path(store.__file__).parent / "migrations"
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_registry_in_a_folder_or_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    reg = Registry(url, artifact_root=tmp_path / "files")
    fake_version(reg, "a", {})
    assert (tmp_path / "meta.db").exists()
    assert any((tmp_path / "files" / "a").iterdir())
    assert json.loads((reg.resolve("a").artifact_dir / "manifest.json").read_text())["files"]
    os.environ["SHIPML_REGISTRY_URI"] = str(tmp_path / "env")
    try:
        assert Registry().url.endswith("env/registry.db")
    finally:
        del os.environ["SHIPML_REGISTRY_URI"]
