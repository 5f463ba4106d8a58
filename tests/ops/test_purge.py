"""Retention and purge (gateway.services.purge) on SQLite and PostgreSQL, in process.

The command itself is driven in test_operator_day.py and test_commands.py.
"""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from gateway.app import create_app
from gateway.db import Database, utcnow
from gateway.models import (
    AuditEntry,
    EnvelopeKid,
    Event,
    Grant,
    Invite,
    Message,
    Note,
    Outbox,
    RateLimit,
    StaffSession,
    TeamKey,
    Thread,
)
from gateway.services import inbox, purge, threads
from gateway.services.consultants import create_invite
from tests.factories import envelope_for, new_citizen

TODAY = dt.date.today


def limits(world) -> threads.Limits:
    return threads.Limits.of(world.settings)


async def a_thread(world, text: str = "hello"):
    citizen = new_citizen(world)
    _, team_pk, _ = await world.team_key("north")
    created = await threads.create_thread(
        world.db, limits(world), team_id="north", citizen_pk=citizen.pk, access_token=citizen.access_token,
        parsed=threads.parse(envelope_for(text, team_pk, citizen.pk), limits(world)), sealed_by="browser")
    async with world.db.read() as session:
        thread = await session.get(Thread, created.id)
    assert thread is not None
    return thread, citizen


async def expire(world, thread_id: str, days_ago: int = 1) -> None:
    """Make a thread's expiry lie in the past, as if nobody had written for a while."""
    async with world.db.write() as session:
        await session.execute(update(Thread).where(Thread.id == thread_id).values(
            expires=TODAY() - dt.timedelta(days=days_ago),
            last_activity=utcnow() - dt.timedelta(days=world.settings.retention_days + days_ago)))


async def count(world, model, *where) -> int:
    async with world.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def rows_about(world, thread_id: str) -> list[int]:
    """Whether threads, messages, notes, envelope_kids and events hold rows of the thread (1 or 0)."""
    return [min(1, n) for n in [await count(world, Thread, Thread.id == thread_id),
            await count(world, Message, Message.thread_id == thread_id),
            await count(world, Note, Note.thread_id == thread_id),
            await count(world, EnvelopeKid, EnvelopeKid.thread_id == thread_id),
            await count(world, Event, Event.thread_id == thread_id)]]


async def test_a_thread_is_readable_through_its_expiry_day_and_purged_the_day_after(world):
    thread, _ = await a_thread(world)
    _, team_pk, _ = await world.team_key("north")
    await inbox.add_note(world.db, limits(world), "alice", thread.id, envelope_for("a note", team_pk))
    assert thread.expires == TODAY() + dt.timedelta(days=world.settings.retention_days)

    kept = await purge.purge(world.db, world.settings, thread.expires, "operator")
    assert kept.threads == 0
    assert await rows_about(world, thread.id) == [1, 1, 1, 1, 1]

    await inbox.update_thread(world.db, "alice", thread.id, {"status": "open", "risk": "high"})
    assert await count(world, AuditEntry, AuditEntry.detail.contains(thread.id)) >= 2

    gone = await purge.purge(world.db, world.settings, thread.expires + dt.timedelta(days=1), "operator")
    assert (gone.threads, gone.messages, gone.notes) == (1, 1, 1)
    assert await rows_about(world, thread.id) == [0, 0, 0, 0, 0]
    assert await count(world, AuditEntry, AuditEntry.detail.contains(thread.id)) == 0, "the audit log still names it"
    assert await count(world, AuditEntry, AuditEntry.action == "thread.risk", AuditEntry.detail.contains("(purged)")) == 1


async def test_any_message_from_either_side_renews_a_thread(world):
    thread, citizen = await a_thread(world)
    _, team_pk, _ = await world.team_key("north")
    await expire(world, thread.id)
    await threads.citizen_reply(world.db, limits(world), citizen.access_token,
                                threads.parse(envelope_for("me again", team_pk, citizen.pk), limits(world)))
    assert (await purge.purge(world.db, world.settings, TODAY(), "operator")).threads == 0

    await expire(world, thread.id)
    await inbox.reply(world.db, limits(world), "alice", thread.id, envelope_for("an answer", citizen.pk, team_pk))
    assert (await purge.purge(world.db, world.settings, TODAY(), "operator")).threads == 0
    async with world.db.read() as session:
        renewed = await session.get(Thread, thread.id)
    assert renewed is not None and renewed.expires == TODAY() + dt.timedelta(days=world.settings.retention_days)


