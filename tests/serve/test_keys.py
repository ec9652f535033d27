"""API keys (serve/keys.py) and the serving tables of migration 0002, upgraded in place."""

import datetime as dt
import logging
import os
import secrets
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import Clock
from shipml.errors import AuthError, RegistryError
from shipml.registry import tables as t
from shipml.registry.store import Registry
from shipml.serve import keys as keys_module
from shipml.serve.keys import SCOPES, ApiKey, KeyStore

POSTGRES_URL = os.environ.get("SHIPML_TEST_POSTGRES_URL")


@pytest.fixture()
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "reg")


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def store(registry, clock) -> KeyStore:
    return KeyStore(registry.engine, clock=clock)


@pytest.fixture()
def hashes(monkeypatch) -> list:
    """Counts the HMAC computations: one per verification that reached the database."""
    calls = []
    real = keys_module._hash

    def counting(*args, **kwargs):
        calls.append(args[1])  # the secret presented
        return real(*args, **kwargs)

    monkeypatch.setattr(keys_module, "_hash", counting)
    return calls


def secret_of(key: str) -> str:
    return key.split("_", 2)[2]


def other_secret(key: str) -> str:
    head, secret = key[: -len(secret_of(key))], secret_of(key)
    return head + ("A" if secret[0] != "A" else "B") + secret[1:]


# -- create, verify, list, revoke ---------------------------------------------------------------
def test_create_verify_list_revoke(store):
    key = store.create("web-app", ["predict"])
    assert key.startswith("shipml_") and len(key) == 7 + 12 + 1 + 43
    found = store.verify(key)
    assert isinstance(found, ApiKey)
    assert (found.name, found.scopes, found.active) == ("web-app", ("predict",), True)
    assert found.prefix == key.split("_")[1]
    assert found.created_at.tzinfo is not None and found.last_used_at >= found.created_at
    assert store.verify("  " + key + "\n") == found  # header whitespace is tolerated
    assert [k.name for k in store.list()] == ["web-app"]

    store.revoke("web-app")
    assert store.verify(key) is None  # revoking through the same store: at once
    (listed,) = store.list()
    assert listed.revoked_at is not None and not listed.active
    assert store.list(include_revoked=False) == []

    again = store.create("web-app", "predict,feedback")  # a revoked name can be reused
    assert store.verify(again).scopes == ("predict", "feedback")
    assert store.verify(key) is None
    assert [(k.name, k.active) for k in store.list()] == [("web-app", False), ("web-app", True)]


def test_bad_missing_and_revoked_keys_are_401(store):
    key = store.create("svc", ["predict"])
    revoked = store.create("old", ["predict"])
    store.revoke("old")
    prefix = key.split("_")[1]
    unknown_prefix = key.replace(prefix, format(int(prefix, 16) ^ 1, "012x"))
    bad = [
        other_secret(key),
        unknown_prefix,
        revoked,
        key[:-1],
        key + "x",
        key.upper(),
        key.replace("shipml_", "sk_"),
        secret_of(key),
        "Bearer " + key,
        "shipml__" + secret_of(key),
        "garbage",
        "x" * 10_000,
    ]
    for presented in bad:
        assert store.verify(presented) is None, presented
        with pytest.raises(AuthError) as info:
            store.require(presented, "predict")
        assert info.value.status == 401
        assert secret_of(key) not in str(info.value) and presented not in str(info.value)
    for missing in (None, "", "   "):
        assert store.verify(missing) is None
        with pytest.raises(AuthError, match="no API key") as info:
            store.require(missing, "predict")
        assert info.value.status == 401
    assert store.require(key, "predict").name == "svc"


def test_scopes_wrong_scope_is_403_and_admin_implies_the_others(store):
    predict = store.create("predictor", ["predict"])
    feedback = store.create("labeller", ("feedback",))
    admin = store.create("ops", {"admin"})
    with pytest.raises(AuthError, match="'labeller' does not have the 'predict' scope") as info:
        store.require(feedback, "predict")
    assert info.value.status == 403
    with pytest.raises(AuthError) as info:
        store.require(predict, "admin")
    assert info.value.status == 403
    assert store.require(feedback, "feedback").name == "labeller"
    for scope in SCOPES:
        assert store.require(admin, scope).name == "ops"
    assert store.verify(admin).scopes == ("admin",)
    with pytest.raises(ValueError, match="unknown scope"):
        store.require(admin, "root")
    with pytest.raises(RegistryError, match="unknown API key scope 'root'"):
        store.create("x", ["predict", "root"])
    with pytest.raises(RegistryError, match="at least one scope"):
        store.create("x", [])
    assert store.list()[-1].name == "ops"  # nothing half-created


