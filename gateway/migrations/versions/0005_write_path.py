"""the write path: inbox triggers write only what changes; two unused thread indexes go

Issue 9. The triggers of migration 0004 rewrote a thread's row on every
message, then again for its inbox order, even when nothing changed: a
creation wrote the new row four times, and a citizen's reply to a thread
already waiting for an answer wrote it three times. The same triggers now
carry their change as a condition (`gateway.inbox_triggers`, guarded), so
a row is written only when `last_sender`, `waiting_since` or the inbox
order really change. On PostgreSQL the order is set in a BEFORE trigger
(no extra write); only the messages function gains the condition.

Two indexes of `threads` cost every creation and reply an index write and
served no query: `ix_threads_team_id` (ix_threads_inbox and ix_threads_views
begin with team_id) and `ix_threads_team_activity` (the inbox reads in
ix_threads_inbox's order since issue 13).

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
    op.drop_index("ix_threads_team_activity", table_name="threads")
    op.drop_index("ix_threads_team_id", table_name="threads")


def downgrade() -> None:
    op.create_index("ix_threads_team_id", "threads", ["team_id"], unique=False)
    op.create_index("ix_threads_team_activity", "threads", ["team_id", "last_activity"], unique=False)
    _replace(guarded=False)