async def test_a_retired_key_is_shredded_once_no_stored_envelope_uses_it(world):
    used_kid, _, _ = await world.team_key("north")
    thread, _ = await a_thread(world)
    await world.rotate("north")
    unused_kid, _, _ = await world.team_key("north")
    await world.rotate("north")
    current_kid, _, _ = await world.team_key("north")

    counts = await purge.purge(world.db, world.settings, TODAY(), "operator")
    assert counts.keys_shredded == 1
    assert await count(world, TeamKey, TeamKey.kid == unused_kid) == 0
    assert await count(world, Grant, Grant.kid == unused_kid) == 0
    assert await count(world, TeamKey, TeamKey.kid.in_([used_kid, current_kid])) == 2, "a key in use was shredded"

    await expire(world, thread.id)
    counts = await purge.purge(world.db, world.settings, TODAY(), "operator")
    assert (counts.threads, counts.keys_shredded) == (1, 1)
    assert await count(world, Grant, Grant.kid == used_kid) == 0
    assert [k async for k in _kids(world)] == [current_kid], "the current key is never shredded"


async def _kids(world):
    async with world.db.read() as session:
        for kid in await session.scalars(select(TeamKey.kid)):
            yield kid


async def test_a_dry_run_counts_what_a_purge_deletes_and_deletes_nothing(world):
    now = utcnow()
    old = now - dt.timedelta(days=500)
    for _ in range(2):
        expired, _ = await a_thread(world)
        await expire(world, expired.id)
    live, _ = await a_thread(world)
    await world.rotate("north")
    await world.rotate("north")  # the middle key is used by nothing
    async with world.db.write() as session:
        token = await create_invite(session, "bob", ["north"], None, 1, 8192)
    async with world.db.write() as session:
        await session.execute(update(Invite).values(expires=now - dt.timedelta(hours=1)))
        session.add_all([
            StaffSession(id_hash=b"i" * 32, username="alice", csrf="x", created=now, last_seen=now - dt.timedelta(hours=2)),
            StaffSession(id_hash=b"f" * 32, username="alice", csrf="x", created=now, last_seen=now),
            AuditEntry(at=old, actor="operator", action="team.add", detail=""),
            Event(team_id="north", kind="thread_changed", thread_id=live.id, created=old),
            Outbox(username="alice", due=old, attempts=9),
            Outbox(username="alice", due=now, attempts=0),
            RateLimit(bucket="login:old", window_start=int(old.replace(tzinfo=dt.UTC).timestamp()), count=3),
            RateLimit(bucket="login:new", window_start=int(now.replace(tzinfo=dt.UTC).timestamp()), count=3),
        ])
    assert token

    preview = await purge.preview(world.db, world.settings, TODAY())
    before = [await count(world, model) for model in (Thread, Message, TeamKey, AuditEntry, StaffSession, Outbox)]
    done = await purge.purge(world.db, world.settings, TODAY(), "operator")
    assert preview == done
    assert done.as_dict() == {"threads": 2, "messages": 2, "notes": 0, "keys_shredded": 1, "audit_expired": 1,
                              "events": 1, "notifications": 1, "invites": 1, "sessions": 1, "rate_limits": 1}
    assert before[:2] == [3, 3], "the dry run deleted something"
    assert await count(world, Thread) == 1 and await count(world, StaffSession) == 1
    assert await count(world, Outbox, Outbox.attempts == 9) == 0 and await count(world, Outbox, Outbox.due == now) == 1
    assert await count(world, RateLimit, RateLimit.bucket == "login:new") == 1
    async with world.db.read() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "purge"))
    assert entry is not None and entry.actor == "operator" and entry.detail == done.detail()


async def test_only_one_process_runs_each_scheduled_round(world):
    other = Database.connect(world.settings.database_url)
    try:
        interval = dt.timedelta(minutes=60)
        first = await asyncio.gather(purge.claim_round(world.db, interval), purge.claim_round(other, interval))
        assert sorted(first) == [False, True]
        again = await asyncio.gather(purge.claim_round(world.db, interval), purge.claim_round(other, interval))
        assert again == [False, False]
        later = utcnow() + interval + dt.timedelta(minutes=1)
        next_round = await asyncio.gather(purge.claim_round(world.db, interval, later),
                                          purge.claim_round(other, interval, later))
        assert sorted(next_round) == [False, True]
    finally:
        await other.close()


async def test_purges_running_at_once_delete_each_thread_once(world):
    for _ in range(3):
        thread, _ = await a_thread(world)
        await expire(world, thread.id)
    other = Database.connect(world.settings.database_url)
    try:
        results = await asyncio.gather(purge.purge(world.db, world.settings, TODAY(), "gateway"),
                                       purge.purge(other, world.settings, TODAY(), "gateway"))
    finally:
        await other.close()
    assert sum(r.threads for r in results) == 3
    assert await count(world, Thread) == 0 and await count(world, Message) == 0


