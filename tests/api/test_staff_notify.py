"""Notifications: live events (SSE) for the team's open inboxes and a content-free e-mail via real SMTP."""

import asyncio
import dataclasses
import datetime as dt
import json
import time

from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from crypto import b64
from gateway.app import create_app
from gateway.db import Database, utcnow
from gateway.mail import Mailer
from gateway.models import Consultant, Duty, Outbox, Thread
from gateway.settings import SmtpSettings
from tests.api.staff_client import Staff, citizen_writes, login, staff_client
from tests.factories import envelope_for
from tests.support import SmtpInbox, free_port


async def read_event(response, timeout: float) -> dict | None:
    """The next SSE event (id, event, data) on an open stream, or None after `timeout` seconds."""
    fields: dict = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                line = (await response.content.readline()).decode().rstrip("\n")
                if not line:
                    if "event" in fields:
                        return fields
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
    except TimeoutError:
        return None


async def open_stream(staff: Staff, last_event_id: str | None = None):
    headers = staff.headers(csrf=False)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    response = await staff.client.get("/api/v1/staff/events", headers=headers)
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    return response


async def test_the_duty_consultant_gets_a_live_event_within_a_second_and_other_teams_do_not(aiohttp_client, world):
    await world.add_team("south", "sam")
    client = await staff_client(aiohttp_client, world)
    async with world.db.write() as session:
        session.add(Duty(team_id="north", username="alice"))
    alice = await login(client, world, world.members["alice"])
    sam = await login(client, world, world.members["sam"])
    alice_stream, sam_stream = await open_stream(alice), await open_stream(sam)
    await asyncio.sleep(0.3)  # the poller has started

    started = time.monotonic()
    await citizen_writes(client, world, "Hjælp")
    event = await read_event(alice_stream, 1.0)
    assert event is not None and time.monotonic() - started < 1.0
    async with world.db.read() as session:
        thread = await session.scalar(select(Thread))
    assert event["event"] == "thread_new" and json.loads(event["data"]) == {"thread": thread.id}
    assert thread.assigned_to == "alice"
    assert await read_event(sam_stream, 1.0) is None

    await citizen_writes(client, world, "Hej", team="south")
    sam_event = await read_event(sam_stream, 1.0)
    assert sam_event is not None and sam_event["event"] == "thread_new"
    assert await read_event(alice_stream, 0.5) is None

    # Resuming with Last-Event-ID replays what was missed, for the caller's teams only.
    resumed = await open_stream(alice, last_event_id=str(int(event["id"]) - 1))
    replayed = await read_event(resumed, 1.0)
    assert replayed is not None and replayed["id"] == event["id"]
    assert await read_event(resumed, 0.5) is None
    resumed.close()

    # The stream ends with the session.
    assert (await alice.call("POST", "/api/v1/staff/logout")).status == 204
    async with asyncio.timeout(2):
        assert await alice_stream.content.read() is not None
        assert alice_stream.content.at_eof()
    sam_stream.close()


async def test_a_citizen_message_in_an_assigned_thread_is_announced_as_message_new(aiohttp_client, world):
    client = await staff_client(aiohttp_client, world)
    alice = await login(client, world, world.members["alice"])
    stream = await open_stream(alice)
    await asyncio.sleep(0.3)
    citizen = await citizen_writes(client, world)
    assert (await read_event(stream, 1.0))["event"] == "thread_new"
    _kid, team_pk, _ = await world.team_key("north")
    reply = await client.post("/api/v1/threads/reply", json={
        "access_token": b64(citizen.access_token), "envelope": envelope_for("mere", team_pk, citizen.pk)})
    assert reply.status == 201
    assert (await read_event(stream, 1.0))["event"] == "message_new"
    stream.close()


async def with_smtp(world, port: int):
    return dataclasses.replace(world.settings, smtp=SmtpSettings(host="127.0.0.1", port=port, sender="inbox@fristed.example"))


