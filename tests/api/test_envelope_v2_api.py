"""Envelope v2 on every write path (crypto/README.md "What the server checks"), and pinning across rotation."""

import json

from sqlalchemy import select

from crypto import b64, lookup_for
from crypto.envelope2 import Binding, read_as_citizen, seal_v2
from gateway.models import Message, Thread
from tests.api.staff_client import login, staff_client
from tests.factories import envelope_for, new_citizen


async def start(client, world, text="Hjælp"):
    citizen = new_citizen(world)
    _kid, team_pk, _sk = await world.team_key("north")
    env = seal_v2({"text": text}, Binding("citizen", 1, citizen.pk, team_pk), citizen.sk)
    response = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token), "envelope": env})
    assert response.status == 201, await response.text()
    return citizen, team_pk


async def reply(client, citizen, env):
    return await client.post("/api/v1/threads/reply", json={"access_token": b64(citizen.access_token), "envelope": env})


async def error_of(response):
    return response.status, (await response.json())["error"]["code"]


async def test_the_citizen_paths_check_role_thread_seq_version_and_pin(aiohttp_client, world):
    client = await staff_client(aiohttp_client, world)
    citizen, team_pk = await start(client, world)
    z = citizen.sk
    ok = seal_v2({"text": "to"}, Binding("citizen", 2, citizen.pk, team_pk), z)
    assert (await reply(client, citizen, ok)).status == 201
    assert await error_of(await reply(client, citizen, ok)) == (409, "stale_seq")
    other = new_citizen(world)
    wrong_thread = seal_v2({"text": "x"}, Binding("citizen", 3, other.pk, team_pk), other.sk)
    assert await error_of(await reply(client, citizen, wrong_thread)) == (400, "bad_envelope")
    world_t = await world.team_key("north")
    as_consultant = seal_v2({"text": "x"}, Binding("consultant", 3, citizen.pk, team_pk), world_t[2])
    assert await error_of(await reply(client, citizen, as_consultant)) == (400, "bad_envelope")
    v1 = envelope_for("x", team_pk, citizen.pk)
    assert await error_of(await reply(client, citizen, v1)) == (400, "bad_envelope")
    # A new thread's first message has seq 1 and the team's current key.
    late = new_citizen(world)
    env = seal_v2({"text": "x"}, Binding("citizen", 2, late.pk, team_pk), late.sk)
    response = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(late.pk), "access_token": b64(late.access_token), "envelope": env})
    assert await error_of(response) == (409, "stale_seq")


async def test_replies_stay_pinned_across_rotation_and_the_citizen_still_verifies_them(aiohttp_client, world):
    client = await staff_client(aiohttp_client, world)
    citizen, team_pk = await start(client, world, "første")
    kid0, _pk, team_sk = await world.team_key("north")
    await world.rotate("north")
    kid1, new_pk, new_sk = await world.team_key("north")
    assert kid1 != kid0
    alice = await login(client, world, world.members["alice"])
    assert kid0 in alice.team_keys and kid1 in alice.team_keys  # the retired grant stays
    async with world.db.read() as session:
        thread_id = await session.scalar(select(Thread.id).where(Thread.lookup == lookup_for(citizen.access_token)))
    path = f"/api/v1/staff/threads/{thread_id}"
    wrong_key = seal_v2({"text": "x"}, Binding("consultant", 2, citizen.pk, new_pk), new_sk)
    assert await error_of(await alice.call("POST", path + "/reply", {"envelope": wrong_key})) == (400, "bad_envelope")
    pinned = seal_v2({"text": "svar"}, Binding("consultant", 2, citizen.pk, team_pk), team_sk)
    assert (await alice.call("POST", path + "/reply", {"envelope": pinned})).status == 201
    assert await error_of(await alice.call("POST", path + "/reply", {"envelope": pinned})) == (409, "stale_seq")
    note = seal_v2({"text": "note"}, Binding("note", 0, citizen.pk, team_pk), team_sk)
    assert (await alice.call("POST", path + "/notes", {"envelope": note})).status == 201
    not_a_note = seal_v2({"text": "x"}, Binding("consultant", 3, citizen.pk, team_pk), team_sk)
    assert await error_of(await alice.call("POST", path + "/notes", {"envelope": not_a_note})) == (400, "bad_envelope")
    again = seal_v2({"text": "igen"}, Binding("citizen", 3, citizen.pk, team_pk), citizen.sk)
    assert (await reply(client, citizen, again)).status == 201
    async with world.db.read() as session:
        rows = (await session.execute(select(Message.seq, Message.sender, Message.envelope)
                                      .where(Message.thread_id == thread_id))).all()
    shown = read_as_citizen([(s, f, json.loads(e)) for s, f, e in rows], citizen.sk)
    assert [(r.seq, r.sender, r.verified, r.text) for r in shown] == [
        (1, "citizen", True, "første"), (2, "consultant", True, "svar"), (3, "citizen", True, "igen")]
    # A new thread after the rotation must use the new key: the retired one is stale.
    late = new_citizen(world)
    env = seal_v2({"text": "x"}, Binding("citizen", 1, late.pk, team_pk), late.sk)
    response = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(late.pk), "access_token": b64(late.access_token), "envelope": env})
    assert await error_of(response) == (409, "stale_team_key")


async def test_a_version_1_thread_takes_version_1_only(aiohttp_client, world):
    client = await staff_client(aiohttp_client, world)
    citizen = new_citizen(world)
    _kid, team_pk, _sk = await world.team_key("north")
    response = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
        "envelope": envelope_for("v1", team_pk, citizen.pk)})
    assert response.status == 201
    v2 = seal_v2({"text": "x"}, Binding("citizen", 2, citizen.pk, team_pk), citizen.sk)
    assert await error_of(await reply(client, citizen, v2)) == (400, "bad_envelope")
    assert (await reply(client, citizen, envelope_for("v1 igen", team_pk, citizen.pk))).status == 201


async def test_a_handover_note_is_checked_like_every_note(aiohttp_client, world):
    client = await staff_client(aiohttp_client, world)
    citizen, team_pk = await start(client, world)
    _kid, _pk, team_sk = await world.team_key("north")
    alice = await login(client, world, world.members["alice"])
    [thread] = (await alice.json("GET", "/api/v1/staff/threads"))["threads"]
    path = f"/api/v1/staff/threads/{thread['id']}/handover"
    other = new_citizen(world)
    elsewhere = seal_v2({"text": "x"}, Binding("note", 0, other.pk, team_pk), team_sk)
    assert await error_of(await alice.call("POST", path, {"to": None, "note": elsewhere})) == (400, "bad_envelope")
    note = seal_v2({"text": "overdraget"}, Binding("note", 0, citizen.pk, team_pk), team_sk)
    assert (await alice.call("POST", path, {"to": None, "note": note})).status == 200
