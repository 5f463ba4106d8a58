"""Storage: typed SQLAlchemy 2 models, portable between SQLite and PostgreSQL.

What may be stored is set by CRYPTO.md: `lookup`, `Z.pk`, envelopes,
coarse timestamps (minute) and expiry dates. Nothing about a citizen beyond
the thread itself. Every change to this file comes with an Alembic revision
in `gateway/migrations/versions/` (a test checks the head matches).
"""

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(64)
KID = String(24)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Deployment-wide values that belong with the data (e.g. `code_salt`)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created: Mapped[dt.datetime] = mapped_column(DateTime)


class TeamKey(Base):
    """A team key's public half; the secret half exists only as grants."""

    __tablename__ = "team_keys"
    kid: Mapped[str] = mapped_column(KID, primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    pk: Mapped[bytes] = mapped_column(LargeBinary(32))
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    retired: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Consultant(Base):
    """A consultant. Key material is null until enrolment and after removal."""

    __tablename__ = "consultants"
    username: Mapped[str] = mapped_column(ID, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # invited | active | removed
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(16), nullable=True)
    auth_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    pk: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    key_blob: Mapped[bytes | None] = mapped_column(LargeBinary(72), nullable=True)
    kdf_ops: Mapped[int] = mapped_column(Integer)
    kdf_mem: Mapped[int] = mapped_column(Integer)
    # The TOTP secret, sealed with a key derived from the server's secret file.
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(128), nullable=True)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    login_blocked_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime)


class Membership(Base):
    __tablename__ = "memberships"
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)


class Invite(Base):
    """A one-time enrolment token, stored only as its hash."""

    __tablename__ = "invites"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), index=True)
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(128), nullable=True)
    expires: Mapped[dt.datetime] = mapped_column(DateTime)


class Grant(Base):
    """`crypto_box_seal(T.sk, C.pk)`: a team secret key sealed to one member."""

    __tablename__ = "grants"
    kid: Mapped[str] = mapped_column(ForeignKey("team_keys.kid", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), primary_key=True)
    box: Mapped[bytes] = mapped_column(LargeBinary(80))
    created: Mapped[dt.datetime] = mapped_column(DateTime)


class StaffSession(Base):
    """A staff login; only the hash of the cookie value is stored."""

    __tablename__ = "staff_sessions"
    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime)


class Duty(Base):
    __tablename__ = "duty"
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), primary_key=True)


class Thread(Base):
    __tablename__ = "threads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # No index of its own: ix_threads_inbox and ix_threads_views begin with it (migration 0005).
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    lookup: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    citizen_pk: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="new")
    risk: Mapped[str] = mapped_column(String(16), default="unknown")
    assigned_to: Mapped[str | None] = mapped_column(
        ForeignKey("consultants.username", ondelete="SET NULL"), nullable=True, index=True
    )
    sealed_by: Mapped[str] = mapped_column(String(16))  # browser | server
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    last_activity: Mapped[dt.datetime] = mapped_column(DateTime)
    expires: Mapped[dt.date] = mapped_column(Date, index=True)
    # Last message seq handed out; bumped with UPDATE … RETURNING so several
    # gateway processes never hand out the same seq.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Bytes of the stored envelopes, for `limits.max_thread_bytes` (issue 8).
    total_bytes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Kept by a trigger on `messages` (migration 0004) for the inbox order (issue 13): who wrote
    # last, and the minute of the first citizen message nobody has answered yet.
    last_sender: Mapped[str | None] = mapped_column(String(16), nullable=True)
    waiting_since: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # The inbox order as stored numbers, kept by triggers (migration 0004, gateway.services.listing).
    inbox_rank: Mapped[int] = mapped_column(Integer, server_default="5")
    inbox_key: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Message(Base):
    __tablename__ = "messages"
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(16))  # citizen | consultant
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    envelope: Mapped[str] = mapped_column(Text)


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(ID)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    envelope: Mapped[str] = mapped_column(Text)


class EnvelopeKid(Base):
    """Which team kids a thread's stored envelopes use: crypto-shredding asks this."""

    __tablename__ = "envelope_kids"
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    kid: Mapped[str] = mapped_column(KID, primary_key=True, index=True)


class Event(Base):
    """Content-free events (`thread_new`, `message_new`, `thread_changed`), shared by every process."""

    __tablename__ = "events"
    # Ids are never reused (SQLite AUTOINCREMENT): streams read "id > the highest seen" (gateway.notify).
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    thread_id: Mapped[str] = mapped_column(String(32))
    created: Mapped[dt.datetime] = mapped_column(DateTime)


class Outbox(Base):
    """A content-free e-mail notification waiting for delivery (retried, claimed by one process)."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), index=True)
    due: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class RateLimit(Base):
    """A fixed-window counter shared by every process; `bucket` never holds a client address."""

    __tablename__ = "rate_limits"
    bucket: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)


class AuditEntry(Base):
    """Who did what, when: never content, never anything about a citizen."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")


class ReadMarker(Base):
    """How far a consultant has read a thread (staff metadata only)."""

    __tablename__ = "read_markers"
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True, index=True)
    seq: Mapped[int] = mapped_column(Integer)


class StaffPrefs(Base):
    """A consultant's opt-in notification choices, kept with them (never in the browser's storage)."""

    __tablename__ = "staff_prefs"
    username: Mapped[str] = mapped_column(ForeignKey("consultants.username", ondelete="CASCADE"), primary_key=True)
    desktop: Mapped[bool] = mapped_column(Boolean, default=False)
    sound: Mapped[bool] = mapped_column(Boolean, default=False)


class ReplyTemplate(Base):
    """A team's reply template, sealed to the team key like a note: the server never reads it."""

    __tablename__ = "reply_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(ID)
    created: Mapped[dt.datetime] = mapped_column(DateTime)
    envelope: Mapped[str] = mapped_column(Text)


Index("ix_threads_inbox", Thread.team_id, Thread.inbox_rank, Thread.inbox_key, Thread.id)
Index("ix_threads_views", Thread.team_id, Thread.status, Thread.risk, Thread.last_sender, Thread.assigned_to)
