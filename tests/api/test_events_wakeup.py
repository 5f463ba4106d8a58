"""Live events without waiting for a poll (issue 9, issue 14): a write wakes its own process's
event reader at once, and on PostgreSQL every other process through LISTEN/NOTIFY.

The polls are pushed out to 30 s here, so an event that arrives within a second
can only have come through the wake-up.
"""

import asyncio
import time

import pytest
from aiohttp import DummyCookieJar

from gateway.app import create_app
from gateway.models import Duty
from gateway.notify import HUB
from tests.api.staff_client import citizen_writes, login, staff_client
from tests.api.test_staff_notify import open_stream, read_event
from tests.factories import make_settings, make_world

SLOW_POLL = 30.0


@pytest.fixture
def slow_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.notify.POLL_SECONDS", SLOW_POLL)
    monkeypatch.setattr("gateway.notify.LISTENING_POLL_SECONDS", SLOW_POLL)


async def started(client) -> None:
    """The event reader has read the high-water mark (and, on PostgreSQL, LISTENs)."""
    hub = client.server.app[HUB]
    postgres = client.server.app[HUB].db.engine.dialect.name == "postgresql"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (hub.loop is None or (postgres and not hub.listening)):
        await asyncio.sleep(0.02)
    assert hub.loop is not None and (hub.listening or not postgres)
    await asyncio.sleep(0.1)


async def test_a_write_reaches_an_inbox_of_the_same_process_without_waiting_for_the_poll(
        aiohttp_client, world, slow_polls):
    client = await staff_client(aiohttp_client, world)
    async with world.db.write() as session:
        session.add(Duty(team_id="north", username="alice"))
    alice = await login(client, world, world.members["alice"])
    stream = await open_stream(alice)
    await started(client)
    for text in ("first", "second"):
        sent = time.monotonic()
        await citizen_writes(client, world, text)
        event = await read_event(stream, 2.0)
        assert event is not None and event["event"] == "thread_new", text
        assert time.monotonic() - sent < 1.0
    stream.close()


@pytest.mark.postgres
async def test_a_write_through_another_process_arrives_through_listen_notify(aiohttp_client, tmp_path, postgres,
                                                                             slow_polls):
    world = await make_world(make_settings(tmp_path, postgres.create_database()))
    try:
        streaming = await staff_client(aiohttp_client, world)
        # A second gateway with its own engine and its own LISTEN connection, as a second process has.
        writing = await aiohttp_client(create_app(world.settings), cookie_jar=DummyCookieJar())
        alice = await login(streaming, world, world.members["alice"])
        stream = await open_stream(alice)
        await started(streaming)
        await started(writing)
        latencies = []
        for text in ("one", "two", "three"):
            sent = time.monotonic()
            await citizen_writes(writing, world, text)
            event = await read_event(stream, 3.0)
            assert event is not None and event["event"] == "thread_new", text
            latencies.append(time.monotonic() - sent)
        assert max(latencies) < 1.5, latencies  # the safety poll is 30 s away: this was NOTIFY
        stream.close()
    finally:
        await world.db.close()
