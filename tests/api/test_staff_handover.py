"""Issue 13 through the API: handover with a note, end of shift, reply templates sealed to the
team key, notification choices kept with the consultant, keys shared over the event stream."""

import nacl.bindings
import pytest
from nacl.public import PrivateKey
from sqlalchemy import select

from crypto import b64, lookup_for, open_envelope, seal_envelope, unb64
from gateway.models import AuditEntry, Duty, Event, Thread
from tests.api.staff_client import citizen_writes, enrol, login, staff_client
from tests.factories import envelope_for


@pytest.fixture
async def staff(aiohttp_client, world):
    await world.add_team("south", "sam")
    return await staff_client(aiohttp_client, world)


async def thread_of(world, citizen) -> str:
    async with world.db.read() as session:
        return await session.scalar(select(Thread.id).where(Thread.lookup == lookup_for(citizen.access_token)))


async def audit_of(world, actor: str) -> list[tuple[str, str]]:
    async with world.db.read() as session:
        rows = (await session.execute(select(AuditEntry.action, AuditEntry.detail).where(AuditEntry.actor == actor))).all()
    return [(a, d) for a, d in rows]


async def test_a_handover_assigns_and_leaves_a_note_in_one_step_and_is_audited(staff, world):
    await enrol(staff, world, "bob", ["north"])
    citizen = await citizen_writes(staff, world, "Hjælp")
    thread_id = await thread_of(world, citizen)
    alice = await login(staff, world, world.members["alice"])
    team_kid, team_pk, _ = await world.team_key("north")
    path = f"/api/v1/staff/threads/{thread_id}/handover"
    handed = await alice.json("POST", path, {"to": "bob", "note": envelope_for("Ring hende kl. 16", team_pk)})
    assert handed["assigned_to"] == "bob" and handed["id"] == thread_id
    detail = await alice.json("GET", f"/api/v1/staff/threads/{thread_id}")
    [note] = detail["notes"]
    assert note["author"] == "alice" and open_envelope(note["envelope"], alice.team_keys[team_kid])["text"] == "Ring hende kl. 16"
    assert any(a == "thread.handover" and "to=bob" in d and "note=yes" in d for a, d in await audit_of(world, "alice"))
    assert all("Ring" not in d for _a, d in await audit_of(world, "alice"))
    # Back to the team, without a note.
    assert (await alice.json("POST", path, {"to": None}))["assigned_to"] is None
    # A wrong note or assignee changes nothing.
    for body, code in (
        ({"to": "sam"}, "bad_assignee"),
        ({"to": 5}, "bad_field"),
        ({"to": "bob", "note": envelope_for("til borgeren", team_pk, citizen.pk)}, "bad_envelope"),
        ({"note": envelope_for("x", team_pk)}, "missing_field"),
    ):
        response = await alice.call("POST", path, body)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == code
    detail = await alice.json("GET", f"/api/v1/staff/threads/{thread_id}")
    assert detail["thread"]["assigned_to"] is None and len(detail["notes"]) == 1
    sam = await login(staff, world, world.members["sam"])
    assert (await sam.call("POST", path, {"to": None})).status == 404


async def test_end_of_shift_hands_my_open_threads_to_whoever_is_on_duty_or_back_to_the_team(staff, world):
    await enrol(staff, world, "bob", ["north"])
    alice = await login(staff, world, world.members["alice"])
    bob = await login(staff, world, world.members["bob"])
    await alice.json("POST", "/api/v1/staff/duty", {"team": "north", "on": True})
    ids = [await thread_of(world, await citizen_writes(staff, world, f"tråd {n}")) for n in range(3)]
    await alice.json("PATCH", f"/api/v1/staff/threads/{ids[2]}", {"status": "closed"})
    await bob.json("POST", "/api/v1/staff/duty", {"team": "north", "on": True})

    ended = await alice.json("POST", "/api/v1/staff/shift/end", {})
    assert ended == {"handed_over": {"bob": 2}, "to_team": 0, "off_duty": True}
    async with world.db.read() as session:
        assigned = dict((await session.execute(select(Thread.id, Thread.assigned_to))).all())
        duty = (await session.scalars(select(Duty.username))).all()
    assert assigned[ids[0]] == assigned[ids[1]] == "bob" and assigned[ids[2]] == "alice"  # closed stays
    assert duty == ["bob"]
    actions = [a for a, _d in await audit_of(world, "alice")]
    assert actions.count("thread.handover") == 2 and "shift.end" in actions and "duty.off" in actions

    # Nobody else on duty: back to the team.
    assert await bob.json("POST", "/api/v1/staff/shift/end", {}) == {"handed_over": {}, "to_team": 2, "off_duty": True}
    async with world.db.read() as session:
        assert (await session.scalar(select(Thread.assigned_to).where(Thread.id == ids[0]))) is None
    assert (await alice.call("POST", "/api/v1/staff/shift/end", {}, csrf=False)).status == 403


