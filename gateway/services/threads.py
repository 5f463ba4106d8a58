"""Citizen threads: create, open, reply, delete (INTERFACES.md "Citizen").

A citizen is known only by `lookup = BLAKE2b(32, access_token)`; the token
itself, the code and anything about the request stay out of storage.

The hot paths (create, reply) are synchronous units of work in SQLAlchemy
Core, run by `Database.transact`: on SQLite they share a transaction and an
fsync with whatever else arrived at the same moment (group commit, issue 9),
each in its own savepoint. Envelopes are parsed before the unit is queued,
so the writer's critical section holds only the checks that need the
database and the INSERTs.
"""

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, b64, check_recipients, kid, lookup_for, parse_envelope
from crypto.envelope import Envelope
from gateway.db import Database, counter, insert_ignore, minute, rfc3339_minute, run, utcnow
from gateway.errors import Conflict, NotFound, RateLimited, from_crypto
from gateway.inbox_triggers import waiting_order
from gateway.models import EnvelopeKid, Event, Message, Thread
from gateway.services import audit, authentic, duty
from gateway.services.teams import KeyView, key_view
from gateway.settings import Settings
from gateway.writer import Tx

HOUR = 3600


@dataclass(frozen=True)
class Limits:
    retention_days: int
    max_envelope_bytes: int
    max_messages_per_thread: int = 200
    max_thread_bytes: int = 4 * 1024 * 1024
    max_new_threads_per_team_per_hour: int = 0  # 0: no cap

    @classmethod
    def of(cls, settings: Settings) -> "Limits":
        return cls(
            settings.retention_days,
            settings.max_envelope_bytes,
            settings.max_messages_per_thread,
            settings.max_thread_bytes,
            settings.max_new_threads_per_team_per_hour,
        )


@dataclass(frozen=True)
class Created:
    id: str
    expires: dt.date


@dataclass(frozen=True)
class Appended:
    thread_id: str
    seq: int


# A check that must hold in the same transaction as the write (a one-time ticket, a challenge).
Guard = Callable[[Tx], None]


def expiry(last_activity: dt.datetime, retention_days: int) -> dt.date:
    """The day a thread expires: `retention_days` after its last activity."""
    return last_activity.date() + dt.timedelta(days=retention_days)


def message_json(message: Message) -> dict:
    return {
        "seq": message.seq,
        "from": message.sender,
        "at": rfc3339_minute(message.at),
        "envelope": json.loads(message.envelope),
    }


def parse(envelope: object, limits: Limits) -> Envelope:
    """Shape only (no database): run before a unit is queued."""
    try:
        return parse_envelope(envelope, max_bytes=limits.max_envelope_bytes)
    except CryptoError as exc:
        raise from_crypto(exc) from None


def _check_recipients(keys: KeyView, parsed: Envelope, citizen_pk: bytes) -> None:
    """The team's current kid and kid(citizen_pk), nothing else (INTERFACES.md "Recipients")."""
    if keys.current_kid is None:
        raise NotFound("unknown_team", "this team takes no messages now")
    try:
        check_recipients(parsed, {keys.current_kid, kid(citizen_pk)}, set(keys.retired_kids))
    except CryptoError as exc:
        raise from_crypto(exc) from None


def _team_kids(parsed: Envelope, citizen_pk: bytes) -> set[str]:
    return set(parsed.kids) - {kid(citizen_pk)}


def _team_hour_cap(tx: Tx, team_id: str, limits: Limits, now: dt.datetime) -> None:
    """At most `max_new_threads_per_team_per_hour` new threads per team and clock hour; beyond it 429
    until the hour ends (never silent dropping). Counted in `rate_limits`, shared by every process."""
    cap = limits.max_new_threads_per_team_per_hour
    if not cap:
        return
    hour = int(now.replace(tzinfo=dt.UTC).timestamp()) // HOUR * HOUR
    bucket = f"team-hour:{team_id}:{hour}"
    # Written before this batch, plus this process's not yet written, plus this batch's so far.
    before = tx.remember(("team-hour", bucket), lambda: counter(tx.conn, bucket) + tx.unwritten(bucket))
    if before + tx.counted(bucket) >= cap:
        wait = hour + HOUR - int(utcnow().replace(tzinfo=dt.UTC).timestamp())
        raise RateLimited(wait, "this team has received too many new conversations this hour; try again later")
    tx.count(bucket, 1, window_start=hour)