async def test_the_duty_consultant_gets_an_email_that_says_only_that_something_waits(aiohttp_client, world, smtp_server):
    controller, inbox = smtp_server
    client = await aiohttp_client(create_app(await with_smtp(world, controller.port)))
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(email="alice@example.org"))
        session.add(Duty(team_id="north", username="alice"))
    started = time.monotonic()
    await citizen_writes(client, world, "Min bror truer mig")
    while not inbox.messages and time.monotonic() - started < 5:
        await asyncio.sleep(0.05)
    assert inbox.messages, "no e-mail within 5 s"
    [(_arrived, recipients, message)] = inbox.messages
    assert recipients == ["alice@example.org"]
    # The mailer deletes the row once SMTP has accepted the message: just after delivery.
    while time.monotonic() - started < 5:
        async with world.db.read() as session:
            thread = await session.scalar(select(Thread))
            left = await session.scalar(select(func.count()).select_from(Outbox))
        if left == 0:
            break
        await asyncio.sleep(0.05)
    assert left == 0, "the delivered notification is still queued"
    raw = message.as_string()
    body = message.get_content()
    assert message["Subject"] == "New activity" and "waiting" in body
    for secret in (thread.id, "north", "North", "truer", "bror", "alice"):
        assert secret not in body and secret not in message["Subject"], secret
    assert thread.id not in raw and "north" not in raw.lower().replace("alice@example.org", "")


async def test_a_failed_delivery_never_blocks_the_citizen_and_is_retried(aiohttp_client, world, monkeypatch):
    port = free_port()  # nothing listens here yet
    monkeypatch.setattr("gateway.mail.RETRY_BASE_SECONDS", 1)
    client = await aiohttp_client(create_app(await with_smtp(world, port)))
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(email="alice@example.org"))
    started = time.monotonic()
    await citizen_writes(client, world)  # nobody on duty: the whole team is notified
    assert time.monotonic() - started < 1.0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        async with world.db.read() as session:
            row = await session.scalar(select(Outbox))
        if row is not None and row.attempts >= 1 and row.claimed_until is None:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row.attempts >= 1 and row.due > utcnow() - dt.timedelta(seconds=5)
    # The retry is due a whole minute later (a stored time never dates a citizen's message finer);
    # let that minute pass at once rather than wait for it.
    assert (row.due.second, row.due.microsecond) == (0, 0)
    async with world.db.write() as session:
        await session.execute(update(Outbox).values(due=utcnow() - dt.timedelta(minutes=1)))

    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        deadline = time.monotonic() + 8
        while not inbox.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


async def test_two_gateway_processes_never_claim_the_same_notification(world):
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(email="alice@example.org"))
        for _ in range(30):
            session.add(Outbox(username="alice", due=utcnow(), attempts=0))
    settings = await with_smtp(world, free_port())
    other = Database.connect(world.settings.database_url)  # as a second process would
    try:
        first, second = Mailer(world.db, settings), Mailer(other, settings)
        ids: list[int] = []
        for _ in range(10):
            claims = await asyncio.gather(first.claim(), second.claim(), first.claim(), second.claim())
            found = [row_id for claim in claims for row_id, _user, _attempts in claim]
            if not found:
                break
            ids += found
    finally:
        await other.close()
    assert len(ids) == len(set(ids)) == 30


async def test_nothing_is_claimed_without_smtp_or_without_an_address(world):
    async with world.db.write() as session:
        session.add(Outbox(username="alice", due=utcnow(), attempts=0))
    assert await Mailer(world.db, world.settings).claim() == []  # no [smtp] host
    assert await Mailer(world.db, await with_smtp(world, free_port())).claim() == []  # alice has no address


async def test_events_cross_gateway_processes(aiohttp_client, world):
    """A citizen's request handled by one gateway reaches an inbox streaming from another."""
    streaming = await staff_client(aiohttp_client, world)
    other_gateway = await aiohttp_client(create_app(world.settings))
    alice = await login(streaming, world, world.members["alice"])
    stream = await open_stream(alice)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await citizen_writes(other_gateway, world)
    event = await read_event(stream, 1.0)
    assert event is not None and event["event"] == "thread_new" and time.monotonic() - started < 1.0
    stream.close()
