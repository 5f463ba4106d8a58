"""inbox: who wrote last and since when a citizen waits; read markers, notification choices, reply templates

Issue 13. The inbox orders by danger, then by how long a citizen has waited
for an answer. Two columns on `threads` answer that without reading any
message: `last_sender` (citizen | consultant) and `waiting_since` (the minute
of the first citizen message nobody has answered yet, null once a consultant
replied). A trigger on `messages` keeps both, so every write path (browser,
no-script, the group-commit writer, restore) keeps them true without knowing
about the inbox. NOTE: on SQLite a later migration that recreates `messages`
(`batch_alter_table(..., recreate="always")`) drops the trigger and must
create it again (`gateway.inbox_triggers.sqlite_triggers(guarded=True)`, as 0005 does).

New tables (staff metadata only, never content):
* `read_markers`: how far each consultant has read each thread (a seq);
* `staff_prefs`: a consultant's opt-in desktop notification and sound;
* `reply_templates`: a team's reply templates, sealed to the team key like notes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:20:00
"""

import sqlalchemy as sa
from alembic import op

from gateway.inbox_triggers import SQLITE_NAMES, pg_triggers, sqlite_triggers


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The trigger SQL lives in gateway.inbox_triggers (migration 0005 guards the same statements).
SQLITE_TRIGGERS = sqlite_triggers(guarded=False)
PG_TRIGGERS = pg_triggers(guarded=False)

# Existing threads: the last message's sender, and the first citizen message after the last consultant one.
BACKFILL = """
UPDATE threads SET
  last_sender = (SELECT m.sender FROM messages m WHERE m.thread_id = threads.id ORDER BY m.seq DESC LIMIT 1),
  waiting_since = (
    SELECT MIN(m.at) FROM messages m
    WHERE m.thread_id = threads.id AND m.sender = 'citizen' AND m.seq > COALESCE(
      (SELECT MAX(c.seq) FROM messages c WHERE c.thread_id = threads.id AND c.sender = 'consultant'), 0)
  )
"""


def create_triggers() -> None:
    for statement in PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("last_sender", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("waiting_since", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("inbox_rank", sa.Integer(), nullable=False, server_default="5"))
        batch.add_column(sa.Column("inbox_key", sa.BigInteger(), nullable=False, server_default="0"))
    create_triggers()
    op.execute(BACKFILL)  # through the threads trigger: also sets inbox_rank and inbox_key
    op.create_index("ix_threads_inbox", "threads", ["team_id", "inbox_rank", "inbox_key", "id"], unique=False)
    # The view counts read only this index (gateway.services.listing.counts_of).
    op.create_index("ix_threads_views", "threads", ["team_id", "status", "risk", "last_sender", "assigned_to"], unique=False)
    op.create_table(
        "read_markers",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["consultants.username"], name=op.f("fk_read_markers_username_consultants"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], name=op.f("fk_read_markers_thread_id_threads"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("username", "thread_id", name=op.f("pk_read_markers")),
    )
    op.create_index(op.f("ix_read_markers_thread_id"), "read_markers", ["thread_id"], unique=False)
    op.create_table(
        "staff_prefs",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("desktop", sa.Boolean(), nullable=False),
        sa.Column("sound", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["consultants.username"], name=op.f("fk_staff_prefs_username_consultants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_staff_prefs")),
    )
    op.create_table(
        "reply_templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_reply_templates_team_id_teams"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_templates")),
    )
    op.create_index(op.f("ix_reply_templates_team_id"), "reply_templates", ["team_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_reply_templates_team_id"), table_name="reply_templates")
    op.drop_table("reply_templates")
    op.drop_table("staff_prefs")
    op.drop_index(op.f("ix_read_markers_thread_id"), table_name="read_markers")
    op.drop_table("read_markers")
    op.drop_index("ix_threads_views", table_name="threads")
    op.drop_index("ix_threads_inbox", table_name="threads")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_threads_inbox ON threads")
        op.execute("DROP TRIGGER IF EXISTS trg_messages_inbox ON messages")
        op.execute("DROP FUNCTION IF EXISTS fristed_threads_inbox()")
        op.execute("DROP FUNCTION IF EXISTS fristed_messages_inbox()")
    else:
        for name in SQLITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("threads") as batch:
        for column in ("inbox_key", "inbox_rank", "waiting_since", "last_sender"):
            batch.drop_column(column)
