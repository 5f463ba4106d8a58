"""Retention: expired threads are deleted for real and unused team keys are shredded.

A thread whose `expires` date is D is readable through D and purged from D+1
(PRODUCT.md promise 3). Purging deletes the thread's rows (messages, notes,
envelope kids, events); then every retired team key whose kid no stored
envelope uses is deleted with all its grants (CRYPTO.md "Rotation and
shredding"). Audit entries that name a purged thread keep the action and the
actor but lose the thread id and what they said about it (`sweep_orphans`).

Everything is set-based and in short transactions: `THREAD_CHUNK` threads at a
time, a handful of statements each, so a purge of 100,000 threads never holds
the write lock for long and citizens' writes slip in between chunks (issue 9).
Deleted bytes are overwritten by the deleting transaction itself
(`secure_delete=ON` on every connection, `gateway.db`); the WAL is then
emptied (`gateway.scrub`), so nothing of a purged thread stays in any file.
On PostgreSQL the purged tables are vacuumed (SECURITY.md says what that does
and does not overwrite).

The same pass expires housekeeping rows (old events, stale notifications,
expired invites, idle staff sessions, old rate-limit windows) and audit
entries older than `audit_retention_days`. Only counts come out of here.

Several gateway processes may run: `purge_loop` claims each round through a
conditional UPDATE of one `meta` row (a lease); each chunk locks the rows it
deletes (`FOR UPDATE SKIP LOCKED` on PostgreSQL, BEGIN IMMEDIATE on SQLite), so
two purges at once delete each thread once.
"""

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, Connection, String, any_, bindparam, delete, exists, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ColumnElement

from gateway import scrub
from gateway.db import Database, utcnow
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
from gateway.writer import Tx

if TYPE_CHECKING:  # `fristed purge` runs without the web server: aiohttp only for the scheduled purge
    from aiohttp import web

log = logging.getLogger("fristed.purge")

# How long housekeeping rows are kept: live events only matter to open inboxes,
# a notification that could not be delivered in a day is stale.
EVENT_KEEP = dt.timedelta(days=1)
OUTBOX_KEEP = dt.timedelta(days=1)
# Rate-limit rows (`window_start` in Unix seconds) matter for a day at most (gateway.services.login).
RATE_LIMIT_KEEP = dt.timedelta(days=2)
LEASE_KEY = "purge_next"
LEASE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # fixed width, so the strings compare like the times
# Threads per unit of the group writer: large enough that 100,000 go in a few seconds, small
# enough that one chunk holds the write lock for tens of milliseconds.
THREAD_CHUNK = 2000
CHUNK = 500  # keys per statement when shredding
SWEEP_STEP = 20_000  # event or audit ids per transaction when sweeping what names a purged thread
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
        """Whether rows that held ciphertext or key material went (then the files are scrubbed)."""
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


def _shreddable() -> ColumnElement[bool]:
    """Retired keys that no stored envelope uses."""
    return TeamKey.current.is_(False) & TeamKey.kid.not_in(select(EnvelopeKid.kid))


async def preview(db: Database, settings: Settings, as_of: dt.date) -> PurgeCounts:
    """What `purge` would delete now, deleting nothing."""
    now = utcnow()
    expired = select(Thread.id).where(Thread.expires < as_of)
    async with db.read() as session:
        threads = await _count(session, Thread, Thread.expires < as_of)
        messages = await _count(session, Message, Message.thread_id.in_(expired))
        notes = await _count(session, Note, Note.thread_id.in_(expired))
        still_used = select(EnvelopeKid.kid).join(Thread, Thread.id == EnvelopeKid.thread_id).where(
            Thread.expires >= as_of
        )
        keys = await _count(session, TeamKey, TeamKey.current.is_(False), TeamKey.kid.not_in(still_used))
        extra = {name: await _count(session, model, where) for name, model, where in _housekeeping_rules(settings, now)}
    return PurgeCounts(threads=threads, messages=messages, notes=notes, keys_shredded=keys, **extra)


def _rows(result: object) -> int:
    return max(0, int(getattr(result, "rowcount", 0) or 0))


def _deleting(model: type, column: Any, dialect: str) -> Any:
    """DELETE of `model` rows whose `column` is one of the chunk's ids, given as one parameter
    `ids` (a JSON array on SQLite, an array on PostgreSQL): built and compiled once, instead of
    an IN list of 2,000 literals rendered and compiled per chunk (a tenth of a purge's time)."""
    if dialect == "sqlite":
        chosen = select(func.json_each(bindparam("ids")).table_valued("value").c.value)
        return delete(model).where(column.in_(chosen))
    return delete(model).where(column == any_(bindparam("ids", type_=ARRAY(String))))


# Children first, so the cascade has nothing left to look for.
_CHUNK_DELETES = {
    dialect: [_deleting(model, column, dialect) for model, column in (
        (Message, Message.thread_id), (Note, Note.thread_id), (EnvelopeKid, EnvelopeKid.thread_id), (Thread, Thread.id))]
    for dialect in ("sqlite", "postgresql")
}


