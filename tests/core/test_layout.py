"""The test tree mirrors src/shipml (tests/README.md): no test file sits directly under tests/,
and every folder that holds Python files is a package, so that two test files of the same name
in two folders (tests/cli/test_cli.py, tests/recommend/test_cli.py) do not clash."""

from conftest import DATA, ROOT

TESTS = ROOT / "tests"
# folders that test across modules: the package surface, errors and files (core), the README
# and docstring examples (docs), attacks on every route and file format (security)
ACROSS = {"core", "docs", "security"}


def _test_folders() -> list:
    """Every folder under tests/ that holds Python files, the data folder excepted."""
    folders = {p.parent for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts}
    return sorted(f for f in folders if f != TESTS and DATA not in (f, *f.parents))


def test_no_test_file_sits_directly_under_tests():
    flat = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert flat == [], f"move these into the folder of the module they test: {flat}"


def test_every_test_folder_is_a_package():
    folders = _test_folders()
    assert TESTS / "core" in folders and TESTS / "recommend" in folders
    missing = [
        f"tests/{f.relative_to(TESTS)}" for f in folders if not (f / "__init__.py").is_file()
    ]
    assert missing == [], f"folders without __init__.py: {missing}"


def test_every_test_folder_is_named_after_a_part_of_shipml():
    """A subpackage or a top-level module of src/shipml (data -> data_io: tests/data holds the
    datasets), or one of the folders that test across modules."""
    src = ROOT / "src" / "shipml"
    parts = {p.stem for p in src.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    allowed = (parts - {"data", "__init__", "__main__"}) | {"data_io"} | ACROSS
    top = {f.relative_to(TESTS).parts[0] for f in _test_folders()}
    assert top <= allowed, f"not a part of src/shipml: {sorted(top - allowed)}"