def test_names_duplicates_and_unknown_revokes_are_clear(store):
    store.create("a_b-1", ["predict"])
    for bad in ("", "has space", "x" * 101, "naïve", "a/b", None):
        with pytest.raises(RegistryError, match="bad API key name"):
            store.create(bad, ["predict"])
    assert store.create("x" * 100, ["predict"])
    with pytest.raises(RegistryError, match="already called 'a_b-1'"):
        store.create("a_b-1", ["admin"])
    with pytest.raises(RegistryError, match="no API key named 'nope' \\(active keys: a_b-1, x"):
        store.revoke("nope")
    store.revoke("a_b-1")
    with pytest.raises(RegistryError, match="'a_b-1' is already revoked"):
        store.revoke("a_b-1")


def test_the_database_enforces_one_active_key_per_name(registry, store):
    store.create("dup", ["predict"])
    row = dict(name="dup", hash="scrypt$1$1$1$00", salt="00", scopes="predict",
               created_at=dt.datetime.now(dt.timezone.utc))  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), registry.engine.begin() as conn:
        conn.execute(t.api_keys.insert().values(prefix="0" * 12, **row))
    store.revoke("dup")
    with registry.engine.begin() as conn:  # allowed once the other one is revoked
        conn.execute(t.api_keys.insert().values(prefix="1" * 12, **row))


# -- the secret is never kept --------------------------------------------------------------------
def test_the_secret_is_never_stored_logged_or_shown(registry, store, caplog):
    caplog.set_level(logging.DEBUG)
    created = [store.create(f"k{i}", ["predict", "feedback"]) for i in range(3)]
    for key in created:
        store.require(key, "predict")
    store.revoke("k0")
    with registry.engine.connect() as conn:
        cells = [str(v) for row in conn.execute(sa.select(t.api_keys)) for v in row]
    assert len(cells) == 3 * len(t.api_keys.columns)
    files = b"".join(p.read_bytes() for p in Path(registry.url[10:]).parent.glob("registry.db*"))
    shown = repr(store.list()) + str(store.list()) + repr(store) + caplog.text
    for key in created:
        secret = secret_of(key)
        assert not any(secret in cell or secret[:16] in cell for cell in cells)
        assert secret.encode() not in files and secret[:16].encode() not in files
        assert secret not in shown and key not in shown


def test_same_name_same_scopes_still_get_their_own_hash(registry, store):
    # HMAC-SHA-256 with the server's pepper (issue 13: scrypt made failed logins a CPU sink);
    # no salt is needed: each key's secret is 256 random bits of its own.
    store.create("twin", ["predict"])
    store.revoke("twin")
    store.create("twin", ["predict"])
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(t.api_keys.c.salt, t.api_keys.c.hash)).all()
    assert len({h for _, h in rows}) == 2 and {salt for salt, _ in rows} == {""}
    assert all(h.startswith("hmac-sha256$") and len(h.split("$")[-1]) == 64 for _, h in rows)


# -- cost, timing, caching -----------------------------------------------------------------------
def test_unknown_prefix_and_revoked_key_cost_one_hash_like_a_wrong_secret(store, hashes):
    key = store.create("svc", ["predict"])
    revoked = store.create("gone", ["predict"])
    store.revoke("gone")
    hashes.clear()
    prefix = key.split("_")[1]
    unknown = key.replace(prefix, "f" * 12 if prefix != "f" * 12 else "e" * 12)
    for presented in (other_secret(key), unknown, revoked, key):
        before = len(hashes)
        assert (store.verify(presented) is None) == (presented != key)
        assert len(hashes) == before + 1, presented
    before = len(hashes)
    assert store.verify("shipml_nothex_" + secret_of(key)) is None
    assert len(hashes) == before  # malformed: refused before hashing (reveals nothing)