def delete_threads(conn: Connection, ids: list[str]) -> tuple[int, int]:
    """Delete the threads `ids` and their rows, set-based; (messages, notes) deleted.

    Children go first, so the cascade has nothing left to look for. Their
    events and audit mentions have no index on the thread: `sweep_orphans`
    removes them afterwards in one pass, not one scan per chunk.
    """
    given = json.dumps(ids) if conn.dialect.name == "sqlite" else ids
    messages, notes, _kids, _threads = (
        _rows(conn.execute(statement, {"ids": given})) for statement in _CHUNK_DELETES[conn.dialect.name]
    )
    return messages, notes


async def _id_range(db: Database, column: InstrumentedAttribute[int]) -> tuple[int, int] | None:
    async with db.read() as session:
        low, high = (await session.execute(select(func.min(column), func.max(column)))).one()
    return None if low is None else (int(low), int(high))


def _executing(statement: Executable) -> Callable[[Tx], None]:
    def unit(tx: Tx) -> None:
        tx.conn.execute(statement)

    return unit


async def sweep_orphans(db: Database, why: str = "purged") -> None:
    """Events of threads that are gone are deleted; audit entries naming them lose the thread.

    One pass over each table in id ranges of `SWEEP_STEP` rows, each range its
    own short transaction; the thread is looked up by its primary key, so the
    cost grows with the table, not with the number of threads purged.
    """
    # Each step is a unit of the group writer (`Database.transact`): in a running gateway it takes
    # its turn between citizens' writes instead of holding SQLite's write lock against them.
    if span := await _id_range(db, Event.id):
        for start in range(span[0], span[1] + 1, SWEEP_STEP):
            orphans = delete(Event).where(
                Event.id >= start, Event.id < start + SWEEP_STEP, ~exists().where(Thread.id == Event.thread_id))
            await db.transact(_executing(orphans), heavy=True)
    if span := await _id_range(db, AuditEntry.id):
        for start in range(span[0], span[1] + 1, SWEEP_STEP):
            scrub = audit.forget_missing_threads(start, start + SWEEP_STEP, why)
            await db.transact(_executing(scrub), heavy=True)


async def _purge_chunk(db: Database, as_of: dt.date) -> tuple[int, int, int]:
    """One short unit of the group writer: up to THREAD_CHUNK expired threads; (threads, messages, notes)."""

    def unit(tx: Tx) -> tuple[int, int, int]:
        # SKIP LOCKED (PostgreSQL; SQLite has one writer): a thread a reply is renewing right now
        # is left for the next round, and a second purge takes other threads instead of waiting.
        ids = list(tx.conn.scalars(
            select(Thread.id).where(Thread.expires < as_of).limit(THREAD_CHUNK).with_for_update(skip_locked=True)
        ))
        if not ids:
            return 0, 0, 0
        messages, notes = delete_threads(tx.conn, ids)
        return len(ids), messages, notes

    return await db.transact(unit, heavy=True)


async def purge(db: Database, settings: Settings, as_of: dt.date, actor: str, *, record_empty: bool = True) -> PurgeCounts:
    """Delete threads expired as of `as_of`, shred unused keys, expire housekeeping rows.

    `as_of` moves thread expiry only; sessions, invites and the audit log
    expire against the real clock. The counts are audited (with `actor`).
    """
    now = utcnow()
    threads = messages = notes = 0
    while True:
        chunk = await _purge_chunk(db, as_of)
        threads, messages, notes = threads + chunk[0], messages + chunk[1], notes + chunk[2]
        if chunk[0] < THREAD_CHUNK:
            break
        await asyncio.sleep(0)  # let the requests waiting on this process run between chunks
    if threads:
        await sweep_orphans(db)
    extra = {}
    for name, model, where in _housekeeping_rules(settings, now):
        async with db.write() as session:
            extra[name] = _rows(await session.execute(delete(model).where(where)))
    keys = await shred_keys(db)
    counts = PurgeCounts(threads=threads, messages=messages, notes=notes, keys_shredded=keys, **extra)
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
        for start in range(0, len(kids), CHUNK):
            chunk = kids[start : start + CHUNK]
            await session.execute(delete(Grant).where(Grant.kid.in_(chunk)))
            await session.execute(delete(TeamKey).where(TeamKey.kid.in_(chunk)))
    return len(kids)


async def compact(db: Database, settings: Settings) -> None:
    """Make deleted bytes really go: SQLite empties its WAL (`gateway.scrub`); PostgreSQL vacuums.

    Off the request path, and without a file-wide VACUUM: the deleting
    transactions already overwrote the rows (secure_delete), so only the WAL's
    older frames are left to remove.
    """
    path = scrub.sqlite_path(settings.database_url)
    if path is not None:
        if not await asyncio.to_thread(scrub.scrub_path, path):
            log.warning("the WAL could not be emptied: a reader kept it busy; the gateway's scrubber tries again")
        return
    if db.engine.dialect.name != "postgresql":
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in PURGED_TABLES:
            await conn.exec_driver_sql(f"VACUUM {table}")


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


async def purge_loop(app: "web.Application") -> AsyncIterator[None]:
    """cleanup_ctx: purge soon after start and every `[purge] interval_minutes`, in one process per round."""
    from gateway.appkeys import DB, SETTINGS

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
