"""Bad input is refused cleanly (issue 8 item 6): a clear 400, never a 500, a traceback or a forged log line."""

import base64
import os
import random
import re

import pyotp
import pytest
from nacl.public import PrivateKey
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from yarl import URL

from crypto import CryptoError, b64, unb64
from crypto.envelope import seal_box
from gateway.api.openapi import B64, b64_pattern
from gateway.db import utcnow
from gateway.jsonio import MAX_DEPTH, usable_public_key
from gateway.logsafe import escape_controls
from gateway.models import AuditEntry, RateLimit, Team
from gateway.pages.render import same_origin_path
from tests.api.staff_client import code_for, enrol, invite, login, staff_client

# The all-zero key and the other points of order 1, 2, 4 and 8 (RFC 7748 section 7, as listed by libsodium).
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def assert_error(body: dict, code: str) -> None:
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


@pytest.mark.parametrize("body", [
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 5000 + "1" + "}" * 5000,
    '{"team": "north", "envelope": ' + '{"x":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 2),
    "{" + ",".join(f'"k{i}": 1' for i in range(5000)) + "}",
    '{"access_token": "AAAA", "access_token": "BBBB"}',
])
async def test_deep_wide_or_ambiguous_json_gets_400_never_500(client, body):
    for path in ("/api/v1/threads", "/api/v1/threads/open", "/api/v1/staff/login"):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, path
        assert_error(await response.json(), "bad_json")


async def test_a_405_names_the_allowed_methods(client):
    response = await client.delete("/api/v1/config")
    assert response.status == 405 and set(response.headers["Allow"].split(",")) >= {"GET"}
    assert_error(await response.json(), "method_not_allowed")
    page = await client.request("PUT", "/write")
    assert page.status == 405 and "POST" in page.headers["Allow"]


def test_the_openapi_base64_patterns_admit_exactly_what_the_server_decodes():
    rng = random.Random(8)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for n in (16, 24, 32, 72, 80):
        fixed = re.compile(b64_pattern(n))
        for _ in range(300):
            good = base64.urlsafe_b64encode(rng.randbytes(n)).decode().rstrip("=")
            assert fixed.match(good) and re.match(B64["pattern"], good)
            for candidate in (good[:-1] + rng.choice(alphabet), good + "=", good[:-1]):
                try:
                    unb64(candidate, length=n)
                    decodes = True
                except CryptoError:
                    decodes = False
                assert bool(fixed.match(candidate)) == decodes, candidate
                assert bool(re.match(B64["pattern"], candidate)) == (decodes or _decodes_any(candidate)), candidate


def _decodes_any(candidate: str) -> bool:
    try:
        unb64(candidate)
        return True
    except CryptoError:
        return False


def test_low_order_and_all_zero_keys_are_not_usable_but_real_keys_are():
    assert not any(usable_public_key(pk) for pk in LOW_ORDER)
    assert all(usable_public_key(bytes(PrivateKey.generate().public_key)) for _ in range(20))


async def test_enrolment_refuses_an_all_zero_or_low_order_public_key(aiohttp_client, world):
    staff = await staff_client(aiohttp_client, world)
    token = await invite(world, "bob", ["north"])
    started = await (await staff.post("/api/v1/staff/enroll/start", json={"token": token})).json()
    secret = pyotp.parse_uri(started["totp_uri"]).secret
    for pk in LOW_ORDER[:3]:
        response = await staff.post("/api/v1/staff/enroll/finish", json={
            "token": token, "salt": b64(os.urandom(16)), "auth_key": b64(os.urandom(32)), "pk": b64(pk),
            "key_blob": b64(os.urandom(72)), "totp": code_for(secret)})
        assert response.status == 400
        assert_error(await response.json(), "bad_pk")
    # Nothing was stored and the invite is not spent: a usable key still enrols.
    response = await staff.post("/api/v1/staff/enroll/finish", json={
        "token": token, "salt": b64(os.urandom(16)), "auth_key": b64(os.urandom(32)),
        "pk": b64(bytes(PrivateKey.generate().public_key)), "key_blob": b64(os.urandom(72)), "totp": code_for(secret)})
    assert response.status == 201


