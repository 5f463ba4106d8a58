"""Citizen threads: create, open, reply, delete (INTERFACES.md "Citizen").

A citizen is known only by `lookup = BLAKE2b(32, access_token)`; the token
itself, the code and anything about the request stay out of storage.
"""

import datetime as dt
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto import CryptoError, b64, check_recipients, kid, lookup_for, parse_envelope
from crypto.envelope import Envelope
from gateway.db import Database, minute, rfc3339_minute, utcnow
from gateway.errors import Conflict, NotFound, from_crypto
from gateway.models import EnvelopeKid, Event, Message, Thread
from gateway.services import duty
from gateway.services.teams import team_keys


@dataclass(frozen=True)
class Limits:
    retention_days: int
    max_envelope_bytes: int


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


async def _checked(session: AsyncSession, team_id: str, citizen_pk: bytes, envelope: object, limits: Limits) -> Envelope:
    """Shape and recipients: the team's current kid and kid(citizen_pk), nothing else."""
    try:
        parsed = parse_envelope(envelope, max_bytes=limits.max_envelope_bytes)
        keys = await team_keys(session, team_id)
        if keys.current is None:
            raise NotFound("unknown_team", f"team {team_id} takes no messages now")
        check_recipients(parsed, {keys.current.kid, kid(citizen_pk)}, set(keys.retired_kids))
    except CryptoError as exc:
        raise from_crypto(exc) from None
    return parsed


def _team_kids(parsed: Envelope, citizen_pk: bytes) -> set[str]:
    return set(parsed.kids) - {kid(citizen_pk)}


async def create_thread(
    db: Database, limits: Limits, *, team_id: str, citizen_pk: bytes, access_token: bytes, envelope: object, sealed_by: str
) -> Thread:
    now = minute(utcnow())
    lookup = lookup_for(access_token)
    try:
        async with db.write() as session:
            keys = await team_keys(session, team_id)
            if keys.current is None:
                raise NotFound("unknown_team", f"no team {team_id} takes messages")
            parsed = await _checked(session, team_id, citizen_pk, envelope, limits)
            thread = Thread(
                id=b64(secrets.token_bytes(12)),
                team_id=team_id,
                lookup=lookup,
                citizen_pk=citizen_pk,
                status="new",
                risk="unknown",
                sealed_by=sealed_by,
                created=now,
                last_activity=now,
                expires=expiry(now, limits.retention_days),
                last_seq=1,
            )
            session.add(thread)
            await session.flush()
            session.add(Message(thread_id=thread.id, seq=1, sender="citizen", at=now, envelope=parsed.to_json()))
            for team_kid in _team_kids(parsed, citizen_pk):
                session.add(EnvelopeKid(thread_id=thread.id, kid=team_kid))
            await duty.route(session, thread, "thread_new")
    except IntegrityError:
        # The only unique value a client chooses is lookup (from its access_token).
        raise Conflict("thread_exists", "a thread with this access token already exists") from None
    return thread


async def find_thread(session: AsyncSession, access_token: bytes) -> Thread:
    thread = await session.scalar(select(Thread).where(Thread.lookup == lookup_for(access_token)))
    if thread is None:
        raise NotFound("unknown_thread", "no conversation for this code (it may have expired or been deleted)")
    return thread


async def exists(db: Database, access_token: bytes) -> bool:
    async with db.read() as session:
        found = await session.scalar(select(Thread.id).where(Thread.lookup == lookup_for(access_token)))
    return found is not None


async def open_thread(db: Database, access_token: bytes) -> tuple[Thread, list[Message]]:
    async with db.read() as session:
        thread = await find_thread(session, access_token)
        messages = (
            await session.scalars(select(Message).where(Message.thread_id == thread.id).order_by(Message.seq))
        ).all()
    return thread, list(messages)


async def add_message(
    session: AsyncSession, thread: Thread, sender: str, parsed: Envelope, limits: Limits
) -> Message:
    """Append a message with the next seq, renewing the thread's expiry.

    The seq comes from `UPDATE … RETURNING`, which serialises concurrent
    writers on the thread row in PostgreSQL and under BEGIN IMMEDIATE in SQLite.
    """
    now = minute(utcnow())
    seq = await session.scalar(
        update(Thread)
        .where(Thread.id == thread.id)
        .values(last_seq=Thread.last_seq + 1, last_activity=now, expires=expiry(now, limits.retention_days))
        .returning(Thread.last_seq)
    )
    if seq is None:
        raise NotFound("unknown_thread", "the conversation is gone")
    message = Message(thread_id=thread.id, seq=seq, sender=sender, at=now, envelope=parsed.to_json())
    session.add(message)
    known = set(await session.scalars(select(EnvelopeKid.kid).where(EnvelopeKid.thread_id == thread.id)))
    for team_kid in _team_kids(parsed, thread.citizen_pk) - known:
        session.add(EnvelopeKid(thread_id=thread.id, kid=team_kid))
    return message


async def citizen_reply(db: Database, limits: Limits, access_token: bytes, envelope: object) -> Message:
    async with db.write() as session:
        thread = await find_thread(session, access_token)
        parsed = await _checked(session, thread.team_id, thread.citizen_pk, envelope, limits)
        message = await add_message(session, thread, "citizen", parsed, limits)
        if thread.status in ("waiting", "closed"):
            thread.status = "open"
        await duty.route(session, thread, "message_new")
    return message


async def delete_thread(db: Database, access_token: bytes) -> None:
    """Everything of the thread is gone: rows cascade, SQLite overwrites them (secure_delete)."""
    async with db.write() as session:
        thread = await find_thread(session, access_token)
        await session.execute(delete(Event).where(Event.thread_id == thread.id))
        await session.execute(delete(Thread).where(Thread.id == thread.id))


async def checked_envelope(
    session: AsyncSession, team_id: str, citizen_pk: bytes, envelope: object, limits: Limits
) -> Envelope:
    """The recipient rule shared by citizen messages and consultant replies (`_checked`), for the staff side."""
    return await _checked(session, team_id, citizen_pk, envelope, limits)


async def mark_sealed_by_server(db: Database, access_token: bytes) -> None:
    """Flag a thread `sealed_by = "server"` once any of its messages was sealed by the server
    (the no-script path), so the inbox says so (CRYPTO.md "Envelope")."""
    async with db.write() as session:
        await session.execute(update(Thread).where(Thread.lookup == lookup_for(access_token)).values(sealed_by="server"))
