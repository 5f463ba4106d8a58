"""Grants (CRYPTO.md "Team membership and grants"): a teammate's browser shares the team key with new members."""

import pytest
from nacl.public import PrivateKey
from sqlalchemy import select

from crypto import b64, open_envelope, unb64
from crypto.envelope import seal_box
from gateway.models import AuditEntry, Grant
from tests.api.staff_client import Staff, citizen_writes, enrol, login, staff_client


@pytest.fixture
async def staff(aiohttp_client, world):
    return await staff_client(aiohttp_client, world)


async def share_pending(teammate: Staff) -> dict:
    """What the inbox does after unlocking: seal each held key to each pending member's C.pk."""
    pending = (await teammate.json("GET", "/api/v1/staff/grants/pending"))["pending"]
    grants = [
        {"team": p["team"], "kid": p["kid"], "username": p["username"], "box": b64(seal_box(unb64(p["pk"]), teammate.team_keys[p["kid"]]))}
        for p in pending
    ]
    return {"pending": pending, "answer": await teammate.json("POST", "/api/v1/staff/grants", {"grants": grants}, status=201)}


async def test_a_new_member_reads_a_thread_from_before_they_enrolled_once_a_teammate_shared_the_key(staff, world):
    citizen = await citizen_writes(staff, world, "skrevet før bob kom")
    await world.rotate("north")  # two keys: the thread's (now retired) and the current one
    bob_enrolled = await enrol(staff, world, "bob", ["north"])
    bob = await login(staff, world, bob_enrolled.member, bob_enrolled.totp_secret)
    assert bob.answer["grants"] == []
    [listed] = (await bob.json("GET", "/api/v1/staff/threads"))["threads"]

    alice = await login(staff, world, world.members["alice"])
    shared = await share_pending(alice)
    assert {(p["username"], p["team"]) for p in shared["pending"]} == {("bob", "north")}
    assert len(shared["pending"]) == 2 and shared["answer"] == {"added": 2}
    assert (await alice.json("GET", "/api/v1/staff/grants/pending")) == {"pending": []}

    bob = await login(staff, world, bob_enrolled.member, bob_enrolled.totp_secret)
    assert sorted(g["current"] for g in bob.answer["grants"]) == [False, True]
    [message] = (await bob.json("GET", f"/api/v1/staff/threads/{listed['id']}"))["messages"]
    [team_kid] = [k["kid"] for k in message["envelope"]["keys"] if k["kid"] in bob.team_keys]
    assert open_envelope(message["envelope"], bob.team_keys[team_kid])["text"] == "skrevet før bob kom"
    assert open_envelope(message["envelope"], citizen.sk)["text"] == "skrevet før bob kom"
    async with world.db.read() as session:
        assert len((await session.scalars(select(AuditEntry).where(AuditEntry.action == "grants.add"))).all()) == 2


async def test_grants_are_accepted_only_from_a_holder_for_an_active_member_of_that_team(staff, world):
    await world.add_team("south", "sam")
    bob_enrolled = await enrol(staff, world, "bob", ["north"])
    bob = await login(staff, world, bob_enrolled.member, bob_enrolled.totp_secret)
    alice = await login(staff, world, world.members["alice"])
    sam = await login(staff, world, world.members["sam"])
    north_kid, north_sk = next(iter(alice.team_keys.items()))
    south_kid = next(iter(sam.team_keys))
    bob_pk = bytes(PrivateKey(bob.sk).public_key)
    box = b64(seal_box(bob_pk, north_sk))

    def grant(**changes):
        return {"grants": [{"team": "north", "kid": north_kid, "username": "bob", "box": box, **changes}]}

    refused = [
        (bob, grant()),  # bob does not hold the key himself
        (sam, grant()),  # sam is not in north and holds no north key
        (alice, grant(username="sam")),  # sam is not a member of north
        (alice, grant(username="nobody")),
        (alice, grant(kid=south_kid)),  # a key alice does not hold
        (sam, grant(team="south", kid=south_kid)),  # bob is not in south
        (alice, grant(team="south")),  # the kid is not that team's
    ]
    for caller, body in refused:
        response = await caller.call("POST", "/api/v1/staff/grants", body)
        assert response.status == 403, (caller.username, body)
        assert (await response.json())["error"]["code"] == "not_allowed"
    for body in (grant(box=b64(bytes(79))), {"grants": []}, {"grants": [{"team": "north"}]}, {"grants": "x"}):
        assert (await alice.call("POST", "/api/v1/staff/grants", body)).status == 400, body
    assert await alice.json("POST", "/api/v1/staff/grants", grant(), status=201) == {"added": 1}
    # Idempotent: a second teammate's identical grant changes nothing.
    assert await alice.json("POST", "/api/v1/staff/grants", grant(box=b64(seal_box(bob_pk, bytes(32)))), status=201) == {"added": 0}
    async with world.db.read() as session:
        stored = await session.get(Grant, (north_kid, "bob"))
    assert stored is not None and b64(stored.box) == box


async def test_pending_lists_only_keys_the_caller_holds(staff, world):
    await enrol(staff, world, "bob", ["north"])
    alice = await login(staff, world, world.members["alice"])
    [pending] = (await alice.json("GET", "/api/v1/staff/grants/pending"))["pending"]
    assert set(pending) == {"team", "kid", "username", "pk"}
    assert pending["username"] == "bob" and pending["kid"] in alice.team_keys
