"""The event reader (`gateway.notify.EventHub.poll`): an id that becomes visible after a higher one
(PostgreSQL hands ids out before COMMIT) is still delivered, once; a gap that never fills is
given up after `GAP_GRACE`, and a poll's cost follows the open gaps, not the events read before."""

import datetime as dt

import pytest
from sqlalchemy import insert

from gateway.db import Database
from gateway.migrate import upgrade
from gateway.models import Event
from gateway.notify import EventHub


@pytest.fixture
async def hub(database_url):
    db = Database.connect(database_url)
    await upgrade(db)
    hub = EventHub(db)
    await hub.start()
    yield hub
    await db.close()


async def add(hub: EventHub, event_id: int) -> None:
    async with hub.db.write() as session:
        await session.execute(insert(Event).values(id=event_id, team_id="north", kind="thread_new",
                                                   thread_id=f"t{event_id}", created=dt.datetime(2026, 11, 30, 1, 0)))


def drained(subscription) -> list[int]:
    found = []
    while not subscription.queue.empty():
        found.append(subscription.queue.get_nowait().id)
    return found


async def test_a_lower_id_that_commits_later_is_delivered_once(hub):
    subscription = hub.subscribe(["north"], b"session")
    await add(hub, 3)
    await hub.poll()
    assert drained(subscription) == [3] and set(hub.missing) == {1, 2}
    await add(hub, 1)
    await hub.poll()
    assert drained(subscription) == [1] and set(hub.missing) == {2}
    await hub.poll()
    assert drained(subscription) == []
    await add(hub, 4)
    await add(hub, 2)
    await hub.poll()
    assert drained(subscription) == [2, 4] and hub.missing == {}


async def test_a_gap_that_never_fills_is_given_up(hub, monkeypatch):
    hub.subscribe(["north"], b"session")
    await add(hub, 5)
    await hub.poll()
    assert set(hub.missing) == {1, 2, 3, 4}
    monkeypatch.setattr("gateway.notify.GAP_GRACE", -1.0)
    await hub.poll()
    assert hub.missing == {}


async def test_with_no_stream_the_reader_reads_nothing_and_a_new_stream_hears_only_what_follows(hub):
    await add(hub, 1)
    assert await hub.poll() == 0 and hub.behind  # nobody listens: no read
    await add(hub, 2)
    subscription = await hub.join(["north"], b"session")
    await add(hub, 3)
    await hub.poll()
    assert drained(subscription) == [3]