async def test_reply_templates_are_sealed_to_the_team_key_and_kept_per_team(staff, world):
    alice = await login(staff, world, world.members["alice"])
    sam = await login(staff, world, world.members["sam"])
    team_kid, team_pk, _ = await world.team_key("north")
    sealed = seal_envelope({"title": "Akut fare", "text": "Ring 112 nu."}, [team_pk])
    added = await alice.json("POST", "/api/v1/staff/templates", {"team": "north", "envelope": sealed}, 201)
    assert added["team"] == "north" and added["author"] == "alice"
    [listed] = (await alice.json("GET", "/api/v1/staff/templates"))["templates"]
    assert open_envelope(listed["envelope"], alice.team_keys[team_kid]) == {"title": "Akut fare", "text": "Ring 112 nu."}
    assert (await sam.json("GET", "/api/v1/staff/templates"))["templates"] == []
    path = f"/api/v1/staff/templates/{added['id']}"
    for who, method, url, body, status, code in (
        (alice, "POST", "/api/v1/staff/templates", {"team": "north", "envelope": envelope_for("x", team_pk, bytes(PrivateKey.generate().public_key))}, 400, "bad_envelope"),
        (alice, "POST", "/api/v1/staff/templates", {"team": "south", "envelope": sealed}, 403, "not_a_member"),
        (sam, "PUT", path, {"envelope": sealed}, 404, "unknown_template"),
        (sam, "DELETE", path, None, 404, "unknown_template"),
        (alice, "DELETE", "/api/v1/staff/templates/99999999999", None, 404, "unknown_template"),
    ):
        response = await who.call(method, url, body)
        assert response.status == status, (method, url, body)
        assert (await response.json())["error"]["code"] == code
    replaced = await alice.json("PUT", path, {"envelope": seal_envelope({"title": "Akut", "text": "Ring 112."}, [team_pk])})
    assert open_envelope(replaced["envelope"], alice.team_keys[team_kid])["text"] == "Ring 112."
    assert (await alice.call("DELETE", path)).status == 204
    assert (await alice.json("GET", "/api/v1/staff/templates"))["templates"] == []
    details = " ".join(d for _a, d in await audit_of(world, "alice"))
    assert "template.add" in [a for a, _d in await audit_of(world, "alice")] and "Ring" not in details and "Akut" not in details


async def test_notification_choices_are_off_until_turned_on_and_kept_with_the_consultant(staff, world):
    alice = await login(staff, world, world.members["alice"])
    assert await alice.json("GET", "/api/v1/staff/preferences") == {"desktop": False, "sound": False}
    assert await alice.json("PATCH", "/api/v1/staff/preferences", {"desktop": True}) == {"desktop": True, "sound": False}
    again = await login(staff, world, world.members["alice"])  # another browser, the same choice
    assert await again.json("GET", "/api/v1/staff/preferences") == {"desktop": True, "sound": False}
    sam = await login(staff, world, world.members["sam"])
    assert await sam.json("GET", "/api/v1/staff/preferences") == {"desktop": False, "sound": False}
    for body, code in (({}, "nothing_to_change"), ({"desktop": "yes"}, "bad_field"), ({"volume": 3}, "unknown_field")):
        response = await alice.call("PATCH", "/api/v1/staff/preferences", body)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == code


async def test_a_new_member_is_told_who_holds_the_key_and_holders_hear_at_once(staff, world):
    alice = await login(staff, world, world.members["alice"])
    await enrol(staff, world, "bob", ["north"])
    async with world.db.read() as session:
        kinds = [(e.kind, e.team_id, e.thread_id) for e in (await session.scalars(select(Event).order_by(Event.id))).all()]
    assert ("grants_pending", "north", "") in kinds
    bob = await login(staff, world, world.members["bob"])
    [team] = (await bob.json("GET", "/api/v1/staff/teams"))["teams"]
    holders = {m["username"]: m["holds_key"] for m in team["members"]}
    assert holders == {"alice": True, "bob": False}
    # Alice's open inbox shares (as the browser does on the event): bob hears keys_shared.
    [pending] = (await alice.json("GET", "/api/v1/staff/grants/pending"))["pending"]
    _kid, _pk, team_sk = await world.team_key("north")
    box = nacl.bindings.crypto_box_seal(team_sk, unb64(pending["pk"]))
    await alice.json("POST", "/api/v1/staff/grants", {"grants": [{**{k: pending[k] for k in ("team", "kid", "username")}, "box": b64(box)}]}, 201)
    async with world.db.read() as session:
        assert (await session.scalar(select(Event.kind).order_by(Event.id.desc()).limit(1))) == "keys_shared"
    [team] = (await bob.json("GET", "/api/v1/staff/teams"))["teams"]
    assert all(m["holds_key"] for m in team["members"])