def _insert_kids(conn: Connection, thread_id: str, kids: set[str]) -> None:
    if kids:
        run(conn, insert_ignore(conn, EnvelopeKid), [{"thread_id": thread_id, "kid": k} for k in sorted(kids)])


def create_unit(
    *, team_id: str, citizen_pk: bytes, lookup: bytes, parsed: Envelope, sealed_by: str, limits: Limits,
    guard: Guard | None = None,
) -> Callable[[Tx], Created]:
    def unit(tx: Tx) -> Created:
        conn, now = tx.conn, minute(utcnow())
        if guard is not None:
            guard(tx)
        keys = key_view(tx, team_id)
        if keys.current_kid is None:
            raise NotFound("unknown_team", f"no team {team_id} takes messages")
        # Version 2 (issue 11): header checked against the row; the v1 recipient rule is for v1 only.
        if not authentic.check_write(parsed, role="citizen", citizen_pk=citizen_pk, first=None,
                                     current_kid=keys.current_kid, retired_kids=keys.retired_kids):
            _check_recipients(keys, parsed, citizen_pk)
        _team_hour_cap(tx, team_id, limits, now)
        thread_id = b64(secrets.token_bytes(12))
        expires = expiry(now, limits.retention_days)
        text = parsed.to_json()
        assigned = duty.assignee(tx, team_id, None)
        try:
            run(
                conn,
                INSERT_THREAD,
                {
                    "id": thread_id, "team_id": team_id, "lookup": lookup, "citizen_pk": citizen_pk, "status": "new",
                    "risk": "unknown", "assigned_to": assigned, "sealed_by": sealed_by, "created": now,
                    "last_activity": now, "expires": expires, "last_seq": 1, "total_bytes": len(text),
                    # What the inbox triggers would set for this first message: inserted right away,
                    # they find nothing to change and write nothing (migration 0005).
                    "last_sender": "citizen", "waiting_since": now, **waiting_order(now),
                },
            )
        except IntegrityError:
            # The only unique value a client chooses is lookup (from its access_token).
            raise Conflict("thread_exists", "a thread with this access token already exists") from None
        run(conn, INSERT_MESSAGE, {"thread_id": thread_id, "seq": 1, "sender": "citizen", "at": now, "envelope": text})
        _insert_kids(conn, thread_id, _team_kids(parsed, citizen_pk))
        duty.notify(tx, team_id, thread_id, assigned, "thread_new", now)
        return Created(thread_id, expires)

    return unit


async def create_thread(
    db: Database, limits: Limits, *, team_id: str, citizen_pk: bytes, access_token: bytes, parsed: Envelope,
    sealed_by: str, guard: Guard | None = None,
) -> Created:
    unit = create_unit(
        team_id=team_id, citizen_pk=citizen_pk, lookup=lookup_for(access_token), parsed=parsed,
        sealed_by=sealed_by, limits=limits, guard=guard,
    )
    created = await db.transact(unit)
    db.written()
    return created


class ThreadRow(NamedTuple):
    """What the citizen write path reads of a thread (the columns of `THREAD_ROW`, in order)."""

    id: str
    team_id: str
    citizen_pk: bytes
    status: str
    assigned_to: str | None
    last_seq: int
    total_bytes: int


def _thread_row(conn: Connection, lookup: bytes) -> ThreadRow:
    rows = run(conn, THREAD_ROW, {"lookup": lookup})
    if not rows:
        raise NotFound("unknown_thread", "no conversation for this code (it may have expired or been deleted)")
    return ThreadRow(*rows[0])


