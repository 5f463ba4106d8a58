"""The citizen API: every answer and every error status of INTERFACES.md."""

import json
import re

import pytest
from sqlalchemy import func, select

from crypto import b64, kid, open_envelope, seal_envelope
from gateway.models import EnvelopeKid, Event, Message, Thread
from tests.factories import envelope_for, new_citizen

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$")


async def start(client, world, citizen, text="Hjælp mig", team="north"):
    _kid, team_pk, _sk = await world.team_key("north")
    return await client.post("/api/v1/threads", json={
        "team": team, "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
        "envelope": envelope_for(text, team_pk, citizen.pk)})


def assert_error(body, code):
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and body["error"]["message"]


async def test_config_offers_teams_with_a_current_key_and_the_kdf_in_bytes(client, world):
    answer = await (await client.get("/api/v1/config")).json()
    current_kid, pk, _ = await world.team_key("north")
    assert answer["code_salt"] == b64(world.code_salt)
    assert answer["kdf"] == {"ops": world.settings.kdf_ops, "mem": world.settings.kdf_mem}
    assert answer["teams"] == [{"id": "north", "name": "North", "kid": current_kid, "pk": b64(pk)}]
    assert answer["limits"] == {"max_text_chars": 10_000, "max_envelope_bytes": 131_072, "max_messages_per_thread": 200}
    assert answer["pow"] == {"bits": 0}


async def test_a_citizen_writes_reads_replies_and_deletes(client, world):
    citizen = new_citizen(world)
    created = await start(client, world, citizen)
    assert created.status == 201
    assert DAY.match((await created.json())["expires"])

    opened = await client.post("/api/v1/threads/open", json={"access_token": b64(citizen.access_token)})
    assert opened.status == 200
    thread = await opened.json()
    assert thread["team"] == "north" and thread["citizen_pk"] == b64(citizen.pk)
    [first] = thread["messages"]
    assert first["seq"] == 1 and first["from"] == "citizen" and MINUTE.match(first["at"])
    assert open_envelope(first["envelope"], citizen.sk)["text"] == "Hjælp mig"
    _, team_pk, team_sk = await world.team_key("north")
    assert open_envelope(first["envelope"], team_sk)["text"] == "Hjælp mig"

    reply = await client.post("/api/v1/threads/reply", json={
        "access_token": b64(citizen.access_token), "envelope": envelope_for("Tak", team_pk, citizen.pk)})
    assert reply.status == 201
    thread = await (await client.post("/api/v1/threads/open", json={"access_token": b64(citizen.access_token)})).json()
    assert [m["seq"] for m in thread["messages"]] == [1, 2]

    deleted = await client.post("/api/v1/threads/delete", json={"access_token": b64(citizen.access_token)})
    assert deleted.status == 204
    gone = await client.post("/api/v1/threads/open", json={"access_token": b64(citizen.access_token)})
    assert gone.status == 404
    async with world.db.read() as session:
        for model in (Thread, Message, EnvelopeKid, Event):
            assert await session.scalar(select(func.count()).select_from(model)) == 0, model.__tablename__


async def test_the_server_stores_only_lookup_citizen_pk_and_ciphertext(client, world):
    citizen = new_citizen(world)
    await start(client, world, citizen, text="a secret sentence")
    async with world.db.read() as session:
        thread = await session.scalar(select(Thread))
        message = await session.scalar(select(Message))
    assert thread.lookup != citizen.access_token and len(thread.lookup) == 32
    assert thread.sealed_by == "browser" and thread.created.second == 0
    assert "secret" not in message.envelope and b64(citizen.access_token) not in message.envelope


async def test_a_new_thread_is_assigned_to_the_duty_consultant_and_announced(client, world):
    from gateway.models import Duty, Outbox

    async with world.db.write() as session:
        session.add(Duty(team_id="north", username="alice"))
    await start(client, world, new_citizen(world))
    async with world.db.read() as session:
        thread = await session.scalar(select(Thread))
        events = (await session.scalars(select(Event))).all()
        outbox = (await session.scalars(select(Outbox))).all()
    assert thread.assigned_to == "alice"
    assert [(e.kind, e.thread_id) for e in events] == [("thread_new", thread.id)]
    assert [o.username for o in outbox] == ["alice"]


