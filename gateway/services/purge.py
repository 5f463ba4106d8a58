"""Retention: expired threads are deleted for real and unused team keys are shredded.

A thread whose `expires` date is D is readable through D and purged from D+1
(PRODUCT.md promise 3). Purging deletes the thread's rows (messages, notes,
envelope kids, events); then every retired team key whose kid no stored
envelope uses is deleted with all its grants (CRYPTO.md "Rotation and
shredding"). On SQLite the file is then compacted (`VACUUM`, WAL truncated) so
the deleted bytes are gone from the database file and its WAL too; every
connection already runs with `secure_delete=ON` (`gateway.db`).

Audit entries that name a purged thread keep the action but lose the thread
id. The same pass expires housekeeping rows (old events, stale notifications,
expired invites, idle staff sessions, old rate-limit windows) and audit
entries older than `audit_retention_days`. Only counts come out of here.

Several gateway processes may run: `purge_loop` claims each round through a
conditional UPDATE of one `meta` row (a lease), and the purge itself is one
transaction that locks what it deletes, so running it twice is harmless.
"""

import asyncio
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass

from aiohttp import web
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gateway.appkeys import DB, SETTINGS
from gateway.db import Database, is_sqlite, utcnow
from gateway.models import (
    AuditEntry,
    EnvelopeKid,
    Event,
    Grant,
    Invite,
    Message,
    Meta,
    Note,
    Outbox,
    RateLimit,
    StaffSession,
    TeamKey,
    Thread,
)
from gateway.services import audit
from gateway.settings import Settings

log = logging.getLogger("fristed.purge")

# How long housekeeping rows are kept: live events only matter to open inboxes,
# a notification that could not be delivered in a day is stale.
EVENT_KEEP = dt.timedelta(days=1)
OUTBOX_KEEP = dt.timedelta(days=1)
# Rate-limit rows (`window_start` in Unix seconds) matter for a day at most (gateway.services.login).
RATE_LIMIT_KEEP = dt.timedelta(days=2)
LEASE_KEY = "purge_next"
LEASE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # fixed width, so the strings compare like the times
CHUNK = 500
# The first round waits until the gateway has settled after start.
FIRST_ROUND_DELAY = 10.0
# Tables whose rows a purge deletes: PostgreSQL vacuums them afterwards.
PURGED_TABLES = ("messages", "notes", "envelope_kids", "events", "threads", "grants", "team_keys", "audit")


@dataclass(frozen=True)
class PurgeCounts:
    """What a purge deleted (or, on a dry run, would delete): numbers only."""

    threads: int = 0
    messages: int = 0
    notes: int = 0
    keys_shredded: int = 0
    audit_expired: int = 0
    events: int = 0
    notifications: int = 0
    invites: int = 0
    sessions: int = 0
    rate_limits: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def content_deleted(self) -> bool:
        """Whether rows that held ciphertext or key material went (then the file is compacted)."""
        return bool(self.threads or self.keys_shredded)

    @property
    def anything(self) -> bool:
        return any(self.as_dict().values())

    def detail(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.as_dict().items())


def today() -> dt.date:
    return utcnow().date()


