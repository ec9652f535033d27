"""The registry on PostgreSQL (a team's shared registry). `.ci/run` starts a server and sets
SHIPML_TEST_POSTGRES_URL; `bash .ci/postgres.sh` does the same on a developer machine."""

import os

import pytest
import sqlalchemy as sa

import shipml
from conftest import GERMAN
from shipml.registry.store import Registry

URL = os.environ.get("SHIPML_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="no PostgreSQL: run `bash .ci/postgres.sh` and set SHIPML_TEST_POSTGRES_URL"
)


@pytest.fixture()
def empty_postgres():
    engine = sa.create_engine(URL)
    with engine.begin() as conn:
        for table in (
            "feedback",
            "predictions",
            "api_keys",
            "alias_events",
            "aliases",
            "versions",
            "models",
            "alembic_version",
        ):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    engine.dispose()
    return URL


def test_train_load_promote_rollback_on_postgres(empty_postgres, tmp_path):
    reg = Registry(empty_postgres, artifact_root=tmp_path / "artifacts")
    first = shipml.train(GERMAN, target="credit_risk", name="credit", n_trials=1, registry=reg,
                         progress=False, report=False)  # fmt: skip
    second = shipml.train(GERMAN, target="credit_risk", name="credit", n_trials=2, registry=reg,
                          progress=False, report=False)  # fmt: skip
    assert (first.version, second.version) == (1, 2)
    reg.set_alias("credit", "production", 1)
    reg.set_alias("credit", "production", 2)
    assert reg.rollback("credit") == (2, 1)
    again = Registry(empty_postgres, artifact_root=tmp_path / "artifacts")  # tables exist now
    loaded = shipml.load("credit@production", registry=again)
    assert loaded.version == 1
    assert (loaded.predict(GERMAN) == first.predict(GERMAN)).all()
    listed = again.list_models()
    assert listed[0]["name"] == "credit" and listed[0]["versions"] == 2
    assert listed[0]["metrics"]["primary"] == "roc_auc"