async def test_an_unknown_team_is_404(client, world):
    response = await start(client, world, new_citizen(world), team="south")
    assert response.status == 404
    assert_error(await response.json(), "unknown_team")


async def test_the_same_access_token_twice_is_a_conflict(client, world):
    citizen = new_citizen(world)
    assert (await start(client, world, citizen)).status == 201
    again = await start(client, world, citizen)
    assert again.status == 409
    assert_error(await again.json(), "thread_exists")


async def test_a_rotated_team_key_gives_stale_team_key_and_a_reseal_succeeds(client, world):
    citizen = new_citizen(world)
    _, old_pk, _ = await world.team_key("north")
    await world.rotate("north")
    stale = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
        "envelope": envelope_for("hej", old_pk, citizen.pk)})
    assert stale.status == 409
    assert_error(await stale.json(), "stale_team_key")
    config = await (await client.get("/api/v1/config")).json()
    assert (await start(client, world, citizen)).status == 201
    assert config["teams"][0]["kid"] == (await world.team_key("north"))[0]


async def test_a_reply_after_rotation_must_use_the_new_key(client, world):
    citizen = new_citizen(world)
    await start(client, world, citizen)
    _, old_pk, _ = await world.team_key("north")
    await world.rotate("north")
    _, new_pk, _ = await world.team_key("north")
    token = b64(citizen.access_token)
    stale = await client.post("/api/v1/threads/reply", json={"access_token": token, "envelope": envelope_for("x", old_pk, citizen.pk)})
    assert stale.status == 409
    fresh = await client.post("/api/v1/threads/reply", json={"access_token": token, "envelope": envelope_for("x", new_pk, citizen.pk)})
    assert fresh.status == 201
    async with world.db.read() as session:
        kids = set(await session.scalars(select(EnvelopeKid.kid)))
    assert kids == {kid(old_pk), kid(new_pk)}


@pytest.mark.parametrize("recipients", ["team_only", "citizen_only", "extra", "stranger_for_citizen"])
async def test_wrong_recipients_are_bad_envelope(client, world, recipients):
    from nacl.public import PrivateKey

    citizen = new_citizen(world)
    _, team_pk, _ = await world.team_key("north")
    stranger = bytes(PrivateKey.generate().public_key)
    pks = {"team_only": [team_pk], "citizen_only": [citizen.pk], "extra": [team_pk, citizen.pk, stranger],
           "stranger_for_citizen": [team_pk, stranger]}[recipients]
    response = await client.post("/api/v1/threads", json={
        "team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
        "envelope": seal_envelope({"text": "x"}, pks)})
    assert response.status == 400
    assert_error(await response.json(), "bad_envelope")


def valid_body(citizen, team_pk):
    return {"team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
            "envelope": envelope_for("x", team_pk, citizen.pk)}


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b.pop("envelope"), "missing_field"),
        (lambda b: b.update(extra=1), "unknown_field"),
        (lambda b: b.update(team=7), "bad_field"),
        (lambda b: b.update(envelope="{}"), "bad_field"),
        (lambda b: b.update(citizen_pk=b["citizen_pk"] + "="), "bad_citizen_pk"),
        (lambda b: b.update(citizen_pk=b["citizen_pk"].replace("-", "+").replace("_", "/") + "+"), "bad_citizen_pk"),
        (lambda b: b.update(access_token=b64(b"short")), "bad_access_token"),
        (lambda b: b["envelope"].update(v=2), "bad_envelope"),
        (lambda b: b["envelope"].update(nonce=b["envelope"]["nonce"] + "="), "bad_envelope"),
    ],
)
async def test_malformed_thread_bodies_are_400_with_a_clear_code(client, world, mutate, code):
    citizen = new_citizen(world)
    _, team_pk, _ = await world.team_key("north")
    body = valid_body(citizen, team_pk)
    mutate(body)
    response = await client.post("/api/v1/threads", json=body)
    assert response.status == 400
    assert_error(await response.json(), code)


