"""Alembic environment: shipml runs migrations itself with a live connection (Registry opens)."""

from alembic import context

from shipml.registry.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
