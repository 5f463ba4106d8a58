"""Issue 13 through the API: one inbox order for the whole team (danger, then the longest wait,
then the most recent), views with counts, keyset pages, read markers."""

import datetime as dt
import re

import pytest
from sqlalchemy import select, text, update

from crypto import b64, lookup_for
from gateway.db import minute, utcnow
from gateway.inbox_triggers import PG_MINUTES, RANK, SQLITE_MINUTES, key, waiting_order
from gateway.models import Duty, Thread
from tests.api.staff_client import Staff, citizen_writes, enrol, login, staff_client
from tests.factories import envelope_for

MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$")


@pytest.fixture
async def staff(aiohttp_client, world):
    await world.add_team("south", "sam")
    return await staff_client(aiohttp_client, world)


async def thread_of(world, citizen) -> str:
    async with world.db.read() as session:
        return await session.scalar(select(Thread.id).where(Thread.lookup == lookup_for(citizen.access_token)))


async def answer(alice: Staff, world, citizen, thread_id: str) -> None:
    """A real consultant reply (sealed to the citizen and the team)."""
    _kid, team_pk, _ = await world.team_key("north")
    await alice.json("POST", f"/api/v1/staff/threads/{thread_id}/reply", {"envelope": envelope_for("svar", citizen.pk, team_pk)}, 201)


async def set_times(world, thread_id: str, *, minutes_ago: int, **values) -> dict:
    at = minute(utcnow()) - dt.timedelta(minutes=minutes_ago)
    async with world.db.write() as session:
        thread = await session.get(Thread, thread_id)
        assert thread is not None
        changes = {"last_activity": at, **values}
        if thread.last_sender == "citizen":
            changes["waiting_since"] = at
        await session.execute(update(Thread).where(Thread.id == thread_id).values(**changes))
    return {"at": at.strftime("%Y-%m-%dT%H:%MZ")}


async def a_team_with_every_kind_of_thread(staff, world) -> tuple[dict[str, str], Staff, Staff]:
    """Threads named by what they are: acute, high (answered), two waiting for a reply,
    a closed one the citizen wrote last in, two answered ones."""
    await enrol(staff, world, "bob", ["north"])
    alice = await login(staff, world, world.members["alice"])
    bob = await login(staff, world, world.members["bob"])
    names = ["acute", "high", "wait90", "wait30", "closed", "answered5", "answered60"]
    citizens = {name: await citizen_writes(staff, world, name) for name in names}
    ids = {name: await thread_of(world, citizen) for name, citizen in citizens.items()}
    for name in ("high", "answered5", "answered60"):
        await answer(alice, world, citizens[name], ids[name])
    await set_times(world, ids["acute"], minutes_ago=10, risk="acute")
    await set_times(world, ids["high"], minutes_ago=200, risk="high")
    await set_times(world, ids["wait90"], minutes_ago=90, status="open", assigned_to="bob")
    await set_times(world, ids["wait30"], minutes_ago=30, status="new", assigned_to=None)
    await set_times(world, ids["closed"], minutes_ago=1, status="closed", assigned_to="alice")
    await set_times(world, ids["answered5"], minutes_ago=5)
    await set_times(world, ids["answered60"], minutes_ago=60)
    async with world.db.write() as session:
        session.add(Duty(team_id="north", username="alice"))
    return ids, alice, bob


EXPECTED = ["acute", "high", "wait90", "wait30", "closed", "answered5", "answered60"]


async def test_danger_first_then_the_longest_wait_then_the_most_recent_for_every_member(staff, world):
    ids, alice, bob = await a_team_with_every_kind_of_thread(staff, world)
    by_id = {v: k for k, v in ids.items()}
    for member in (alice, bob):  # alice on duty, bob not: the same order
        listed = (await member.json("GET", "/api/v1/staff/threads"))["threads"]
        assert [by_id[t["id"]] for t in listed] == EXPECTED
    listed = {by_id[t["id"]]: t for t in (await alice.json("GET", "/api/v1/staff/threads"))["threads"]}
    assert listed["wait90"]["needs_reply"] is True and listed["wait90"]["last_sender"] == "citizen"
    assert MINUTE.match(listed["wait90"]["waiting_since"]) and listed["wait90"]["waiting_since"] < listed["wait30"]["waiting_since"]
    assert listed["high"]["needs_reply"] is False and listed["high"]["waiting_since"] is None
    assert listed["high"]["last_sender"] == "consultant"
    assert listed["closed"]["needs_reply"] is False  # closed on purpose: not waiting for anyone
    assert listed["wait30"]["assigned_to"] is None and listed["wait30"]["status"] == "new"


async def test_views_filter_the_one_order_and_count_their_threads(staff, world):
    ids, alice, _bob = await a_team_with_every_kind_of_thread(staff, world)
    by_id = {v: k for k, v in ids.items()}
    answer_ = await alice.json("GET", "/api/v1/staff/threads")
    assert answer_["counts"] == {
        "all": 7, "mine": 3, "unassigned": 2, "needs_reply": 3, "urgent": 2, "closed": 1, "unread": 6,
    }
    views = {
        "all": EXPECTED,
        "mine": ["high", "answered5", "answered60"],  # assigned by replying; the closed one is left out
        "unassigned": ["acute", "wait30"],
        "needs_reply": ["acute", "wait90", "wait30"],
        "urgent": ["acute", "high"],
        "closed": ["closed"],
    }
    for view, expected in views.items():
        listed = (await alice.json("GET", f"/api/v1/staff/threads?view={view}"))["threads"]
        assert [by_id[t["id"]] for t in listed] == expected, view
    # Another team's member sees none of it.
    sam = await login(staff, world, world.members["sam"])
    assert (await sam.json("GET", "/api/v1/staff/threads"))["counts"]["all"] == 0


