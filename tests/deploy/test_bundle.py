"""`shipml bundle`: the Dockerfile by inspection (no Docker engine here), the pinned requirements,
the shipml wheel, the copied registry, and the bundled registry served for real."""

import hashlib
import json
import re
import shutil
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import httpx
import pandas as pd
import pytest

import shipml
from conftest import GERMAN, run_cli, start_server
from shipml.registry.formats import ArtifactReader
from shipml.registry.store import Registry

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def source(credit_model, registry_dir, tmp_path_factory) -> Path:
    """A registry of its own holding credit versions 1 and 2, production -> 2 (the shared
    registry's aliases stay untouched)."""
    folder = tmp_path_factory.mktemp("bundle-source")
    shared = Registry(registry_dir)
    original = shared.open(shared.get("credit", credit_model.version))
    reg = Registry(folder)
    for _ in range(2):
        writer = reg.writer()
        for name in original.files:
            writer.write_bytes(name, original.read_bytes(name))
        writer.finish()
        info = shared.get("credit", credit_model.version)
        reg.register("credit", writer, task=info.task, metrics=info.metrics,
                     lineage=info.lineage, schema=info.schema)  # fmt: skip
    reg.set_alias("credit", "production", 2)
    return folder


@pytest.fixture(scope="module")
def bundle(source, tmp_path_factory) -> Path:
    """One bundle (with a freshly built wheel) shared by the inspection tests."""
    from shipml.deploy import write_bundle

    out = tmp_path_factory.mktemp("bundle-out") / "dist"
    assert write_bundle(str(source), "credit@production", out) == out
    return out


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_by_inspection(bundle):
    steps = instructions(bundle / "Dockerfile")
    kinds = [k for k, _ in steps]
    assert steps[0] == ("FROM", f"python:{PYTHON}-slim")
    text = (bundle / "Dockerfile").read_text()
    assert "latest" not in text.lower()
    env = " ".join(args for kind, args in steps if kind == "ENV")
    for setting in ("OMP_WAIT_POLICY=PASSIVE", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
                    "SHIPML_REGISTRY_URI=/app/registry"):  # fmt: skip
        assert setting in env
    runs = [args for kind, args in steps if kind == "RUN"]
    apt = next(r for r in runs if "apt-get install" in r)
    assert "libgomp1" in apt and "--no-install-recommends" in apt
    assert "rm -rf /var/lib/apt/lists/*" in apt
    pips = [r for r in runs if "pip install" in r]
    assert len(pips) == 2 and all("--no-cache-dir" in r for r in pips)
    assert "-r /app/requirements.txt" in pips[0]
    assert re.search(r"--no-deps /tmp/wheels/shipml-[^ ]+\.whl", pips[1])
    # a fixed non-root uid, owning the registry; USER after every install and COPY, before CMD
    user = next(args for kind, args in steps if kind == "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    assert any(f"useradd --system --uid {uid}" in r for r in runs)
    copies = [args for kind, args in steps if kind == "COPY"]
    assert f"--chown={uid}:{uid} registry/ /app/registry/" in copies
    last_build_step = max(i for i, k in enumerate(kinds) if k in ("RUN", "COPY"))
    assert last_build_step < kinds.index("USER") < kinds.index("CMD") == len(kinds) - 1
    # every COPY source is in the bundle and kept by .dockerignore
    ignore = (bundle / ".dockerignore").read_text().splitlines()
    for args in copies:
        src = [a for a in args.split() if not a.startswith("--")][0]
        assert (bundle / src).exists() and f"!{src}" in ignore
    # health, port, command
    assert ("EXPOSE", "8080") in steps
    health = next(args for kind, args in steps if kind == "HEALTHCHECK")
    probe = json.loads(health.split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"] and "http://127.0.0.1:8080/v2/health/ready" in probe[2]
    compile(probe[2], "healthcheck", "exec")
    cmd = json.loads(steps[-1][1])
    assert cmd == ["shipml", "serve", "credit@production", "--host", "0.0.0.0", "--port", "8080"]


def test_requirements_are_exact_pins_of_this_environment(bundle):
    lines = [
        line
        for line in (bundle / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s=;,]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[match[1].lower().replace("_", "-")] = match[2]
    for needed in ("lightgbm", "numpy", "pandas", "scikit-learn", "sqlalchemy", "alembic",
                   "fastapi", "uvicorn", "starlette", "pydantic", "typer"):  # fmt: skip
        assert needed in pins, needed
        assert pins[needed] == metadata.version(needed)
    for dev_only in ("pytest", "ruff", "hypothesis", "tritonclient", "shipml", "flaml"):
        assert dev_only not in pins


def test_bundled_registry_is_a_sha256_checked_copy(bundle, source):
    reg = Registry(bundle / "registry")
    info = reg.resolve("credit@production")
    assert (info.name, info.version, info.aliases) == ("credit", 2, ["production"])
    assert [v.version for v in reg.versions("credit")] == [2]
    assert info.artifact_dir.is_relative_to((bundle / "registry").resolve())
    manifest = json.loads((info.artifact_dir / "manifest.json").read_text())["files"]
    for name, digest in manifest.items():
        assert hashlib.sha256((info.artifact_dir / name).read_bytes()).hexdigest() == digest
    ArtifactReader(info.artifact_dir).verify_all()
    original = Registry(source).resolve("credit@production")
    assert manifest == ArtifactReader(original.artifact_dir).files
    assert info.created_at == original.created_at and info.metrics == original.metrics
    facts = json.loads((bundle / "bundle.json").read_text())
    assert facts["model"] == {"name": "credit", "version": 2, "aliases": ["production"],
                              "task": info.task}  # fmt: skip
    for rel, digest in facts["files"].items():
        if rel != "registry/registry.db":  # changes once keys are created
            assert hashlib.sha256((bundle / rel).read_bytes()).hexdigest() == digest, rel


def test_wheel_is_the_running_shipml(bundle):
    wheels = list((bundle / "wheels").glob("*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert re.search(rf"^Version: {re.escape(shipml.__version__)}$", meta, re.MULTILINE)
    assert "shipml/cli/serve.py" in names and "shipml/deploy/bundle.py" in names
    assert any(n.startswith("shipml/registry/migrations/versions/") for n in names)
    assert (bundle / "Dockerfile").read_text().count(wheels[0].name) == 1


def test_readme_says_how_to_build_run_and_create_a_key(bundle):
    readme = (bundle / "README.md").read_text()
    for needed in ("docker build -t credit .", "shipml keys create", "-v credit-registry:/app/",
                   "SHIPML_REGISTRY_URI", "/v1/models/credit/predict", "Bearer"):  # fmt: skip
        assert needed in readme
    body = re.search(r"-d '(\{.*\})'", readme)[1]
    assert set(json.loads(body)["records"][0]) <= set(pd.read_csv(GERMAN, nrows=1).columns)


@pytest.mark.slow
def test_bundled_registry_serves_the_same_predictions(bundle, credit_model, tmp_path, capsys):
    # serve a copy, as the image does (its own folder, another path: nothing points outside)
    served = tmp_path / "app-registry"
    shutil.copytree(bundle / "registry", served)
    code, out, err = run_cli(["keys", "create", "--name", "app", "--registry-uri", served], capsys)
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    proc, base = start_server(served, "credit@production")
    try:
        records = pd.read_csv(GERMAN).drop(columns="credit_risk").head(5).to_dict("records")
        res = httpx.post(f"{base}/v1/models/credit/predict", json={"records": records},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["version"] == 2
        expected = credit_model.predict_proba(records)
        labels = credit_model.predict(records)
        for row, (_, want), label in zip(body["predictions"], expected.iterrows(), labels):
            assert row["label"] == label
            for cls in credit_model.classes:
                assert row["probabilities"][str(cls)] == pytest.approx(want[cls], abs=1e-6)
        res = httpx.post(f"{base}/v1/models/credit/predict", json={"records": records}, timeout=30)
        assert res.status_code == 401
    finally:
        proc.terminate()
        _, server_err = proc.communicate(timeout=30)
    assert b"Traceback" not in server_err


def test_rebundle_replaces_a_previous_bundle(bundle, source, tmp_path, capsys):
    out = tmp_path / "dist"
    wheel = next((bundle / "wheels").glob("*.whl"))
    args = ["bundle", "credit/1", "-o", out, "--registry-uri", source, "--wheel", wheel,
            "--port", "9000"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    code, out_text, err = run_cli(args, capsys)  # a previous bundle is replaced without --force
    assert code == 0, err
    assert "credit/1 bundled" in out_text and f"docker build -t credit {out}" in out_text
    assert "keys create" in out_text
    steps = instructions(out / "Dockerfile")
    assert json.loads(steps[-1][1])[2:] == ["credit/1", "--host", "0.0.0.0", "--port", "9000"]
    assert Registry(out / "registry").resolve("credit/1").aliases == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]  # no temp folders left


def test_non_empty_folder_needs_force(bundle, source, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    wheel = next((bundle / "wheels").glob("*.whl"))
    args = ["bundle", "credit@production", "-o", out, "--registry-uri", source, "--wheel", wheel]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "not empty" in err and "--force" in err and "Traceback" not in err
    assert (out / "notes.txt").read_text() == "keep me"
    assert run_cli([*args, "--force"], capsys)[0] == 0
    assert not (out / "notes.txt").exists() and (out / "Dockerfile").is_file()


@pytest.mark.parametrize(
    ("ref", "message"),
    [("nope@production", "no model named 'nope'"), ("credit@canary", "has no alias 'canary'")],
)
def test_unknown_ref_is_one_line_and_writes_nothing(source, tmp_path, capsys, ref, message):
    out = tmp_path / "dist"
    code, _, err = run_cli(["bundle", ref, "-o", out, "--registry-uri", source], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_bad_wheel_and_extra_are_user_errors(bundle, source, tmp_path, capsys):
    not_a_wheel = tmp_path / "x.txt"
    not_a_wheel.write_text("x")
    base = ["bundle", "credit", "-o", tmp_path / "dist", "--registry-uri", source]
    code, _, err = run_cli([*base, "--wheel", not_a_wheel], capsys)
    assert code == 2 and "not a wheel" in err
    wheel = next((bundle / "wheels").glob("*.whl"))
    code, _, err = run_cli([*base, "--wheel", wheel, "--extra", "gpu"], capsys)
    assert code == 2 and "unknown shipml extra" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_a_failed_bundle_keeps_the_previous_one(bundle, source, tmp_path, monkeypatch):
    from shipml.deploy import bundle as bundle_module
    from shipml.deploy import pins

    out = tmp_path / "dist"
    shutil.copytree(bundle, out)
    before = (out / "bundle.json").read_text()

    def broken(*_args, **_kwargs):
        raise shipml.ShipmlError("simulated failure")

    monkeypatch.setattr(pins, "pinned_requirements", broken)
    wheel = next((bundle / "wheels").glob("*.whl"))
    with pytest.raises(shipml.ShipmlError, match="simulated"):
        bundle_module.write_bundle(str(source), "credit/1", out, wheel=wheel)
    assert (out / "bundle.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]
