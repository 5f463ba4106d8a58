"""inbox triggers write only what changes

Issue 9. The triggers of migration 0004 rewrote a thread's row on every
message, then again for its inbox order, even when nothing changed: a
creation wrote the new row four times, and a citizen's reply to a thread
already waiting for an answer wrote it three times. The same triggers now
carry their change as a condition (`gateway.inbox_triggers`, guarded), so
a row is written only when `last_sender`, `waiting_since` or the inbox
order really change. On PostgreSQL the order is set in a BEFORE trigger
(no extra write); only the messages function gains the condition.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:30:00
"""

from alembic import op

from gateway.inbox_triggers import SQLITE_NAMES, pg_messages_function, sqlite_triggers

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _replace(guarded: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(pg_messages_function(guarded=guarded))
        return
    for name in SQLITE_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in sqlite_triggers(guarded=guarded):
        op.execute(statement)


def upgrade() -> None:
    _replace(guarded=True)


def downgrade() -> None:
    _replace(guarded=False)
