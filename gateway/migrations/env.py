"""Alembic environment: runs on a connection handed in by `gateway.migrate`.

Migrations run inside the caller's event loop (connection sharing), so the
same code upgrades SQLite and PostgreSQL from `fristed init`, `serve` and tests.
"""

from alembic import context

from gateway.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through gateway.migrate, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