async def _count(session: AsyncSession, model: type, *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _housekeeping_rules(settings: Settings, now: dt.datetime) -> list[tuple[str, type, ColumnElement[bool]]]:
    idle = now - dt.timedelta(minutes=settings.session_idle_minutes)
    oldest_session = now - dt.timedelta(hours=settings.session_max_hours)
    return [
        ("audit_expired", AuditEntry, AuditEntry.at < now - dt.timedelta(days=settings.audit_retention_days)),
        ("events", Event, Event.created < now - EVENT_KEEP),
        ("notifications", Outbox, Outbox.due < now - OUTBOX_KEEP),
        ("invites", Invite, Invite.expires < now),
        ("sessions", StaffSession, (StaffSession.last_seen < idle) | (StaffSession.created < oldest_session)),
        (
            "rate_limits",
            RateLimit,
            RateLimit.window_start < int((now - RATE_LIMIT_KEEP).replace(tzinfo=dt.UTC).timestamp()),
        ),
    ]


async def _expired_thread_counts(session: AsyncSession, ids: Sequence[str]) -> tuple[int, int]:
    messages = notes = 0
    for chunk in _chunks(ids):
        messages += await _count(session, Message, Message.thread_id.in_(chunk))
        notes += await _count(session, Note, Note.thread_id.in_(chunk))
    return messages, notes


def _shreddable() -> ColumnElement[bool]:
    """Retired keys that no stored envelope uses."""
    return TeamKey.current.is_(False) & TeamKey.kid.not_in(select(EnvelopeKid.kid))


async def preview(db: Database, settings: Settings, as_of: dt.date) -> PurgeCounts:
    """What `purge` would delete now, deleting nothing."""
    now = utcnow()
    async with db.read() as session:
        ids = list(await session.scalars(select(Thread.id).where(Thread.expires < as_of)))
        messages, notes = await _expired_thread_counts(session, ids)
        still_used = select(EnvelopeKid.kid).join(Thread, Thread.id == EnvelopeKid.thread_id).where(
            Thread.expires >= as_of
        )
        keys = await _count(session, TeamKey, TeamKey.current.is_(False), TeamKey.kid.not_in(still_used))
        extra = {name: await _count(session, model, where) for name, model, where in _housekeeping_rules(settings, now)}
    return PurgeCounts(threads=len(ids), messages=messages, notes=notes, keys_shredded=keys, **extra)


async def purge(db: Database, settings: Settings, as_of: dt.date, actor: str, *, record_empty: bool = True) -> PurgeCounts:
    """Delete threads expired as of `as_of`, shred unused keys, expire housekeeping rows.

    `as_of` moves thread expiry only; sessions, invites and the audit log
    expire against the real clock. The counts are audited (with `actor`).
    """
    now = utcnow()
    async with db.write() as session:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
        # writers): a reply renewing a thread right now either commits first,
        # and the renewed thread no longer matches, or waits for the purge.
        ids = list(await session.scalars(select(Thread.id).where(Thread.expires < as_of).with_for_update()))
        messages, notes = await _expired_thread_counts(session, ids)
        for chunk in _chunks(ids):
            await session.execute(delete(Event).where(Event.thread_id.in_(chunk)))
            await session.execute(delete(Message).where(Message.thread_id.in_(chunk)))
            await session.execute(delete(Note).where(Note.thread_id.in_(chunk)))
            await session.execute(delete(EnvelopeKid).where(EnvelopeKid.thread_id.in_(chunk)))
            await session.execute(delete(Thread).where(Thread.id.in_(chunk)))
        for thread_id in ids:
            # Staff actions name the thread they touched; once it is gone, so is the link.
            mention = f"thread={thread_id}"
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.detail.contains(mention, autoescape=True))
                .values(detail=func.replace(AuditEntry.detail, mention, "thread=(purged)"))
            )
        extra = {}
        for name, model, where in _housekeeping_rules(settings, now):
            extra[name] = await _count(session, model, where)
            if extra[name]:
                await session.execute(delete(model).where(where))
    keys = await shred_keys(db)
    counts = PurgeCounts(threads=len(ids), messages=messages, notes=notes, keys_shredded=keys, **extra)
    if record_empty or counts.anything:
        async with db.write() as session:
            audit.record(session, actor, "purge", counts.detail())
    if counts.content_deleted:
        await compact(db, settings)
    return counts


