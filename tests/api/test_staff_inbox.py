"""The staff inbox: list, read, reply, note, triage, duty; only the caller's teams."""

import re

import pytest
from nacl.public import PrivateKey
from sqlalchemy import select, update

from crypto import b64, kid, lookup_for, open_envelope, seal_envelope, unb64
from gateway.models import AuditEntry, Duty, EnvelopeKid, Event, Thread
from tests.api.staff_client import citizen_writes, enrol, login, staff_client
from tests.factories import envelope_for

MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture
async def staff(aiohttp_client, world):
    await world.add_team("south", "sam")
    return await staff_client(aiohttp_client, world)


async def thread_id_of(world, citizen) -> str:
    async with world.db.read() as session:
        return await session.scalar(select(Thread.id).where(Thread.lookup == lookup_for(citizen.access_token)))


async def test_the_list_shows_only_the_callers_teams_with_every_field(staff, world):
    await citizen_writes(staff, world, "north one")
    await citizen_writes(staff, world, "south one", team="south")
    alice = await login(staff, world, world.members["alice"])
    sam = await login(staff, world, world.members["sam"])
    [thread] = (await alice.json("GET", "/api/v1/staff/threads"))["threads"]
    assert {"id", "team", "status", "risk", "assigned_to", "sealed_by", "created", "last_activity", "expires"} <= set(thread)
    assert thread["needs_reply"] is True and thread["last_sender"] == "citizen" and MINUTE.match(thread["waiting_since"])
    assert thread["team"] == "north" and thread["status"] == "new" and thread["risk"] == "unknown"
    assert thread["sealed_by"] == "browser" and MINUTE.match(thread["created"]) and DAY.match(thread["expires"])
    [other] = (await sam.json("GET", "/api/v1/staff/threads"))["threads"]
    assert other["team"] == "south"
    # Another team's thread is unknown, whatever the call.
    for method, path, body in (
        ("GET", f"/api/v1/staff/threads/{other['id']}", None),
        ("PATCH", f"/api/v1/staff/threads/{other['id']}", {"status": "open"}),
        ("POST", f"/api/v1/staff/threads/{other['id']}/notes", {"envelope": envelope_for("x", bytes(PrivateKey.generate().public_key))}),
    ):
        response = await alice.call(method, path, body)
        assert response.status == 404, (method, path)


async def test_the_order_is_the_same_on_duty_or_not_and_mine_is_a_view(staff, world):
    """Issue 13: "mine" is a filter, not an order (the full order is in test_staff_inbox_order.py)."""
    for text in ("one", "two", "three"):
        await citizen_writes(staff, world, text)
    alice = await login(staff, world, world.members["alice"])
    ids = [t["id"] for t in (await alice.json("GET", "/api/v1/staff/threads"))["threads"]]
    async with world.db.write() as session:
        await session.execute(update(Thread).where(Thread.id == ids[2]).values(assigned_to="alice"))
        session.add(Duty(team_id="north", username="alice"))
    on_duty = [t["id"] for t in (await alice.json("GET", "/api/v1/staff/threads"))["threads"]]
    async with world.db.write() as session:
        await session.execute(Duty.__table__.delete())
    off_duty = [t["id"] for t in (await alice.json("GET", "/api/v1/staff/threads"))["threads"]]
    assert on_duty == off_duty == ids
    mine = await alice.json("GET", "/api/v1/staff/threads?view=mine")
    assert [t["id"] for t in mine["threads"]] == [ids[2]] and mine["counts"]["mine"] == 1


async def test_a_consultant_reads_replies_and_notes_and_the_citizen_sees_only_the_reply(staff, world):
    citizen = await citizen_writes(staff, world, "Jeg har brug for hjælp")
    alice = await login(staff, world, world.members["alice"])
    [listed] = (await alice.json("GET", "/api/v1/staff/threads"))["threads"]
    detail = await alice.json("GET", f"/api/v1/staff/threads/{listed['id']}")
    assert set(detail) == {"thread", "messages", "notes"}
    assert detail["thread"]["citizen_pk"] == b64(citizen.pk) and detail["notes"] == []
    [message] = detail["messages"]
    team_kid, team_pk, _ = await world.team_key("north")
    assert open_envelope(message["envelope"], alice.team_keys[team_kid])["text"] == "Jeg har brug for hjælp"

    citizen_pk = unb64(detail["thread"]["citizen_pk"])
    reply = await alice.call("POST", f"/api/v1/staff/threads/{listed['id']}/reply",
                             {"envelope": envelope_for("Vi er her", citizen_pk, team_pk)})
    assert reply.status == 201 and (await reply.json())["seq"] == 2
    note = await alice.call("POST", f"/api/v1/staff/threads/{listed['id']}/notes", {"envelope": envelope_for("intern note", team_pk)})
    assert note.status == 201

    detail = await alice.json("GET", f"/api/v1/staff/threads/{listed['id']}")
    assert [m["from"] for m in detail["messages"]] == ["citizen", "consultant"]
    [stored_note] = detail["notes"]
    assert stored_note["author"] == "alice" and MINUTE.match(stored_note["at"])
    assert open_envelope(stored_note["envelope"], alice.team_keys[team_kid])["text"] == "intern note"
    assert detail["thread"]["status"] == "waiting" and detail["thread"]["assigned_to"] == "alice"

    opened = await (await staff.post("/api/v1/threads/open", json={"access_token": b64(citizen.access_token)})).json()
    texts = [open_envelope(m["envelope"], citizen.sk)["text"] for m in opened["messages"]]
    assert texts == ["Jeg har brug for hjælp", "Vi er her"]
    assert "intern note" not in str(opened) and stored_note["envelope"]["ct"] not in str(opened)
    async with world.db.read() as session:
        assert set(await session.scalars(select(EnvelopeKid.kid))) == {team_kid}
        kinds = (await session.scalars(select(Event.kind).order_by(Event.id))).all()
    assert kinds == ["thread_new", "thread_changed", "thread_changed"]