async def test_pages_follow_the_order_and_show_every_thread_once(staff, world):
    ids, alice, _bob = await a_team_with_every_kind_of_thread(staff, world)
    by_id = {v: k for k, v in ids.items()}
    seen: list[str] = []
    after = ""
    while True:
        page = await alice.json("GET", f"/api/v1/staff/threads?limit=2{'&after=' + after if after else ''}")
        assert len(page["threads"]) <= 2
        seen += [by_id[t["id"]] for t in page["threads"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == EXPECTED
    for query, code in (("view=everything", "bad_view"), ("limit=0", "bad_limit"), ("limit=501", "bad_limit"),
                        ("limit=x", "bad_limit"), ("after=%%%", "bad_cursor"), ("after=" + "A" * 200, "bad_cursor"),
                        ("after=" + b64(b"9|1|x"), "bad_cursor")):
        response = await alice.call("GET", f"/api/v1/staff/threads?{query}")
        assert response.status == 400, query
        assert (await response.json())["error"]["code"] == code


async def test_a_read_marker_clears_unread_never_moves_back_and_a_new_message_sets_it_again(staff, world):
    citizen = await citizen_writes(staff, world, "første")
    alice = await login(staff, world, world.members["alice"])
    thread_id = await thread_of(world, citizen)
    [listed] = (await alice.json("GET", "/api/v1/staff/threads"))["threads"]
    assert listed["unread"] is True and listed["read_seq"] == 0 and listed["last_seq"] == 1
    path = f"/api/v1/staff/threads/{thread_id}/read"
    assert await alice.json("POST", path, {"seq": 99}) == {"seq": 1}  # capped at the newest message
    assert await alice.json("POST", path, {"seq": 0}) == {"seq": 1}  # never back
    answer_ = await alice.json("GET", "/api/v1/staff/threads")
    assert answer_["threads"][0]["unread"] is False and answer_["counts"]["unread"] == 0
    _kid, team_pk, _ = await world.team_key("north")
    more = await staff.post("/api/v1/threads/reply", json={
        "access_token": b64(citizen.access_token), "envelope": envelope_for("anden", team_pk, citizen.pk)})
    assert more.status == 201
    answer_ = await alice.json("GET", "/api/v1/staff/threads")
    assert answer_["threads"][0]["unread"] is True and answer_["threads"][0]["read_seq"] == 1
    assert answer_["counts"]["unread"] == 1
    # Bob's markers are his own.
    await enrol(staff, world, "bob", ["north"])
    bob = await login(staff, world, world.members["bob"])
    assert (await bob.json("GET", "/api/v1/staff/threads"))["threads"][0]["read_seq"] == 0
    for body, status, code in (({"seq": -1}, 400, "bad_seq"), ({"seq": "1"}, 400, "bad_field"), ({}, 400, "missing_field")):
        response = await alice.call("POST", path, body)
        assert response.status == status, body
        assert (await response.json())["error"]["code"] == code
    sam = await login(staff, world, world.members["sam"])
    assert (await sam.call("POST", path, {"seq": 1})).status == 404
    assert (await alice.call("POST", path, {"seq": 1}, csrf=False)).status == 403


async def test_large_inbox_answers_are_compressed_and_key_answers_never_are(staff, world):
    for n in range(8):
        await citizen_writes(staff, world, f"tråd {n}")
    alice = await login(staff, world, world.members["alice"])
    headers = {**alice.headers(csrf=False), "Accept-Encoding": "gzip"}
    listed = await staff.get("/api/v1/staff/threads", headers=headers, auto_decompress=False)
    assert listed.status == 200 and listed.headers.get("Content-Encoding") == "gzip"
    keys = await staff.get("/api/v1/staff/keys", headers=headers, auto_decompress=False)
    assert keys.status == 200 and "Content-Encoding" not in keys.headers
    plain = await staff.get("/api/v1/staff/threads", headers={**alice.headers(csrf=False), "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and len((await plain.json())["threads"]) == 8


async def test_a_new_thread_carries_the_order_the_triggers_compute(staff, world):
    """A creation inserts `last_sender`, `waiting_since` and `waiting_order(now)` itself, so the
    triggers find nothing to change and write nothing (migration 0005): the Python order must be
    exactly the triggers' SQL, on either database (were it not, the trigger would fix the row at
    the cost of a write, which no stored value would show)."""
    citizen = await citizen_writes(staff, world, "first")
    thread_id = await thread_of(world, citizen)
    minutes = PG_MINUTES if world.db.engine.dialect.name == "postgresql" else SQLITE_MINUTES
    by_sql = text(f"SELECT {RANK}, {key(minutes)}, waiting_since, last_sender FROM threads WHERE id = :id")
    async with world.db.read() as session:
        rank, inbox_key, since, last_sender = (await session.execute(by_sql, {"id": thread_id})).one()
        stored = (await session.execute(select(Thread.inbox_rank, Thread.inbox_key).where(Thread.id == thread_id))).one()
    since = since if isinstance(since, dt.datetime) else dt.datetime.fromisoformat(since)
    assert last_sender == "citizen"
    assert waiting_order(since) == {"inbox_rank": rank, "inbox_key": inbox_key} == dict(zip(("inbox_rank", "inbox_key"), stored, strict=True))
