"""abuse: each thread counts the bytes of its stored envelopes

`limits.max_thread_bytes` caps what one thread can take (issue 8): a running
total kept beside `last_seq` answers the cap without reading every envelope.
Existing threads get their real total.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:10:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("total_bytes", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE threads SET total_bytes = COALESCE("
        "(SELECT SUM(LENGTH(envelope)) FROM messages WHERE messages.thread_id = threads.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("total_bytes")