async def shred_keys(db: Database) -> int:
    """Delete every retired team key no stored envelope uses, with all its grants.

    On PostgreSQL a message being written right now may have checked its
    envelope against a key that a rotation has just retired, and not yet
    inserted its `envelope_kids` row. `LOCK TABLE team_keys` waits for every
    transaction that has read the team keys, so after it the envelope kids are
    complete. SQLite's writers (BEGIN IMMEDIATE) are already serialised.
    The lock is taken in a transaction of its own, holding nothing else, and
    only when there is something to shred.
    """
    async with db.read() as session:
        if not await _count(session, TeamKey, _shreddable()):
            return 0
    async with db.write() as session:
        if db.engine.dialect.name == "postgresql":
            await session.execute(text("SET LOCAL lock_timeout = '10s'"))
            await session.execute(text("LOCK TABLE team_keys IN ACCESS EXCLUSIVE MODE"))
        kids = list(await session.scalars(select(TeamKey.kid).where(_shreddable())))
        for chunk in _chunks(kids):
            await session.execute(delete(Grant).where(Grant.kid.in_(chunk)))
            await session.execute(delete(TeamKey).where(TeamKey.kid.in_(chunk)))
    return len(kids)


async def compact(db: Database, settings: Settings) -> None:
    """Make deleted bytes really go: SQLite rewrites the file and empties the WAL; PostgreSQL vacuums."""
    if is_sqlite(settings.database_url):
        path = make_url(settings.database_url).database
        if path and path != ":memory:":
            await asyncio.to_thread(compact_sqlite, path)
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in PURGED_TABLES:
            await conn.exec_driver_sql(f"VACUUM {table}")


def compact_sqlite(path: str) -> None:
    """Checkpoint and truncate the WAL, VACUUM, and truncate the WAL again (VACUUM writes through it)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA secure_delete=ON")
        _checkpoint(connection)
        connection.execute("VACUUM")
        _checkpoint(connection)
    finally:
        connection.close()


def _checkpoint(connection: sqlite3.Connection) -> None:
    for _attempt in range(50):
        busy, _log, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        # A reader still uses the WAL; it lets go within milliseconds.
        time.sleep(0.1)
    log.warning("the WAL could not be truncated: a reader kept it busy; the next purge tries again")


# --- the gateway's own schedule ------------------------------------------------------------


def _lease_value(moment: dt.datetime) -> str:
    return moment.strftime(LEASE_FORMAT)


async def claim_round(db: Database, interval: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Whether this process runs this round's purge: one conditional UPDATE wins per interval.

    The `meta` row holds the time the next round is due; a process that moves
    it forward (from a due value) owns the round. Nothing is held in memory,
    and a process that dies mid-round only delays the next one.
    """
    now = now or utcnow()
    try:
        async with db.write() as session:
            row = await session.get(Meta, LEASE_KEY)
            if row is None:
                session.add(Meta(key=LEASE_KEY, value=_lease_value(now + interval)))
                await session.flush()
                return True
            result = await session.execute(
                update(Meta)
                .where(Meta.key == LEASE_KEY, Meta.value <= _lease_value(now))
                .values(value=_lease_value(now + interval))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
    except IntegrityError:
        # Another process inserted the row first: it owns this round.
        return False


async def run_round(db: Database, settings: Settings) -> PurgeCounts | None:
    """One scheduled round: purge if this process wins the round."""
    interval = dt.timedelta(minutes=settings.purge_interval_minutes)
    if not await claim_round(db, interval):
        return None
    counts = await purge(db, settings, today(), "gateway", record_empty=False)
    if counts.anything:
        log.info("purge: %s", counts.detail())
    return counts


async def purge_loop(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: purge soon after start and every `[purge] interval_minutes`, in one process per round."""
    task = asyncio.create_task(_loop(app[DB], app[SETTINGS]), name="fristed-purge")
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def _loop(db: Database, settings: Settings) -> None:
    # Rounds are checked a little more often than the interval, so a round a
    # dead process had claimed is picked up by another without a long wait.
    pause = max(30.0, settings.purge_interval_minutes * 60 / 4)
    await asyncio.sleep(FIRST_ROUND_DELAY)
    while True:
        try:
            await run_round(db, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the scheduled purge failed; it runs again next round")
        await asyncio.sleep(pause)