async def test_grants_must_be_80_byte_boxes_from_a_usable_ephemeral_key(aiohttp_client, world):
    staff = await staff_client(aiohttp_client, world)
    bob_enrolled = await enrol(staff, world, "bob", ["north"])
    bob_pk = bytes(PrivateKey(bob_enrolled.member.sk).public_key)
    alice = await login(staff, world, world.members["alice"])
    kid, team_sk = next(iter(alice.team_keys.items()))
    good = seal_box(bob_pk, team_sk)
    for box in (good[:79], good + b"\0", bytes(32) + good[32:], LOW_ORDER[2] + good[32:]):
        body = {"grants": [{"team": "north", "kid": kid, "username": "bob", "box": b64(box)}]}
        answer = await alice.json("POST", "/api/v1/staff/grants", body, status=400)
        assert_error(answer, "bad_box")
    body = {"grants": [{"team": "north", "kid": kid, "username": "bob", "box": b64(good)}]}
    assert await alice.json("POST", "/api/v1/staff/grants", body, status=201) == {"added": 1}


async def test_a_login_username_outside_the_enrolment_alphabet_is_refused_before_anything_is_recorded(client, world):
    async def counts() -> tuple[int, int]:
        async with world.db.read() as session:
            return (await session.scalar(select(func.count()).select_from(AuditEntry)),
                    await session.scalar(select(func.count()).select_from(RateLimit)))

    before = await counts()
    for username in ("demo\n2026-11-29 forged", "Alice", "a" * 65, "bob\x1b[31m", "<b>", "", "-x"):
        for path, body in (("/api/v1/staff/login", {"username": username, "auth_key": b64(bytes(32)), "totp": "123456"}),
                           ("/api/v1/staff/prelogin", {"username": username})):
            # More than the free failures: still nothing counted, nothing audited.
            for _ in range(6 if username == "Alice" else 1):
                response = await client.post(path, json=body)
                assert response.status == 400
                assert_error(await response.json(), "bad_username")
    assert await counts() == before


def test_links_built_from_a_request_path_stay_on_this_site():
    for path in ("//evil.example/x", "/\\evil.example", "/\t/evil.example", "/\\/evil.example", "///evil.example", "/\n/evil"):
        link = same_origin_path(path)
        assert link.startswith("/") and link[1:2] not in ("/", "\\"), link
        assert not re.search(r"[\s\\]", link), link
    assert same_origin_path("/write") == "/write"


async def test_a_page_at_a_double_slash_path_links_its_languages_on_this_site(client):
    for path in ("//evil.example/x", "/%5Cevil.example", "/%09/evil.example"):
        # Sent as is (the test client refuses a path that looks like another host).
        response = await client.session.get(URL(f"http://{client.host}:{client.port}{path}", encoded=True))
        assert response.status == 404
        hrefs = re.findall(r'href="([^"]*\?lang=[^"]*)"', await response.text())
        assert hrefs and all(h.startswith("/") and h[1] not in "/\\" and "\t" not in h for h in hrefs), hrefs


def test_log_and_terminal_text_has_every_control_character_escaped():
    assert escape_controls("GET /\n2026-11-29 INFO forged") == "GET /\\x0a2026-11-29 INFO forged"
    assert escape_controls("a\r\x1b[31m\u202eb\u2028\\") == "a\\x0d\\x1b[31m\\u202eb\\u2028\\\\"
    assert escape_controls("Hjælp مرحبا") == "Hjælp مرحبا"


async def test_the_engine_hides_bound_parameters_in_errors(world):
    async with world.db.write() as session:
        session.add(Team(id="secret-team-id-xyz", name="SECRET NAME 42", created=utcnow()))
    with pytest.raises(IntegrityError) as caught:
        async with world.db.write() as session:
            await session.execute(text("INSERT INTO teams (id, name, created) VALUES (:id, :name, :created)"),
                                  {"id": "secret-team-id-xyz", "name": "SECRET NAME 42", "created": utcnow()})
    assert "SECRET NAME 42" not in str(caught.value) and "hidden due to hide_parameters" in str(caught.value)
