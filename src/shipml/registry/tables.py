"""Registry tables (SQLAlchemy Core). Changes go through an Alembic migration in migrations/."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("artifact_dir", sa.String(1000), nullable=False),
    sa.Column("task", sa.String(20), nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("previous_version", sa.Integer, nullable=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# -- serving (migration 0002) ----------------------------------------------------------------
# API keys: only a salted hash of the secret is stored; `prefix` is the public part used to find
# the row. A name is unique among keys that are not revoked (partial unique index, SQLite and
# PostgreSQL both support it), so a revoked name can be reused.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(200), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_api_keys_prefix", "prefix", unique=True),
    sa.Index(
        "uq_api_keys_active_name",
        "name",
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    ),
)

# The prediction log, written by the server: one row per predicted record.
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # a UUID
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("inputs", sa.JSON, nullable=False),  # PII columns already replaced by keyed hashes
    sa.Column("outputs", sa.JSON, nullable=False),  # label / probabilities / value
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("key_name", sa.String(100), nullable=True),
    sa.Index("ix_predictions_model_created_at", "model", "created_at"),
)

# Ground truth sent back for a logged prediction (at most one label per prediction).
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("prediction_id", sa.String(36), sa.ForeignKey("predictions.id"), primary_key=True),
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_name", sa.String(100), nullable=True),
)