def test_successful_verifications_are_cached_for_at_most_a_second(registry, clock, hashes):
    # Was a 60 s cache (scrypt was too slow to pay per request): a key revoked from the CLI was
    # still accepted for a minute. A check is now one lookup + one HMAC; the cache only spares
    # the event loop a database round trip, and is capped at 1 s.
    with pytest.raises(ValueError, match="cache_ttl must be between 0 and 1"):
        KeyStore(registry.engine, cache_ttl=60)
    server = KeyStore(registry.engine, clock=clock)
    admin = KeyStore(registry.engine)  # another process, e.g. the CLI
    key = admin.create("svc", ["predict"])
    hashes.clear()
    first = server.require(key, "predict")
    assert len(hashes) == 1
    for _ in range(100):
        assert server.require(key, "predict") == first
    assert len(hashes) == 1  # no database work within the second
    for _ in range(3):
        assert server.verify(other_secret(key)) is None  # failures are not cached
    assert len(hashes) == 4

    admin.revoke("svc")
    clock.now += 0.9
    assert server.verify(key) == first  # still cached for under a second
    clock.now += 0.2
    assert server.verify(key) is None  # the TTL passed: revoked
    with pytest.raises(AuthError) as info:
        server.require(key, "predict")
    assert info.value.status == 401


def test_a_revoke_during_a_verification_is_not_undone_by_the_cache(store, monkeypatch):
    key = store.create("svc", ["predict"])
    slow = store._verify_in_database

    def revoked_meanwhile(prefix, secret):
        found = slow(prefix, secret)  # passes: the key is still active here...
        store.revoke("svc")  # ...and another thread revokes it before the result is cached
        return found

    monkeypatch.setattr(store, "_verify_in_database", revoked_meanwhile)
    assert store.verify(key).name == "svc"
    monkeypatch.undo()
    assert store.verify(key) is None


def test_last_used_is_written_once_a_minute_and_the_cache_can_be_disabled(
    registry, clock, hashes, monkeypatch
):
    # last_used_at used to be written on each (60 s) cache miss; with a 1 s cache that would be
    # a database write per second per key, so it is now written when a minute old.
    wall = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]
    monkeypatch.setattr(keys_module, "_now", lambda: wall[0])
    server = KeyStore(registry.engine, clock=clock)
    key = server.create("svc", ["predict"])
    first = server.verify(key).last_used_at
    assert first == wall[0]
    for seconds in (1.5, 30, 59):
        clock.now += 1.5
        wall[0] = first + dt.timedelta(seconds=seconds)
        assert server.verify(key).last_used_at == first  # not rewritten within the minute
    clock.now += 1.5
    wall[0] = first + dt.timedelta(seconds=61)
    second = server.verify(key).last_used_at
    assert second == wall[0]
    assert KeyStore(registry.engine).list()[0].last_used_at == second
    uncached = KeyStore(registry.engine, cache_ttl=0, clock=clock)
    hashes.clear()
    for _ in range(3):
        assert uncached.verify(key).name == "svc"
    assert len(hashes) == 3


def test_cache_is_bounded_and_thread_safe(registry, clock):
    store = KeyStore(registry.engine, cache_size=2, clock=clock)
    created = [store.create(f"k{i}", ["predict"]) for i in range(4)]
    results, errors = [], []

    def work():
        try:
            for key in created * 3:
                results.append(store.verify(key).name)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(results) == 4 * 12 and set(results) == {"k0", "k1", "k2", "k3"}
    assert len(store._cache) <= 2


# -- the tables and the in-place upgrade from 0001 -------------------------------------------
def _migrate(url: str, target: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    from shipml.registry import store as store_module

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, target)
    finally:
        engine.dispose()


def _seed_0001(url: str) -> None:
    """What a registry made by shipml 0.1 holds: a model with a version and an alias."""
    now = dt.datetime.now(dt.timezone.utc)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        model_id = conn.execute(
            t.models.insert().values(name="churn", created_at=now)
        ).inserted_primary_key[0]
        conn.execute(
            t.versions.insert().values(model_id=model_id, version=1, created_at=now,
                                       artifact_dir="churn/x", task="binary",
                                       metrics={"auc": 0.9}, lineage={}, schema={})
        )  # fmt: skip
        conn.execute(
            t.aliases.insert().values(
                model_id=model_id, alias="production", version=1, updated_at=now
            )
        )
    engine.dispose()