def _scalar(rows: list[tuple]) -> Any:
    return rows[0][0] if rows else None


def append(tx: Tx, thread: ThreadRow, sender: str, parsed: Envelope, limits: Limits, now: dt.datetime) -> int:
    """Append a message with the next seq, within the caps, renewing the thread's expiry.

    The seq comes from `UPDATE … RETURNING` guarded by the caps, which serialises
    concurrent writers on the thread row in PostgreSQL (SQLite has one writer).
    """
    text = parsed.to_json()
    seq = _scalar(run(
        tx.conn,
        APPEND,
        {
            "thread": thread.id, "max_messages": limits.max_messages_per_thread, "size": len(text),
            "max_bytes": limits.max_thread_bytes, "now": now, "expiry": expiry(now, limits.retention_days),
        },
    ))
    if seq is None:
        if tx.conn.scalar(select(Thread.id).where(Thread.id == thread.id)) is None:
            raise NotFound("unknown_thread", "the conversation is gone")
        raise Conflict("thread_full", "this conversation cannot take more messages; please start a new one")
    authentic.check_seq(parsed, int(seq))
    run(tx.conn, INSERT_MESSAGE, {"thread_id": thread.id, "seq": seq, "sender": sender, "at": now, "envelope": text})
    _insert_kids(tx.conn, thread.id, _team_kids(parsed, thread.citizen_pk))
    return int(seq)


def reply_unit(lookup: bytes, parsed: Envelope, limits: Limits, guard: Guard | None = None) -> Callable[[Tx], Appended]:
    def unit(tx: Tx) -> Appended:
        now = minute(utcnow())
        if guard is not None:
            guard(tx)
        thread = _thread_row(tx.conn, lookup)
        first = authentic.first_envelope(tx.conn, thread.id)
        if not authentic.check_write(parsed, role="citizen", citizen_pk=thread.citizen_pk, first=first):
            _check_recipients(key_view(tx, thread.team_id), parsed, thread.citizen_pk)
        seq = append(tx, thread, "citizen", parsed, limits, now)
        assigned = duty.assignee(tx, thread.team_id, thread.assigned_to)
        status = "open" if thread.status in ("waiting", "closed") else thread.status
        if (status, assigned) != (thread.status, thread.assigned_to):
            tx.conn.execute(update(Thread).where(Thread.id == thread.id).values(status=status, assigned_to=assigned))
        duty.notify(tx, thread.team_id, thread.id, assigned, "message_new", now)
        return Appended(thread.id, seq)

    return unit


async def citizen_reply(
    db: Database, limits: Limits, access_token: bytes, parsed: Envelope, guard: Guard | None = None
) -> Appended:
    appended = await db.transact(reply_unit(lookup_for(access_token), parsed, limits, guard))
    db.written()
    return appended


async def find_thread(session: AsyncSession, access_token: bytes) -> Thread:
    thread = await session.scalar(select(Thread).where(Thread.lookup == lookup_for(access_token)))
    if thread is None:
        raise NotFound("unknown_thread", "no conversation for this code (it may have expired or been deleted)")
    return thread


async def exists(db: Database, access_token: bytes) -> bool:
    lookup = lookup_for(access_token)
    found = await db.read_core(lambda conn: conn.scalar(THREAD_ID, {"lookup": lookup}))
    return found is not None


@dataclass(frozen=True)
class Opened:
    """A thread as `/threads/open` reads it; times as stored (see `moment`)."""

    team_id: str
    citizen_pk: bytes
    expires: dt.date | str
    messages: list


