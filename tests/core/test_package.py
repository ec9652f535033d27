"""Package surface: fast CLI start, lazy imports, public API."""

import subprocess
import sys

import shipml
from conftest import ROOT

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
        for bad in ("pickle.load", "joblib.load", "allow_pickle=True"):
            assert bad not in text, f"{path}: {bad}"
        # one exception: converting the packaged EfficientNet-Lite0 state dict to safetensors,
        # tensors only, never when a model loads
        loads = [line for line in text.splitlines() if "torch.load(" in line]
        allowed = path == src / "encoders" / "image.py"
        assert not loads or (allowed and all("weights_only=True" in x for x in loads)), path


# Extras for developing and measuring shipml: they do not count as declaring what src/ imports.
_NOT_RUNTIME = {"dev", "bench", "lexicon"}


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    import tomllib
    from packaging.requirements import Requirement

    pyproject = ROOT / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        if extra not in _NOT_RUNTIME:
            lines += reqs
    return {_canonical(Requirement(line).name) for line in lines}


def _third_party_imports() -> dict[str, str]:
    """Top-level module -> the first file importing it, for every import in src/shipml (also
    inside functions and try blocks) that is neither the standard library nor shipml."""
    import ast
    from pathlib import Path

    found: dict[str, str] = {}
    src = Path(shipml.__file__).parent
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "shipml" and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(src)))
    return found


def test_every_imported_package_is_declared():
    from importlib.metadata import packages_distributions

    declared = _declared()
    dists = packages_distributions()
    imports = _third_party_imports()
    assert {"numpy", "scipy", "lightgbm", "packaging", "tokenizers"} <= set(imports)  # it looks
    missing = []
    for module, where in sorted(imports.items()):
        names = {_canonical(d) for d in dists.get(module, [])}
        if not names:
            missing.append(f"{module} ({where}): not installed, so its distribution is unknown")
        elif not names & declared:
            missing.append(f"{module} ({where}): declare {' or '.join(sorted(names))}")
    assert not missing, "imported but not in pyproject.toml (core or a runtime extra):\n" + (
        "\n".join(missing)
    )


def test_version_has_one_source():
    from importlib.metadata import version

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in text and 'attr = "shipml.__version__"' in text
    assert version("shipml") == shipml.__version__


def _private_owner(target: list[str], src) -> str | None:
    """The package that owns the first private part of the dotted `target` (a module or a
    module's name), or None when no part is private."""
    for i, part in enumerate(target):
        if part.startswith("_") and not part.startswith("__"):
            owner = target[:i]
            if not (src.joinpath(*owner[1:]) / "__init__.py").exists():
                owner = owner[:-1]  # a name in a module: the module's package owns it
            return ".".join(owner)
    return None


def test_no_module_imports_another_package_s_private_names():
    """A `_private` module or name is used only inside the package that holds it (a name other
    packages need is public: encoders.deps, not encoders._deps)."""
    import ast
    from pathlib import Path

    src = Path(shipml.__file__).parent
    found = []
    for path in src.rglob("*.py"):
        parts = ["shipml", *path.relative_to(src).with_suffix("").parts]
        package = ".".join(parts if path.name == "__init__.py" else parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shipml"):
                targets = [[*node.module.split("."), a.name] for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names if a.name.startswith("shipml")]
            else:
                continue
            for target in targets:
                owner = _private_owner(target, src)
                if owner is not None and not (package + ".").startswith(owner + "."):
                    found.append(f"{path.relative_to(src)}:{node.lineno} {'.'.join(target)}")
    assert not found, found