async def test_replies_and_notes_must_have_exactly_the_required_recipients(staff, world):
    citizen = await citizen_writes(staff, world)
    alice = await login(staff, world, world.members["alice"])
    thread_id = await thread_id_of(world, citizen)
    old_kid, team_pk, _ = await world.team_key("north")
    path = f"/api/v1/staff/threads/{thread_id}"
    cases = [
        ("reply", envelope_for("only team", team_pk), 400, "bad_envelope"),
        ("reply", envelope_for("extra", team_pk, citizen.pk, bytes(PrivateKey.generate().public_key)), 400, "bad_envelope"),
        ("notes", envelope_for("to the citizen", team_pk, citizen.pk), 400, "bad_envelope"),
        ("notes", {"v": 2}, 400, "bad_envelope"),
    ]
    for kind, envelope, status, code in cases:
        response = await alice.call("POST", f"{path}/{kind}", {"envelope": envelope})
        assert response.status == status, (kind, await response.text())
        assert (await response.json())["error"]["code"] == code
    await world.rotate("north")
    stale = await alice.call("POST", f"{path}/reply", {"envelope": envelope_for("old key", team_pk, citizen.pk)})
    assert stale.status == 409 and (await stale.json())["error"]["code"] == "stale_team_key"
    stale_note = await alice.call("POST", f"{path}/notes", {"envelope": envelope_for("old key", team_pk)})
    assert stale_note.status == 409
    new_kid, new_pk, _ = await world.team_key("north")
    assert new_kid != old_kid and kid(new_pk) == new_kid
    assert (await alice.call("POST", f"{path}/notes", {"envelope": seal_envelope({"text": "ok"}, [new_pk])})).status == 201


async def test_patch_sets_status_risk_and_assignee_and_answers_the_thread(staff, world):
    await world.add_team("east", "erin")
    citizen = await citizen_writes(staff, world)
    alice = await login(staff, world, world.members["alice"])
    path = f"/api/v1/staff/threads/{await thread_id_of(world, citizen)}"
    updated = await alice.json("PATCH", path, {"status": "open", "risk": "high"})
    assert updated["status"] == "open" and updated["risk"] == "high" and "citizen_pk" not in updated
    assert (await alice.json("PATCH", path, {"assigned_to": None}))["assigned_to"] is None
    assert (await alice.json("PATCH", path, {"assigned_to": "alice"}))["assigned_to"] == "alice"
    for body, code in (
        ({"status": "done"}, "bad_status"),
        ({"risk": "extreme"}, "bad_risk"),
        ({"assigned_to": "sam"}, "bad_assignee"),  # not in the thread's team
        ({"assigned_to": 7}, "bad_field"),
        ({}, "nothing_to_change"),
        ({"colour": "red"}, "unknown_field"),
    ):
        response = await alice.call("PATCH", path, body)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == code
    async with world.db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "alice"))).all()
        details = " ".join((await session.scalars(select(AuditEntry.detail))).all())
    assert {"thread.status", "thread.risk", "thread.assign"} <= set(actions)
    assert "Hjælp" not in details


async def test_duty_is_set_for_the_callers_own_teams_only(staff, world):
    alice = await login(staff, world, world.members["alice"])
    assert await alice.json("POST", "/api/v1/staff/duty", {"team": "north", "on": True}) == {
        "team": "north", "on": True, "on_duty": ["alice"]}
    teams = (await alice.json("GET", "/api/v1/staff/teams"))["teams"]
    assert teams[0]["on_duty"] == ["alice"] and teams[0]["members"][0]["on_duty"] is True
    assert teams[0]["members"][0]["kid"] == kid(bytes(PrivateKey(alice.sk).public_key))
    assert await alice.json("POST", "/api/v1/staff/duty", {"team": "north", "on": False}) == {
        "team": "north", "on": False, "on_duty": []}
    other = await alice.call("POST", "/api/v1/staff/duty", {"team": "south", "on": True})
    assert other.status == 403 and (await other.json())["error"]["code"] == "not_a_member"
    async with world.db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "alice"))).all()
    assert {"duty.on", "duty.off"} <= set(actions)


async def test_a_new_thread_goes_to_the_on_duty_member_with_the_fewest_open_threads(staff, world):
    await enrol(staff, world, "bob", ["north"])
    alice = await login(staff, world, world.members["alice"])
    await alice.json("POST", "/api/v1/staff/duty", {"team": "north", "on": True})
    first = await citizen_writes(staff, world)
    async with world.db.read() as session:
        assert (await session.scalar(select(Thread.assigned_to).where(Thread.id == await thread_id_of(world, first)))) == "alice"
    async with world.db.write() as session:
        session.add(Duty(team_id="north", username="bob"))
    second = await citizen_writes(staff, world)
    async with world.db.read() as session:
        assert (await session.scalar(select(Thread.assigned_to).where(Thread.id == await thread_id_of(world, second)))) == "bob"