@pytest.mark.parametrize("path", ["/api/v1/threads", "/api/v1/threads/open", "/api/v1/threads/reply", "/api/v1/threads/delete"])
async def test_bodies_that_are_not_json_objects_are_refused(client, path):
    wrong_type = await client.post(path, data="access_token=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong_type.status == 415
    assert_error(await wrong_type.json(), "unsupported_media_type")
    broken = await client.post(path, data="{not json", headers={"Content-Type": "application/json"})
    assert broken.status == 400
    assert_error(await broken.json(), "bad_json")
    array = await client.post(path, data="[]", headers={"Content-Type": "application/json"})
    assert array.status == 400
    assert_error(await array.json(), "bad_json")


@pytest.mark.parametrize("path", ["/api/v1/threads/open", "/api/v1/threads/reply", "/api/v1/threads/delete"])
async def test_a_malformed_token_is_400_and_an_unknown_one_is_404(client, world, path):
    _, team_pk, _ = await world.team_key("north")
    citizen = new_citizen(world)
    extra = {"envelope": envelope_for("x", team_pk, citizen.pk)} if path.endswith("reply") else {}
    malformed = await client.post(path, json={"access_token": "not base64!", **extra})
    assert malformed.status == 400
    assert_error(await malformed.json(), "bad_access_token")
    unknown = await client.post(path, json={"access_token": b64(citizen.access_token), **extra})
    assert unknown.status == 404
    assert_error(await unknown.json(), "unknown_thread")


async def test_a_body_over_the_limit_is_413(client, world):
    huge = json.dumps({"access_token": "A" * (world.settings.max_body_bytes + 10)})
    response = await client.post("/api/v1/threads/open", data=huge, headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert_error(await response.json(), "too_large")


async def test_an_envelope_over_max_envelope_bytes_is_refused(client, world):
    citizen = new_citizen(world)
    _, team_pk, _ = await world.team_key("north")
    body = valid_body(citizen, team_pk)
    body["envelope"] = envelope_for("x" * 100_000, team_pk, citizen.pk)
    response = await client.post("/api/v1/threads", json=body)
    assert response.status == 400
    assert_error(await response.json(), "bad_envelope")


async def test_unknown_paths_and_methods_answer_in_the_error_shape(client):
    missing = await client.get("/api/v1/nothing")
    assert missing.status == 404
    assert_error(await missing.json(), "not_found")
    wrong_method = await client.get("/api/v1/threads")
    assert wrong_method.status == 405
    assert_error(await wrong_method.json(), "method_not_allowed")


async def test_citizen_answers_set_no_cookie_and_are_not_cached(client, world):
    for response in (await client.get("/api/v1/config"), await start(client, world, new_citizen(world))):
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"


async def test_a_code_made_before_the_cost_changed_still_opens(world, aiohttp_client):
    import dataclasses

    from crypto import derive_citizen
    from gateway.app import create_app
    from gateway.services.meta import record_kdf

    old = world.settings
    await record_kdf(world.db, old.kdf_ops, old.kdf_mem)
    citizen = new_citizen(world)  # made under the old cost
    assert (await start(await aiohttp_client(create_app(old)), world, citizen)).status == 201

    raised = dataclasses.replace(old, kdf_ops=2, kdf_mem=16384)
    await record_kdf(world.db, raised.kdf_ops, raised.kdf_mem)  # what `fristed serve` does at start
    client = await aiohttp_client(create_app(raised))
    config = await (await client.get("/api/v1/config")).json()
    assert config["kdf"] == {"ops": 2, "mem": 16384}
    assert config["kdf_previous"] == [{"ops": old.kdf_ops, "mem": old.kdf_mem}]
    statuses = []
    for kdf in [config["kdf"], *config["kdf_previous"]]:
        keys = derive_citizen(citizen.code, world.code_salt, kdf["ops"], kdf["mem"])
        statuses.append((await client.post("/api/v1/threads/open", json={"access_token": b64(keys.access_token)})).status)
    assert statuses == [404, 200]
