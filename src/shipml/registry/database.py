"""Opening the registry's database: the engine, its tables created or upgraded in place
(Alembic), and the checks that keep a damaged or lost database from passing as an empty one.

A registry's versions live in two places: rows in the database, files under the artifact root.
A new, empty database over an artifact root that already holds versions would orphan those
files (and lose every version number, alias and API key) while `models list` says "no models
yet", so shipml refuses to create one there. A damaged database (not a database at all, cut
short, tables missing, or upgraded by a newer shipml) raises RegistryDamaged saying so and what
to do, at open time and on any later query.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shipml.errors import MissingDependency, RegistryDamaged, RegistryError
from shipml.registry import tables as t

__all__ = ["HEAD_REVISION", "open_engine", "stored_versions"]

HEAD_REVISION = "0002"  # newest Alembic revision in migrations/versions (a test checks it)
_MIGRATIONS = Path(__file__).parent / "migrations"
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_CORRUPT_TEXT = ("file is not a database", "database disk image is malformed")
_CONNECT_TIMEOUT_S = 10  # an unreachable server fails in seconds, not after TCP's minutes


def open_engine(url: str, artifact_root: Path) -> sa.Engine:
    """The registry's engine, its tables at the newest revision. Raises RegistryDamaged for a
    damaged database or one that would orphan the versions under `artifact_root`."""
    where = describe(url)
    db_file = sqlite_file(url)
    if db_file is not None:
        _refuse_orphaning(db_file, artifact_root, where)
    engine = _engine(url, where)
    try:
        _upgrade(engine, artifact_root, where, db_file)
    except BaseException:
        engine.dispose()
        raise
    return engine


def describe(url: str) -> str:
    """How messages name the database: its file, or its URL without the password."""
    db_file = sqlite_file(url)
    if db_file is not None:
        return str(db_file)
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def stored_versions(artifact_root: Path) -> dict[str, int]:
    """Published versions under an artifact root: {model name: folders with a manifest}."""
    found: dict[str, int] = {}
    if not artifact_root.is_dir():
        return found
    for model in artifact_root.iterdir():
        if model.name.startswith(".") or not model.is_dir():
            continue  # .tmp holds unfinished writes
        count = sum(1 for v in model.iterdir() if (v / "manifest.json").is_file())
        if count:
            found[model.name] = count
    return found


# -- checks ------------------------------------------------------------------------------------
def _refuse_orphaning(db_file: Path, artifact_root: Path, where: str) -> None:
    """Before SQLite touches the file: connecting creates a missing or 0-byte file's header."""
    if db_file.is_file() and db_file.stat().st_size > 0:
        return
    state = "empty (0 bytes)" if db_file.is_file() else "missing"
    _refuse_if_versions(artifact_root, where, state)


def _refuse_if_versions(artifact_root: Path, where: str, state: str) -> None:
    versions = stored_versions(artifact_root)
    if not versions:
        return
    names = ", ".join(sorted(versions)[:10]) + (", ..." if len(versions) > 10 else "")
    raise RegistryDamaged(
        f"the registry database {where} is {state}, but {artifact_root} holds "
        f"{sum(versions.values())} stored version(s) of {len(versions)} model(s) ({names}). "
        "shipml will not start a new, empty registry over them (their version numbers, "
        f"aliases and API keys would be lost). Restore {where} from a backup, or move "
        f"{artifact_root} elsewhere to start a new registry"
    )


def _damaged(where: str, reason: str) -> RegistryDamaged:
    return RegistryDamaged(
        f"registry database {where} is damaged ({reason}): restore it from a backup. The model "
        "files are untouched; to start a new, empty registry instead, move the database and "
        "the artifacts folder elsewhere"
    )


# -- engine ------------------------------------------------------------------------------------
def _engine(url: str, where: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers (a server) never block a writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "handle_error")
        def _corrupt(context) -> None:  # on any query, not only when the registry opens
            reason = _corruption(context.original_exception)
            if reason:
                raise _damaged(where, reason) from context.original_exception

        return engine
    try:
        args = {}
        if url.startswith("postgresql") and "connect_timeout" not in url:
            args["connect_timeout"] = _CONNECT_TIMEOUT_S
        return sa.create_engine(url, pool_pre_ping=True, connect_args=args)
    except ModuleNotFoundError as exc:
        raise MissingDependency(
            f'the registry URL needs the driver {exc.name!r}: pip install "shipml[postgres]"'
        ) from exc
    except sa.exc.ArgumentError as exc:
        raise RegistryError(f"bad registry URL {where!r}: {exc}") from exc


def _corruption(exc: BaseException | None) -> str | None:
    """SQLite's words for a damaged file, or None for any other error (e.g. a lock)."""
    if exc is None or type(exc).__module__.split(".")[0] != "sqlite3":
        return None
    text = " ".join(str(exc).split())
    if getattr(exc, "sqlite_errorname", None) in _CORRUPT or text.lower() in _CORRUPT_TEXT:
        return text
    return None


# -- tables ------------------------------------------------------------------------------------
def _upgrade(engine: sa.Engine, artifact_root: Path, where: str, db_file: Path | None) -> None:
    """Create or upgrade the tables in place (Alembic), skipped when already at the head."""
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            current = None
            if "alembic_version" in names:
                current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.OperationalError as exc:
        verb = "open" if db_file is not None else "reach"
        raise RegistryError(
            f"cannot {verb} the registry database {where} ({_brief(exc)}): check that it "
            "exists, is readable and (for a server) that the server runs and the URL is right"
        ) from exc
    ours = set(t.metadata.tables)
    if current == HEAD_REVISION:
        if ours - names:
            raise _damaged(where, f"tables missing: {', '.join(sorted(ours - names))}")
        return
    if current is None:
        if ours & names:
            raise _damaged(where, "it has shipml's tables but no alembic_version table")
        _refuse_if_versions(artifact_root, where, "empty (no tables)")
    elif current not in _known_revisions():
        raise RegistryDamaged(
            f"registry database {where} is at schema revision {current!r}, which this shipml "
            f"does not know (it knows up to {HEAD_REVISION}): it was upgraded by a newer "
            "shipml. Upgrade shipml (pip install -U shipml), or restore a backup made before "
            "that upgrade"
        )
    _run_migrations(engine)


def _brief(exc: sa.exc.DBAPIError) -> str:
    return " ".join(str(exc.orig).split())[:300] if exc.orig is not None else str(exc)[:300]


def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def _run_migrations(engine: sa.Engine) -> None:
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
