"""E-mail notifications coalesced (issue 8): at most one per consultant per `smtp.coalesce_minutes`,
across gateway processes; what arrives meanwhile is told in the next e-mail, never dropped."""

import asyncio
import dataclasses
import time

from sqlalchemy import func, select, update

from gateway.app import create_app
from gateway.db import Database, utcnow
from gateway.mail import HOLD_PREFIX, Mailer
from gateway.models import Consultant, Duty, Meta, Outbox
from gateway.settings import SmtpSettings
from tests.api.staff_client import citizen_writes
from tests.support import free_port


def with_smtp(world, port: int, coalesce_minutes: int = 5):
    return dataclasses.replace(world.settings, smtp=SmtpSettings(
        host="127.0.0.1", port=port, sender="inbox@fristed.example", coalesce_minutes=coalesce_minutes))


async def wait_for_mails(inbox, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(inbox.messages) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def pending(world) -> int:
    async with world.db.read() as session:
        return await session.scalar(select(func.count()).select_from(Outbox))


async def test_a_burst_of_threads_gives_one_email_and_the_rest_follow_after_the_pause(aiohttp_client, world, smtp_server):
    controller, inbox = smtp_server
    client = await aiohttp_client(create_app(with_smtp(world, controller.port)))
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(email="alice@example.org"))
        session.add(Duty(team_id="north", username="alice"))
    await citizen_writes(client, world, "first")
    await wait_for_mails(inbox, 1, 5)
    assert len(inbox.messages) == 1
    for n in range(4):
        await citizen_writes(client, world, f"more {n}")
    await asyncio.sleep(2.5)  # the mailer looks every second: it had the chance, and held back
    assert len(inbox.messages) == 1
    assert await pending(world) == 4  # kept for the next e-mail, not dropped

    # Five minutes later (the hold moved into the past, as time would):
    async with world.db.write() as session:
        await session.execute(update(Meta).where(Meta.key.startswith(HOLD_PREFIX)).values(value="2000-01-01T00:00:00"))
    await wait_for_mails(inbox, 2, 5)
    await asyncio.sleep(1.5)
    assert len(inbox.messages) == 2, "the four waiting notifications make one e-mail"
    assert await pending(world) == 0
    assert [rcpt for _, rcpt, _ in inbox.messages] == [["alice@example.org"]] * 2


async def test_without_a_pause_each_round_mails_at_once(aiohttp_client, world, smtp_server):
    controller, inbox = smtp_server
    client = await aiohttp_client(create_app(with_smtp(world, controller.port, coalesce_minutes=0)))
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(email="alice@example.org"))
        session.add(Duty(team_id="north", username="alice"))
    await citizen_writes(client, world, "first")
    await wait_for_mails(inbox, 1, 5)
    await citizen_writes(client, world, "second")
    await wait_for_mails(inbox, 2, 5)
    assert len(inbox.messages) == 2


async def test_the_pause_holds_across_gateway_processes(world):
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(email="alice@example.org"))
        session.add(Outbox(username="alice", due=utcnow(), attempts=0))
    settings = with_smtp(world, free_port())
    other = Database.connect(world.settings.database_url)  # as a second process would
    try:
        first, second = Mailer(world.db, settings), Mailer(other, settings)
        claimed = await first.claim()
        assert [user for _, user, _ in claimed] == ["alice"]
        async with world.db.write() as session:
            session.add(Outbox(username="alice", due=utcnow(), attempts=0))
        assert await asyncio.gather(second.claim(), first.claim()) == [[], []]
    finally:
        await other.close()
