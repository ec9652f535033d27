"""Package surface: fast CLI start, lazy imports, public API."""

import subprocess
import sys

import shipml

HEAVY = ["lightgbm", "sklearn", "matplotlib", "optuna", "pandas", "scipy", "torch", "transformers"]


def test_help_imports_no_machine_learning_library():
    code = (
        "import sys\n"
        "from shipml.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "train" in out.stdout and "models" in out.stdout


def test_import_shipml_is_lazy():
    code = f"import sys, shipml; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api():
    assert set(shipml.__all__) == {
        "train", "load", "Model", "Registry", "AutoClassifier", "AutoRegressor", "zero_shot",
        "ShipmlError",
        "DataError", "SchemaError", "TargetError", "ModelNotFound", "RegistryError",
        "ArtifactIntegrityError", "MissingDependency", "__version__",
    }  # fmt: skip
    for name in shipml.__all__:
        assert getattr(shipml, name) is not None
    assert issubclass(shipml.SchemaError, shipml.DataError)
    assert issubclass(shipml.DataError, ValueError)


def test_no_pickle_in_loading_code():
    from pathlib import Path

    src = Path(shipml.__file__).parent
    for path in src.rglob("*.py"):
        text = path.read_text()
        for bad in ("pickle.load", "joblib.load", "torch.load(", "allow_pickle=True"):
            assert bad not in text, f"{path}: {bad}"
