"""staff: event ids are never reused on SQLite

Every gateway process reads `events` with an id above the highest it has
seen. Without AUTOINCREMENT, SQLite hands out the id of a deleted newest row
again (after a purge of old events or a deleted thread), and that new event
would be skipped by every open inbox. PostgreSQL sequences never reuse ids.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 15:10:00
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("events", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("events", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
