"""The registry: model names -> versions 1, 2, 3... -> aliases (production, staging, any word).

Metadata lives in a database through SQLAlchemy (a SQLite file by default, any SQLAlchemy URL
such as postgresql+psycopg://... for a team) and is created/upgraded in place by Alembic.
Files live under an artifact root, one folder per version. A version row is inserted only after
its folder is complete and published, so readers never see a half-written version.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from shipml.config import settings
from shipml.errors import ArtifactIntegrityError, ModelNotFound, RegistryError
from shipml.registry import tables as t
from shipml.registry.artifacts import ArtifactWriter, clean_stale_temp
from shipml.registry.formats import ArtifactReader

__all__ = ["Registry", "VersionInfo", "parse_ref", "HEAD_REVISION"]

HEAD_REVISION = "0002"  # newest Alembic revision in migrations/versions (a test checks it)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,49}$")


@dataclass
class VersionInfo:
    name: str
    version: int
    created_at: dt.datetime
    artifact_dir: Path
    task: str
    metrics: dict
    lineage: dict
    schema: dict
    aliases: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """ "churn" -> latest, "churn/3" or "churn@3" -> version 3, "churn@production" -> alias."""
    ref = ref.strip()
    name, version, alias = ref, None, None
    if "/" in ref:
        name, _, tail = ref.partition("/")
        if not tail.isdigit():
            raise ModelNotFound(f"bad model reference {ref!r}: after '/' comes a version number")
        version = int(tail)
    elif "@" in ref:
        name, _, tail = ref.partition("@")
        if tail.isdigit():
            version = int(tail)
        else:
            alias = tail
    check_name(name)
    return name, version, alias


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise RegistryError(
            f"bad model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100), "
            "starting with a letter or digit"
        )
    return name


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Registry:
    """Open (and create or upgrade) a registry.

    `uri`: a SQLAlchemy URL, or a folder path meaning "registry.db and artifacts/ in this
    folder"; default from SHIPML_REGISTRY_URI, else ~/.shipml (SHIPML_HOME).
    """

    def __init__(self, uri: str | Path | None = None, *, artifact_root: Path | None = None):
        cfg = settings(registry_uri=str(uri) if uri is not None else None)
        url = cfg.resolved_registry_uri()
        root = artifact_root or cfg.artifact_root
        if "://" not in url:  # a folder
            folder = Path(url).expanduser().resolve()
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'registry.db'}"
            root = root or folder / "artifacts"
        elif root is None:
            root = cfg.resolved_artifact_root()
        self.url = url
        self.artifact_root = Path(root).expanduser().resolve()
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        self.engine = _engine(url)
        _upgrade(self.engine)

    def __repr__(self) -> str:
        return f"Registry({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- writing -----------------------------------------------------------------------------
    def writer(self) -> ArtifactWriter:
        clean_stale_temp(self.artifact_root)
        return ArtifactWriter(self.artifact_root)

    def register(
        self,
        name: str,
        writer: ArtifactWriter,
        *,
        task: str,
        metrics: dict,
        lineage: dict,
        schema: dict,
    ) -> VersionInfo:
        """Publish the writer's finished folder and insert the version row (number = last + 1)."""
        check_name(name)
        dest = self.artifact_root / name / writer.id
        writer.publish(dest)
        rel = str(dest.relative_to(self.artifact_root))
        for _attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    model_id = self._model_id(conn, name, create=True)
                    last = conn.execute(
                        sa.select(sa.func.max(t.versions.c.version)).where(
                            t.versions.c.model_id == model_id
                        )
                    ).scalar()
                    number = (last or 0) + 1
                    conn.execute(
                        t.versions.insert().values(
                            model_id=model_id,
                            version=number,
                            created_at=_now(),
                            artifact_dir=rel,
                            task=task,
                            metrics=metrics,
                            lineage=lineage,
                            schema=schema,
                        )
                    )
                return self.get(name, number)
            except sa.exc.IntegrityError:
                continue  # another process took this number (or created the model): retry
        raise RegistryError(f"could not register a new version of {name!r}: too much contention")

    def _model_id(self, conn, name: str, *, create: bool = False) -> int:
        row = conn.execute(sa.select(t.models.c.id).where(t.models.c.name == name)).first()
        if row:
            return row[0]
        if not create:
            raise ModelNotFound(self._not_found_message(conn, name))
        return conn.execute(
            t.models.insert().values(name=name, created_at=_now())
        ).inserted_primary_key[0]

    def _not_found_message(self, conn, name: str) -> str:
        import difflib

        names = [r[0] for r in conn.execute(sa.select(t.models.c.name))]
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            return f"no model named {name!r}. Did you mean {close[0]!r}?"
        if names:
            return f"no model named {name!r}. Models: {', '.join(sorted(names)[:20])}"
        return f"no model named {name!r}: the registry at {self.url} is empty (train one first)"

    # -- reading -----------------------------------------------------------------------------
    def resolve(self, ref: str) -> VersionInfo:
        """A version from "name", "name/3", "name@3" or "name@alias"."""
        name, version, alias = parse_ref(ref)
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, name)
            if alias is not None:
                row = conn.execute(
                    sa.select(t.aliases.c.version).where(
                        t.aliases.c.model_id == model_id, t.aliases.c.alias == alias
                    )
                ).first()
                if row is None:
                    known = self._aliases(conn, model_id)
                    listed = ", ".join(f"{a}->{v}" for a, v in known) or "none"
                    raise ModelNotFound(
                        f"model {name!r} has no alias {alias!r} (aliases: {listed})"
                    )
                version = row[0]
            if version is None:
                version = conn.execute(
                    sa.select(sa.func.max(t.versions.c.version)).where(
                        t.versions.c.model_id == model_id
                    )
                ).scalar()
                if version is None:
                    raise ModelNotFound(f"model {name!r} has no versions")
        return self.get(name, version)

    def get(self, name: str, version: int) -> VersionInfo:
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, name)
            row = (
                conn.execute(
                    sa.select(t.versions).where(
                        t.versions.c.model_id == model_id, t.versions.c.version == version
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                have = [
                    r[0]
                    for r in conn.execute(
                        sa.select(t.versions.c.version)
                        .where(t.versions.c.model_id == model_id)
                        .order_by(t.versions.c.version)
                    )
                ]
                raise ModelNotFound(
                    f"model {name!r} has no version {version} (versions: "
                    f"{', '.join(map(str, have)) or 'none'})"
                )
            names = [a for a, v in self._aliases(conn, model_id) if v == version]
        return self._info(name, row, names)

    def _info(self, name: str, row, alias_names: list[str]) -> VersionInfo:
        return VersionInfo(
            name=name,
            version=row["version"],
            created_at=row["created_at"],
            artifact_dir=self.artifact_root / row["artifact_dir"],
            task=row["task"],
            metrics=row["metrics"],
            lineage=row["lineage"],
            schema=row["schema"],
            aliases=alias_names,
        )

    def _aliases(self, conn, model_id: int) -> list[tuple[str, int]]:
        rows = conn.execute(
            sa.select(t.aliases.c.alias, t.aliases.c.version)
            .where(t.aliases.c.model_id == model_id)
            .order_by(t.aliases.c.alias)
        )
        return [(a, v) for a, v in rows]

    def open(self, info: VersionInfo) -> ArtifactReader:
        return ArtifactReader(info.artifact_dir)

    def list_models(self) -> list[dict]:
        """One summary per model: name, latest version, count, aliases, last update."""
        out = []
        with self.engine.connect() as conn:
            models = conn.execute(
                sa.select(t.models.c.id, t.models.c.name).order_by(t.models.c.name)
            )
            for model_id, name in list(models):
                rows = conn.execute(
                    sa.select(
                        t.versions.c.version,
                        t.versions.c.created_at,
                        t.versions.c.task,
                        t.versions.c.metrics,
                    )
                    .where(t.versions.c.model_id == model_id)
                    .order_by(t.versions.c.version.desc())
                ).all()
                if not rows:
                    continue
                out.append(
                    {
                        "name": name,
                        "latest": rows[0][0],
                        "versions": len(rows),
                        "task": rows[0][2],
                        "updated": rows[0][1],
                        "metrics": rows[0][3],
                        "aliases": dict(self._aliases(conn, model_id)),
                    }
                )
        return out

    def versions(self, name: str) -> list[VersionInfo]:
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, name)
            aliases = self._aliases(conn, model_id)
            rows = (
                conn.execute(
                    sa.select(t.versions)
                    .where(t.versions.c.model_id == model_id)
                    .order_by(t.versions.c.version)
                )
                .mappings()
                .all()
            )
        return [self._info(name, r, [a for a, v in aliases if v == r["version"]]) for r in rows]

    # -- aliases -----------------------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int, *, action: str = "promote"
    ) -> int | None:
        """Point `alias` at `version`; returns the version it pointed to before (or None).

        The version's files are checked against their manifest first: servers following the
        alias would otherwise switch to files it cannot load (ArtifactIntegrityError, and the
        alias stays where it was)."""
        if not _ALIAS.match(alias) or alias.isdigit():
            raise RegistryError(
                f"bad alias {alias!r}: use letters, digits, '_' or '-', starting with a letter"
            )
        info = self.get(name, version)  # raises if absent
        try:
            self.open(info).verify_all()
        except ArtifactIntegrityError as exc:
            raise ArtifactIntegrityError(
                f"not moving {name}@{alias} to version {version}: {exc}"
            ) from exc
        with self.engine.begin() as conn:
            model_id = self._model_id(conn, name)
            where = (t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias)
            previous = conn.execute(sa.select(t.aliases.c.version).where(where)).scalar()
            if previous is None:
                conn.execute(
                    t.aliases.insert().values(
                        model_id=model_id, alias=alias, version=version, updated_at=_now()
                    )
                )
            else:
                conn.execute(
                    t.aliases.update().where(where).values(version=version, updated_at=_now())
                )
            conn.execute(
                t.alias_events.insert().values(
                    model_id=model_id,
                    alias=alias,
                    version=version,
                    previous_version=previous,
                    action=action,
                    at=_now(),
                )
            )
        return previous

    def rollback(self, name: str, alias: str = "production") -> tuple[int, int]:
        """Point `alias` back to the version it held before its last change: (from, to)."""
        with self.engine.connect() as conn:
            model_id = self._model_id(conn, name)
            current = conn.execute(
                sa.select(t.aliases.c.version).where(
                    t.aliases.c.model_id == model_id, t.aliases.c.alias == alias
                )
            ).scalar()
            if current is None:
                raise RegistryError(f"model {name!r} has no alias {alias!r} to roll back")
            events = conn.execute(
                sa.select(t.alias_events.c.version, t.alias_events.c.action)
                .where(t.alias_events.c.model_id == model_id, t.alias_events.c.alias == alias)
                .order_by(t.alias_events.c.id)
            ).all()
        # Replay the alias history as a stack: a promote pushes, a rollback pops. Rolling back
        # twice goes two promotions back, never toggles between the last two.
        stack: list[int] = []
        for version, action in events:
            if action == "rollback":
                if stack:
                    stack.pop()
            elif not stack or stack[-1] != version:
                stack.append(version)
        if len(stack) < 2:
            raise RegistryError(
                f"alias {alias!r} of {name!r} has no earlier version to roll back to "
                f"(it points to version {current} and has no older promotion)"
            )
        target = stack[-2]
        self.set_alias(name, alias, target, action="rollback")
        return current, target


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers (a server) never block a writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        from shipml.errors import MissingDependency

        raise MissingDependency(
            f'the registry URL needs the driver {exc.name!r}: pip install "shipml[postgres]"'
        ) from exc
    except sa.exc.ArgumentError as exc:
        raise RegistryError(f"bad registry URL {url!r}: {exc}") from exc


def _upgrade(engine: sa.Engine) -> None:
    """Create or upgrade the tables in place (Alembic), skipped when already at the head."""
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if current == HEAD_REVISION:
            return
    except sa.exc.OperationalError as exc:
        if "no such table" not in str(exc).lower() and "does not exist" not in str(exc).lower():
            raise RegistryError(f"cannot open the registry database: {exc}") from exc
    except sa.exc.ProgrammingError:
        pass  # postgres: relation does not exist
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