async def test_the_running_gateway_purges_by_itself(world, aiohttp_client, monkeypatch):
    monkeypatch.setattr(purge, "FIRST_ROUND_DELAY", 0.0)
    thread, _ = await a_thread(world)
    await expire(world, thread.id)
    await aiohttp_client(create_app(world.settings))
    for _ in range(200):
        if await count(world, AuditEntry, AuditEntry.action == "purge"):
            break  # the round's last step
        await asyncio.sleep(0.05)
    assert await rows_about(world, thread.id) == [0, 0, 0, 0, 0]
    assert await count(world, AuditEntry, AuditEntry.actor == "gateway", AuditEntry.action == "purge") == 1


@pytest.mark.parametrize("retention", [1, 7])
def test_expiry_is_retention_days_after_the_last_activity(retention):
    last = dt.datetime(2026, 11, 22, 23, 59)
    assert threads.expiry(last, retention) == dt.date(2026, 11, 22) + dt.timedelta(days=retention)


def _insert_expired(path, n: int, team: str = "north") -> list[str]:
    """`n` expired threads with a message, an envelope kid, an event and an audit entry each, written straight
    into the SQLite file (as a long-running deployment would have them)."""
    import base64
    import secrets
    import sqlite3

    old = (TODAY() - dt.timedelta(days=3)).isoformat()
    at = "2026-11-01 10:00:00.000000"
    ids = [base64.urlsafe_b64encode(secrets.token_bytes(12)).decode() for _ in range(n)]
    db = sqlite3.connect(path)
    try:
        kid = db.execute("SELECT kid FROM team_keys WHERE team_id = ? AND current", (team,)).fetchone()[0]
        db.executemany("INSERT INTO threads (id, team_id, lookup, citizen_pk, status, risk, sealed_by, created, "
                       "last_activity, expires, last_seq) VALUES (?, ?, ?, ?, 'new', 'unknown', 'browser', ?, ?, ?, 1)",
                       [(i, team, secrets.token_bytes(32), secrets.token_bytes(32), at, at, old) for i in ids])
        db.executemany("INSERT INTO messages (thread_id, seq, sender, at, envelope) VALUES (?, 1, 'citizen', ?, ?)",
                       [(i, at, "{}") for i in ids])
        db.executemany("INSERT INTO envelope_kids (thread_id, kid) VALUES (?, ?)", [(i, kid) for i in ids])
        db.executemany("INSERT INTO events (team_id, kind, thread_id, created) VALUES (?, 'thread_new', ?, ?)",
                       [(team, i, at) for i in ids])
        db.executemany("INSERT INTO audit (at, actor, action, detail) VALUES (?, 'alice', 'thread.risk', ?)",
                       [(at, f"thread={i} risk=acute") for i in ids])
        db.commit()
    finally:
        db.close()
    return ids


@pytest.fixture
async def sqlite_world(tmp_path):
    from tests.factories import make_settings, make_world

    world = await make_world(make_settings(tmp_path))
    yield world
    await world.db.close()


async def test_a_large_purge_goes_in_chunks_and_scrubs_the_audit_log_set_based(sqlite_world, monkeypatch):
    world = sqlite_world
    monkeypatch.setattr(purge, "THREAD_CHUNK", 7)
    monkeypatch.setattr(purge, "SWEEP_STEP", 5)
    live, _ = await a_thread(world)
    await inbox.update_thread(world.db, "alice", live.id, {"risk": "high"})
    ids = _insert_expired(world.settings.data_dir / "fristed.db", 30)

    counts = await purge.purge(world.db, world.settings, TODAY(), "operator")
    assert (counts.threads, counts.messages) == (30, 30)
    assert await count(world, Thread) == 1 and await count(world, Event, Event.thread_id.in_(ids)) == 0
    assert await count(world, AuditEntry, AuditEntry.detail == "thread=(purged)") == 30
    assert await count(world, AuditEntry, AuditEntry.detail.like("%acute%")) == 0, "the purged threads' state stayed"
    assert await count(world, AuditEntry, AuditEntry.detail == f"thread={live.id} risk=high") == 1, "a live thread lost its audit"


async def test_citizens_keep_writing_while_a_purge_runs(sqlite_world, monkeypatch):
    """Issue 9: no 500, no time-out for a creation while the purge deletes thousands of threads."""
    world = sqlite_world
    monkeypatch.setattr(purge, "THREAD_CHUNK", 500)
    _insert_expired(world.settings.data_dir / "fristed.db", 6000)
    latencies: list[float] = []

    async def creations() -> None:
        for _ in range(20):
            started = asyncio.get_running_loop().time()
            await a_thread(world)
            latencies.append(asyncio.get_running_loop().time() - started)

    done, _ = await asyncio.gather(purge.purge(world.db, world.settings, TODAY(), "gateway"), creations())
    assert done.threads == 6000 and len(latencies) == 20
    assert max(latencies) < 5, latencies  # the purge lets go of the write lock between chunks
    assert await count(world, Thread) == 20
