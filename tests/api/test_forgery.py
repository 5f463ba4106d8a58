"""Issue 11: an attacker who can only write the database cannot put words in the consultant's mouth.

Real threads are made through the real API (envelope v2) and a real staff reply;
then every forgery is written straight into the SQLite file with the stdlib
`sqlite3` module, as someone with the `sqlite3` shell would. The citizen's
no-script pickup page and the team reader (the inbox's rule, the same as the
browser's by crypto/vectors.json) must show none of them as authentic.
"""

import json
import re
import sqlite3

import pytest
from nacl.public import PrivateKey

from crypto import b64, seal_envelope
from crypto.envelope2 import Binding, read_as_team, seal_v2
from tests.api.staff_client import login, staff_client
from tests.api.test_citizen_pages import form_ticket
from tests.factories import make_settings, make_world, new_citizen

REAL = "Vi er her for dig. Skriv når du vil."
FORGED = "Mød mig ved stationen kl. 22, kom alene"


@pytest.fixture
async def scene(tmp_path, aiohttp_client):
    world = await make_world(make_settings(tmp_path))
    client = await staff_client(aiohttp_client, world)
    alice = await login(client, world, world.members["alice"])
    _kid, team_pk, team_sk = await world.team_key("north")
    made = []
    for text in ("Jeg er bange derhjemme", "En anden tråd"):
        citizen = new_citizen(world)
        env = seal_v2({"text": text}, Binding("citizen", 1, citizen.pk, team_pk), citizen.sk)
        response = await client.post("/api/v1/threads", json={
            "team": "north", "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token), "envelope": env})
        assert response.status == 201
        made.append(citizen)
    threads = (await alice.json("GET", "/api/v1/staff/threads"))["threads"]
    ids = {}
    for t in threads:
        detail = await alice.json("GET", f"/api/v1/staff/threads/{t['id']}")
        ids[detail["thread"]["citizen_pk"]] = t["id"]
    for citizen in made:
        reply = seal_v2({"text": REAL}, Binding("consultant", 2, citizen.pk, team_pk), team_sk)
        response = await alice.call("POST", f"/api/v1/staff/threads/{ids[b64(citizen.pk)]}/reply", {"envelope": reply})
        assert response.status == 201
    db_file = world.settings.data_dir / "fristed.db"
    assert db_file.exists()
    return world, client, alice, made, [ids[b64(c.pk)] for c in made], team_pk, db_file


def shell(db_file, sql: str, *params: object) -> None:
    """What someone with write access to the file (the sqlite3 shell) can do."""
    with sqlite3.connect(db_file) as conn:
        conn.execute(sql, params)


def next_consultant_row(db_file, thread_id: str, envelope: dict) -> None:
    """Copy the real consultant reply, give it the next seq and a new envelope (the issue's 'done when')."""
    with sqlite3.connect(db_file) as conn:
        seq, at = conn.execute("SELECT max(seq), max(at) FROM messages WHERE thread_id = ?", (thread_id,)).fetchone()
        conn.execute("INSERT INTO messages (thread_id, seq, sender, at, envelope) VALUES (?, ?, 'consultant', ?, ?)",
                     (thread_id, seq + 1, at, json.dumps(envelope, separators=(",", ":"), sort_keys=True)))
        conn.execute("UPDATE threads SET last_seq = ? WHERE id = ?", (seq + 1, thread_id))


async def pickup_without_scripts(client, citizen) -> str:
    ticket = await form_ticket(client, "/pickup?lang=en")
    response = await client.post("/pickup?lang=en", data={"step": "open", "code": citizen.code, "ticket": ticket})
    assert response.status == 200
    return await response.text()


def messages_of(body: str) -> list[tuple[str, str]]:
    """(the li's attributes, its inner HTML) for every .message on the page."""
    return re.findall(r'<li class="message"([^>]*)>(.*?)</li>', body, re.S)


def authentic_consultant_texts(body: str) -> list[str]:
    return [inner for attrs, inner in messages_of(body)
            if 'data-from="consultant"' in attrs and 'data-verified="false"' not in attrs]


def team_view(world_rows, citizen, team_sks):
    rows = [(seq, sender, json.loads(env)) for seq, sender, env in world_rows]
    return read_as_team(rows, [], citizen.pk, team_sks)


def stored(db_file, thread_id: str):
    with sqlite3.connect(db_file) as conn:
        return conn.execute("SELECT seq, sender, envelope FROM messages WHERE thread_id = ? ORDER BY seq",
                            (thread_id,)).fetchall()


async def assert_no_forgery_shown(client, db_file, citizen, thread_id, team_sks, forged_seqs: set[int]) -> None:
    body = await pickup_without_scripts(client, citizen)
    assert FORGED not in body
    for attrs, inner in messages_of(body):
        seq_verified = 'data-verified="false"' not in attrs
        if "Security consultant" in inner:
            assert seq_verified, inner
    assert all(REAL in inner or "Jeg er bange" in inner for inner in authentic_consultant_texts(body))
    view = team_view(stored(db_file, thread_id), citizen, team_sks)
    for read in view.messages:
        if read.seq in forged_seqs:
            assert not read.verified and read.text is None, read.seq
    assert all(FORGED != r.text for r in view.messages)


async def test_the_done_when_a_forged_consultant_row_from_the_shell_is_not_the_consultants(scene):
    _world, client, alice, (citizen, _other), (thread_id, _), team_pk, db_file = scene
    # Sealed to the same public keys, the only thing a database-only attacker can do: v1 and v2 shapes.
    next_consultant_row(db_file, thread_id, seal_envelope({"text": FORGED}, [citizen.pk, team_pk]))
    attacker = PrivateKey.generate()
    forged = seal_v2({"text": FORGED}, Binding("consultant", 4, citizen.pk, bytes(attacker.public_key)), bytes(attacker))
    forged["team"] = b64(team_pk)
    forged["keys"][0]["kid"] = alice.answer["grants"][0]["kid"]
    next_consultant_row(db_file, thread_id, forged)
    body = await pickup_without_scripts(client, citizen)
    assert REAL in body and FORGED not in body
    assert len(authentic_consultant_texts(body)) == 1
    assert body.count('data-verified="false"') == 2
    await assert_no_forgery_shown(client, db_file, citizen, thread_id, alice.team_keys, {3, 4})


async def test_a_real_reply_copied_into_another_thread_is_not_authentic_there(scene):
    _world, client, alice, (citizen, _other), (thread_id, other_id), _team_pk, db_file = scene
    [(_, _, real_other)] = [r for r in stored(db_file, other_id) if r[1] == "consultant"]
    next_consultant_row(db_file, thread_id, json.loads(real_other))
    body = await pickup_without_scripts(client, citizen)
    assert len(authentic_consultant_texts(body)) == 1 and body.count('data-verified="false"') == 1
    view = team_view(stored(db_file, thread_id), citizen, alice.team_keys)
    assert [r.verified for r in view.messages] == [True, True, False]


async def test_swapped_seqs_and_a_relabelled_citizen_message_are_not_authentic(scene):
    _world, client, alice, (citizen, _other), (thread_id, _), _team_pk, db_file = scene
    # Swap seq 1 (citizen) and 2 (consultant), then relabel: each row now claims the other's place.
    shell(db_file, "UPDATE messages SET seq = 99 WHERE thread_id = ? AND seq = 1", thread_id)
    shell(db_file, "UPDATE messages SET seq = 1, sender = 'citizen' WHERE thread_id = ? AND seq = 2", thread_id)
    shell(db_file, "UPDATE messages SET seq = 2, sender = 'consultant' WHERE thread_id = ? AND seq = 99", thread_id)
    body = await pickup_without_scripts(client, citizen)
    assert authentic_consultant_texts(body) == []
    assert "Jeg er bange derhjemme" not in body and REAL not in body
    view = team_view(stored(db_file, thread_id), citizen, alice.team_keys)
    assert not any(r.verified for r in view.messages)


async def test_a_citizen_message_relabelled_consultant_is_not_the_consultants(scene):
    _world, client, alice, (citizen, _other), (thread_id, _), _team_pk, db_file = scene
    shell(db_file, "UPDATE messages SET sender = 'consultant' WHERE thread_id = ? AND seq = 1", thread_id)
    body = await pickup_without_scripts(client, citizen)
    assert all("Jeg er bange" not in inner for inner in authentic_consultant_texts(body))
    view = team_view(stored(db_file, thread_id), citizen, alice.team_keys)
    assert view.messages[0].verified is False and view.messages[0].text is None


async def test_a_backup_restored_with_one_forged_row_shows_it_as_unverified(scene, tmp_path):
    _world, client, alice, (citizen, _other), (thread_id, _), team_pk, db_file = scene
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db_file) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    # The backup is doctored at rest, then restored over the live database (SQLite's backup API).
    next_consultant_row(backup, thread_id, seal_envelope({"text": FORGED}, [citizen.pk, team_pk]))
    with sqlite3.connect(backup) as doctored, sqlite3.connect(db_file) as live:
        doctored.backup(live)
    assert len(stored(db_file, thread_id)) == 3
    body = await pickup_without_scripts(client, citizen)
    assert REAL in body and FORGED not in body and body.count('data-verified="false"') == 1
    await assert_no_forgery_shown(client, db_file, citizen, thread_id, alice.team_keys, {3})