# Built once: the hot reads pay neither statement construction nor cache-key generation.
# /threads/open is one statement: a thread and its messages in one snapshot, with no transaction
# of its own to begin and end (every thread has its first message, so the join finds it).
OPEN = (
    select(Thread.team_id, Thread.citizen_pk, Thread.expires, Message.seq, Message.sender, Message.at, Message.envelope)
    .join(Message, Message.thread_id == Thread.id)
    .where(Thread.lookup == bindparam("lookup"))
    .order_by(Message.seq)
)
THREAD_ROW = select(
    Thread.id, Thread.team_id, Thread.citizen_pk, Thread.status, Thread.assigned_to, Thread.last_seq, Thread.total_bytes
).where(Thread.lookup == bindparam("lookup"))
THREAD_ID = select(Thread.id).where(Thread.lookup == bindparam("lookup"))
INSERT_THREAD = insert(Thread)
# The next seq, within the caps (`append`).
APPEND = (
    update(Thread)
    .where(
        Thread.id == bindparam("thread"),
        Thread.last_seq < bindparam("max_messages"),
        Thread.total_bytes + bindparam("size") <= bindparam("max_bytes"),
    )
    .values(
        last_seq=Thread.last_seq + 1, last_activity=bindparam("now"), expires=bindparam("expiry"),
        total_bytes=Thread.total_bytes + bindparam("size"),
    )
    .returning(Thread.last_seq)
)
INSERT_MESSAGE = insert(Message)


def moment(value: dt.datetime | str) -> dt.datetime:
    """A stored time as a datetime: SQLite's driver hands `run` the stored text, PostgreSQL a datetime."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def _minute_text(value: dt.datetime | str) -> str:
    # "2026-11-22 13:05:00.000000" (SQLite's stored text) -> "2026-11-22T13:05Z", without parsing it.
    return f"{value[:10]}T{value[11:16]}Z" if isinstance(value, str) else rfc3339_minute(value)


async def open_thread(db: Database, access_token: bytes) -> Opened:
    """One indexed query; `messages` are rows (seq, sender, at, envelope)."""
    rows = await db.read_rows(OPEN, {"lookup": lookup_for(access_token)})
    if not rows:
        raise NotFound("unknown_thread", "no conversation for this code (it may have expired or been deleted)")
    team_id, citizen_pk, expires = rows[0][:3]
    return Opened(team_id, citizen_pk, expires, [row[3:] for row in rows])


def opened_json(opened: Opened) -> bytes:
    """The /threads/open answer, built as text: the stored envelopes are already compact JSON."""
    messages = ",".join(
        f'{{"seq":{int(seq)},"from":{json.dumps(sender)},"at":"{_minute_text(at)}","envelope":{envelope}}}'
        for seq, sender, at, envelope in opened.messages
    )
    team, pk, expires = json.dumps(opened.team_id), b64(opened.citizen_pk), str(opened.expires)[:10]
    return f'{{"team":{team},"citizen_pk":"{pk}","expires":"{expires}","messages":[{messages}]}}'.encode()


async def delete_thread(db: Database, access_token: bytes, guard: Guard | None = None) -> None:
    """Everything of the thread is gone: rows cascade, SQLite overwrites them (secure_delete), and
    the writer folds the WAL back and truncates it soon after (`Database.scrub_soon`)."""
    lookup = lookup_for(access_token)

    def unit(tx: Tx) -> None:
        if guard is not None:
            guard(tx)
        thread = _thread_row(tx.conn, lookup)
        # The audit log keeps that consultants acted, not on which thread nor its state (issue 10).
        created = tx.conn.scalar(select(Thread.created).where(Thread.id == thread.id))
        tx.conn.execute(audit.forget_threads([thread.id], "deleted", since=created))
        tx.conn.execute(delete(Event).where(Event.thread_id == thread.id))
        tx.conn.execute(delete(Thread).where(Thread.id == thread.id))

    await db.transact(unit)
    db.scrub_soon()


def mark_sealed_by_server_unit(lookup: bytes) -> Guard:
    """Flag a thread `sealed_by = "server"` once any of its messages was sealed by the server
    (the no-script path), so the inbox says so (CRYPTO.md "Envelope")."""

    def unit(tx: Tx) -> None:
        tx.conn.execute(update(Thread).where(Thread.lookup == lookup).values(sealed_by="server"))

    return unit