SERVING = {"api_keys", "predictions", "feedback"}


def _check_upgraded(reg: Registry) -> None:
    inspector = sa.inspect(reg.engine)
    assert set(inspector.get_table_names()) >= SERVING
    with reg.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    indexes = {i["name"]: i for i in inspector.get_indexes("api_keys")}
    assert indexes["ix_api_keys_prefix"]["unique"]
    assert indexes["uq_api_keys_active_name"]["unique"]
    names = {tuple(i["column_names"]) for i in inspector.get_indexes("predictions")}
    assert {("created_at",), ("model", "created_at")} <= names
    fks = inspector.get_foreign_keys("feedback")
    assert fks[0]["referred_table"] == "predictions"

    # old data is still there and usable
    info = reg.resolve("churn@production")
    assert (info.version, info.metrics) == (1, {"auc": 0.9})

    # the new tables work as the server will use them
    store = KeyStore(reg.engine)
    key = store.create("svc", ["predict"])
    assert store.require(key, "predict").name == "svc"
    pid = str(uuid.uuid4())
    now = dt.datetime.now(dt.timezone.utc)
    with reg.engine.begin() as conn:
        conn.execute(
            t.predictions.insert().values(id=pid, model="churn", version=1, created_at=now,
                                          inputs={"age": 41, "email": "h:3f2a"},
                                          outputs={"label": "yes", "probabilities": [0.2, 0.8]},
                                          latency_ms=3.5, key_name="svc")
        )  # fmt: skip
        conn.execute(t.feedback.insert().values(prediction_id=pid, label="no", created_at=now))
    with reg.engine.connect() as conn:
        row = conn.execute(sa.select(t.predictions)).mappings().one()
        assert row["outputs"]["probabilities"] == [0.2, 0.8] and row["key_name"] == "svc"
        assert conn.execute(sa.select(t.feedback.c.label)).scalar() == "no"
    with pytest.raises(sa.exc.IntegrityError), reg.engine.begin() as conn:  # FK enforced
        conn.execute(t.feedback.insert().values(prediction_id="nope", label=1, created_at=now))


def test_a_0001_registry_upgrades_in_place_on_sqlite(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    url = f"sqlite:///{folder / 'registry.db'}"
    _migrate(url, "0001")
    _seed_0001(url)
    assert not SERVING & set(sa.inspect(sa.create_engine(url)).get_table_names())
    _check_upgraded(Registry(folder))
    # and back down (a downgrade drops only the serving tables), and up again
    _migrate(url, "0001", down=True)
    engine = sa.create_engine(url)
    assert not SERVING & set(sa.inspect(engine).get_table_names())
    engine.dispose()
    reg = Registry(folder)
    assert reg.resolve("churn").version == 1 and KeyStore(reg.engine).list() == []


@pytest.fixture()
def postgres_database():
    """A throw-away database on the test server (other tests use the shared one)."""
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL: run `bash .ci/postgres.sh` and set SHIPML_TEST_POSTGRES_URL")
    server = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"shipml_keys_{secrets.token_hex(4)}"
    with server.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        server.dispose()


def test_a_0001_registry_upgrades_in_place_on_postgres(postgres_database, tmp_path):
    _migrate(postgres_database, "0001")
    _seed_0001(postgres_database)
    reg = Registry(postgres_database, artifact_root=tmp_path / "artifacts")
    try:
        _check_upgraded(reg)
        store = KeyStore(reg.engine)
        store.create("twin", ["predict"])
        with pytest.raises(RegistryError, match="already called"):
            store.create("twin", ["admin"])
        store.revoke("twin")
        assert store.verify(store.create("twin", ["admin"])).scopes == ("admin",)
    finally:
        reg.engine.dispose()
    _migrate(postgres_database, "0001", down=True)
    engine = sa.create_engine(postgres_database)
    assert not SERVING & set(sa.inspect(engine).get_table_names())
    engine.dispose()
