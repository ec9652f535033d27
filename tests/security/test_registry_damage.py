"""A damaged or lost registry database is reported as such (exit 2, what to do), never rebuilt
as an empty registry over stored versions, never an "internal error" (issue 13, item 9).

Data: the session's German-credit model (conftest credit_model), copied into a throw-away
registry folder per test (SQLite's backup API, so the copy is consistent while the session's
registry stays open)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli
from shipml.errors import RegistryDamaged, RegistryError, ShipmlError
from shipml.registry.store import Registry


@pytest.fixture()
def folder(credit_model, registry_dir, tmp_path) -> Path:
    """A registry folder holding a real version: registry.db and artifacts/."""
    out = tmp_path / "reg"
    out.mkdir()
    source = sqlite3.connect(registry_dir / "registry.db")
    target = sqlite3.connect(out / "registry.db")
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no WAL beside it
    source.close()
    target.close()
    shutil.copytree(registry_dir / "artifacts", out / "artifacts")
    return out


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def models_list(folder: Path, capsys) -> tuple[int, str]:
    code, out, err = run_cli(["models", "list", "--registry-uri", folder], capsys)
    assert "internal error" not in err and "Traceback" not in err + out
    return code, err


def tables(db: Path) -> list:
    """The schema and the Alembic revision: what an upgrade or a rebuild would change."""
    with sqlite3.connect(db) as conn:
        schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        names = {name for _, name, _ in schema}
        revision = (
            conn.execute("SELECT version_num FROM alembic_version").fetchall()
            if "alembic_version" in names
            else None
        )
    return [schema, revision]


def assert_damaged(folder: Path, capsys, reason: str, *, file_level: bool = True) -> None:
    """`file_level`: the file is no database any more (its bytes must stay as they are);
    else SQLite opens it, and the schema and revision must stay as they are."""
    db = folder / "registry.db"
    artifacts = snapshot(folder / "artifacts")
    before = db.read_bytes() if file_level else tables(db)
    code, err = models_list(folder, capsys)
    assert code == 2, err
    assert f"registry database {db} is damaged ({reason}" in err
    assert "restore it from a backup" in err
    assert snapshot(folder / "artifacts") == artifacts  # nothing repaired, rebuilt or removed
    assert (db.read_bytes() if file_level else tables(db)) == before


@pytest.mark.parametrize("state", ["0-byte", "missing"])
def test_no_new_database_over_stored_versions(folder, capsys, state):
    db = folder / "registry.db"
    if state == "0-byte":
        db.write_bytes(b"")
    else:
        db.unlink()
    artifacts = snapshot(folder / "artifacts")
    code, err = models_list(folder, capsys)
    assert code == 2, err
    assert "no models yet" not in err
    assert "will not start a new, empty registry" in err
    assert "1 stored version(s) of 1 model(s) (credit)" in err
    assert "Restore" in err and "from a backup" in err
    assert snapshot(folder / "artifacts") == artifacts
    assert db.exists() == (state == "0-byte") and (not db.exists() or db.stat().st_size == 0)
    with pytest.raises(RegistryDamaged) as exc:  # the Python API: a ShipmlError subclass
        Registry(folder)
    assert isinstance(exc.value, RegistryError) and isinstance(exc.value, ShipmlError)


def test_random_bytes_are_a_damaged_database(folder, capsys):
    db = folder / "registry.db"
    db.write_bytes(bytes(range(256)) * (db.stat().st_size // 256))
    assert_damaged(folder, capsys, "file is not a database")
    with pytest.raises(RegistryDamaged, match="is damaged"):
        Registry(folder)


@pytest.mark.parametrize("keep", ["half", "pages"])
def test_a_truncated_copy_is_a_damaged_database(folder, capsys, keep):
    db = folder / "registry.db"
    data = db.read_bytes()
    page = 4096
    size = len(data) // 2 + 123 if keep == "half" else (len(data) // page // 2) * page
    db.write_bytes(data[:size])
    assert_damaged(folder, capsys, "database disk image is malformed")


def test_damage_found_by_a_later_query_is_reported_too(folder, capsys):
    """The versions table's page overwritten: the registry opens, listing its models fails."""
    db = folder / "registry.db"
    with sqlite3.connect(db) as conn:
        sql = "SELECT rootpage FROM sqlite_master WHERE name = 'versions'"
        page = conn.execute(sql).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\xff" * size)
    reg = Registry(folder)  # opening reads only the schema and alembic_version
    with pytest.raises(RegistryDamaged, match="database disk image is malformed"):
        reg.list_models()
    reg.engine.dispose()
    assert_damaged(folder, capsys, "database disk image is malformed", file_level=False)


def test_tables_without_alembic_version(folder, capsys):
    with sqlite3.connect(folder / "registry.db") as conn:
        conn.execute("DROP TABLE alembic_version")
    assert_damaged(
        folder, capsys, "it has shipml's tables but no alembic_version table", file_level=False
    )


def test_a_missing_table(folder, capsys):
    with sqlite3.connect(folder / "registry.db") as conn:
        conn.execute("DROP TABLE aliases")
    assert_damaged(folder, capsys, "tables missing: aliases", file_level=False)


def test_a_database_from_a_newer_shipml(folder, capsys):
    with sqlite3.connect(folder / "registry.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    before = tables(folder / "registry.db")
    code, err = models_list(folder, capsys)
    assert code == 2, err
    assert "schema revision '0999', which this shipml does not know" in err
    assert "Upgrade shipml" in err
    assert tables(folder / "registry.db") == before


def test_a_fresh_folder_still_becomes_a_registry(tmp_path, capsys):
    code, out, err = run_cli(["models", "list", "--registry-uri", tmp_path / "new"], capsys)
    assert code == 0, err
    assert "no models yet" in out
    assert (tmp_path / "new" / "registry.db").stat().st_size > 0
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "registry.db").write_bytes(b"")  # 0 bytes, no versions: fine too
    assert Registry(tmp_path / "old").list_models() == []


def test_an_unreachable_postgres_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://shipml:s3cret-pw@127.0.0.1:{port}/registry"
    code, out, err = run_cli(["models", "list", "--registry-uri", url], capsys)
    assert code == 2, err
    assert "internal error" not in err and "Traceback" not in err
    masked = f"postgresql+psycopg://shipml:***@127.0.0.1:{port}/registry"
    assert f"cannot reach the registry database {masked}" in " ".join(err.split())
    assert "s3cret-pw" not in err + out
