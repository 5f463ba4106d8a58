"""Staff authentication: enrolment, prelogin, login with TOTP, sessions, CSRF, backoff, logout."""

import datetime as dt
import re

import pytest
from nacl.public import PrivateKey
from sqlalchemy import select, update

from crypto import b64, open_key_blob, unb64
from gateway.api import staff as staff_api
from gateway.models import AuditEntry, Consultant, Invite, StaffSession
from gateway.services import login as login_service
from gateway.staffauth import OPEN_PATHS
from tests.api.staff_client import (
    WORLD_TOTP,
    code_for,
    enrol,
    fresh_totp,
    invite,
    login,
    login_response,
    session_cookie,
    staff_client,
)
from tests.factories import Member


def assert_error(body: dict, code: str) -> None:
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


def staff_operations() -> list[tuple[str, str]]:
    """Every staff route of the router that needs a session, with a concrete path."""
    found = []
    for route in staff_api.routes:
        path = re.sub(r"\{id:[^}]*\}\}?", "AAAAAAAAAAAAAAAA", route.path)  # type: ignore[attr-defined]
        path = re.sub(r"\{tid:[^}]*\}\}?", "1", path)
        if route.path not in OPEN_PATHS:  # type: ignore[attr-defined]
            found.append((route.method, path))  # type: ignore[attr-defined]
    return sorted(found)


STATE_CHANGING = [(m, p) for m, p in staff_operations() if m in ("POST", "PATCH", "PUT", "DELETE")]


@pytest.fixture
async def staff(aiohttp_client, world):
    return await staff_client(aiohttp_client, world)


def test_the_lists_cover_every_staff_route():
    operations = staff_operations()
    assert ("GET", "/api/v1/staff/events") in operations and ("POST", "/api/v1/staff/grants") in operations
    assert len(operations) + len(OPEN_PATHS) == len(list(staff_api.routes))
    # logout, duty, grants, reply, notes, PATCH; issue 13: read, handover, shift/end, preferences, template add/replace/delete
    assert len(STATE_CHANGING) == 13
    assert all("{" not in path for _method, path in operations), operations


@pytest.mark.parametrize(("method", "path"), staff_operations())
async def test_every_staff_endpoint_answers_401_without_a_session(staff, method, path):
    response = await staff.request(method, path, json={})
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")
    stale = await staff.request(method, path, json={}, headers={"Cookie": f"fristed_staff={b64(bytes(32))}"})
    assert stale.status == 401


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
async def test_every_state_changing_staff_endpoint_answers_403_without_the_csrf_header(staff, world, method, path):
    alice = await login(staff, world, world.members["alice"])
    missing = await alice.call(method, path, {}, csrf=False)
    assert missing.status == 403
    assert_error(await missing.json(), "bad_csrf")
    wrong = await staff.request(method, path, json={}, headers={**alice.headers(csrf=False), "X-CSRF-Token": "x" * 43})
    assert wrong.status == 403


async def test_prelogin_gives_the_salt_and_cost_and_a_stable_fake_salt_for_strangers(staff, world):
    async with world.db.read() as session:
        alice = await session.get(Consultant, "alice")
    known = await (await staff.post("/api/v1/staff/prelogin", json={"username": "alice"})).json()
    assert known == {"salt": b64(alice.salt), "kdf": {"ops": alice.kdf_ops, "mem": alice.kdf_mem}}
    first = await (await staff.post("/api/v1/staff/prelogin", json={"username": "mallory"})).json()
    again = await (await staff.post("/api/v1/staff/prelogin", json={"username": "mallory"})).json()
    other = await (await staff.post("/api/v1/staff/prelogin", json={"username": "trudy"})).json()
    assert first == again and first["salt"] != other["salt"] and set(first) == {"salt", "kdf"}
    assert len(unb64(first["salt"])) == 16
    assert first["kdf"] == {"ops": world.settings.kdf_ops, "mem": world.settings.kdf_mem}


async def test_login_answers_keys_and_grants_and_sets_a_strict_session_cookie(staff, world):
    member = world.members["alice"]
    await fresh_totp(world, "alice")
    response = await login_response(staff, "alice", member.auth_key, code_for(WORLD_TOTP))
    answer = await response.json()
    assert response.status == 200
    assert set(answer) == {"csrf", "consultant", "pk", "key_blob", "grants"}
    assert answer["consultant"] == {"username": "alice", "teams": ["north"]}
    current_kid, _pk, _sk = await world.team_key("north")
    [grant] = answer["grants"]
    assert set(grant) == {"team", "kid", "box", "current"} and grant["kid"] == current_kid and grant["current"] is True
    cookie = response.headers["Set-Cookie"]
    assert "fristed_staff=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on 127.0.0.1
    async with world.db.read() as session:
        [stored] = (await session.scalars(select(StaffSession))).all()
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "alice"))).all()
    assert stored.id_hash != unb64(session_cookie(response)) and len(stored.id_hash) == 32
    assert "staff.login" in actions


async def test_the_cookie_is_secure_unless_the_request_is_plain_http_to_loopback(staff, world):
    member = world.members["alice"]
    await fresh_totp(world, "alice")
    response = await staff.post("/api/v1/staff/login", headers={"Host": "inbox.example.org"}, json={
        "username": "alice", "auth_key": b64(member.auth_key), "totp": code_for(WORLD_TOTP)})
    assert response.status == 200
    assert "Secure" in response.headers["Set-Cookie"]


async def test_login_retires_grants_as_current_false(staff, world):
    await world.rotate("north")
    alice = await login(staff, world, world.members["alice"])
    current_kid, _, _ = await world.team_key("north")
    assert sorted(g["current"] for g in alice.answer["grants"]) == [False, True]
    assert [g["kid"] for g in alice.answer["grants"] if g["current"]] == [current_kid]


async def test_a_totp_code_is_accepted_once_and_only_near_now(staff, world):
    member = world.members["alice"]
    await fresh_totp(world, "alice")
    code = code_for(WORLD_TOTP)
    assert (await login_response(staff, "alice", member.auth_key, code)).status == 200
    replay = await login_response(staff, "alice", member.auth_key, code)
    assert replay.status == 401
    assert_error(await replay.json(), "bad_login")
    assert (await login_response(staff, "alice", member.auth_key, code_for(WORLD_TOTP, 1))).status == 200
    assert (await login_response(staff, "alice", member.auth_key, code_for(WORLD_TOTP, 3))).status == 401


async def test_every_login_failure_is_the_same_answer(staff, world):
    member = world.members["alice"]
    await fresh_totp(world, "alice")
    answers = [
        await login_response(staff, "alice", bytes(32), code_for(WORLD_TOTP)),
        await login_response(staff, "alice", member.auth_key, "000000" if code_for(WORLD_TOTP) != "000000" else "111111"),
        await login_response(staff, "nobody", member.auth_key, code_for(WORLD_TOTP)),
    ]
    bodies = [await a.json() for a in answers]
    assert [a.status for a in answers] == [401, 401, 401]
    assert len({b["error"]["message"] for b in bodies}) == 1 and {b["error"]["code"] for b in bodies} == {"bad_login"}


@pytest.mark.parametrize("username", ["alice", "nobody"])
async def test_login_guessing_gets_429_with_an_honest_retry_after_and_the_user_gets_back_in(staff, world, username):
    for _ in range(login_service.FREE_FAILURES):
        response = await login_response(staff, username, bytes(32), "123456")
        assert response.status == 401
    blocked = await login_response(staff, username, bytes(32), "123456")
    assert blocked.status == 429
    assert_error(await blocked.json(), "rate_limited")
    assert 25 <= int(blocked.headers["Retry-After"]) <= 30
    if username == "nobody":
        return
    # The right credentials are refused too while blocked: the block is not an oracle.
    await fresh_totp(world, "alice")
    assert (await login_response(staff, "alice", world.members["alice"].auth_key, code_for(WORLD_TOTP))).status == 429
    async with world.db.write() as session:
        consultant = await session.get(Consultant, "alice")
        assert consultant.failed_logins == 5
        consultant.login_blocked_until = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    # Once Retry-After has passed, the real user gets in and the count is reset.
    await login(staff, world, world.members["alice"])
    async with world.db.read() as session:
        consultant = await session.get(Consultant, "alice")
        blocked_audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.login_blocked"))
    assert consultant.failed_logins == 0 and consultant.login_blocked_until is None
    assert blocked_audit is not None and blocked_audit.actor == "alice"


def test_the_backoff_doubles_and_is_capped():
    assert [login_service.block_seconds(n) for n in range(4, 12)] == [0, 30, 60, 120, 240, 480, 900, 900]


async def test_logout_ends_the_session_on_the_server(staff, world):
    alice = await login(staff, world, world.members["alice"])
    assert (await alice.call("GET", "/api/v1/staff/threads")).status == 200
    response = await alice.call("POST", "/api/v1/staff/logout")
    assert response.status == 204
    assert "fristed_staff=" in response.headers["Set-Cookie"]
    assert (await alice.call("GET", "/api/v1/staff/threads")).status == 401
    async with world.db.read() as session:
        assert (await session.scalars(select(StaffSession))).all() == []


@pytest.mark.parametrize("column", ["last_seen", "created"])
async def test_a_session_ends_when_idle_or_too_old(staff, world, column):
    alice = await login(staff, world, world.members["alice"])
    limit = (
        dt.timedelta(minutes=world.settings.session_idle_minutes)
        if column == "last_seen"
        else dt.timedelta(hours=world.settings.session_max_hours)
    )
    async with world.db.write() as session:
        await session.execute(update(StaffSession).values(
            {column: dt.datetime.now(dt.UTC).replace(tzinfo=None) - limit - dt.timedelta(minutes=1)}))
    assert (await alice.call("GET", "/api/v1/staff/threads")).status == 401


async def test_background_refreshes_do_not_keep_a_session_alive(staff, world):
    alice = await login(staff, world, world.members["alice"])
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
    async with world.db.write() as session:
        await session.execute(update(StaffSession).values(last_seen=old))
    background = await staff.get("/api/v1/staff/threads", headers={**alice.headers(), "X-Fristed-Background": "1"})
    assert background.status == 200
    async with world.db.read() as session:
        assert (await session.scalar(select(StaffSession.last_seen))) == old
    assert (await alice.call("GET", "/api/v1/staff/threads")).status == 200
    async with world.db.read() as session:
        assert (await session.scalar(select(StaffSession.last_seen))) > old


async def test_enrolment_from_an_invite_then_login_and_unlock(staff, world):
    enrolled = await enrol(staff, world, "bob", ["north"], passphrase="correct horse battery staple")
    bob = await login(staff, world, enrolled.member, enrolled.totp_secret)
    assert bob.answer["consultant"] == {"username": "bob", "teams": ["north"]}
    assert bob.answer["grants"] == []  # no teammate has shared the key yet
    # A reload: the session lives, the keys do not; /keys gives what unlocking needs.
    keys = await bob.json("GET", "/api/v1/staff/keys")
    prelogin = await (await staff.post("/api/v1/staff/prelogin", json={"username": "bob"})).json()
    assert keys["salt"] == prelogin["salt"] and keys["kdf"] == prelogin["kdf"] and keys["key_blob"] == bob.answer["key_blob"]
    from crypto import derive_staff

    kek = derive_staff("correct horse battery staple", unb64(keys["salt"]), keys["kdf"]["ops"], keys["kdf"]["mem"]).kek
    assert open_key_blob(kek, unb64(keys["key_blob"])) == enrolled.member.sk
    async with world.db.read() as session:
        assert (await session.scalars(select(Invite))).all() == []
        assert "consultant.enrol" in (await session.scalars(select(AuditEntry.action))).all()


async def test_an_invite_shows_one_qr_code_as_inline_svg_and_is_single_use(staff, world):
    token = await invite(world, "carol", ["north"])
    first = await (await staff.post("/api/v1/staff/enroll/start", json={"token": token})).json()
    again = await (await staff.post("/api/v1/staff/enroll/start", json={"token": token})).json()
    assert first == again and first["username"] == "carol"
    assert first["totp_uri"].startswith("otpauth://totp/") and "secret=" in first["totp_uri"]
    assert first["totp_qr"].startswith("<svg") and "<script" not in first["totp_qr"] and "style=" not in first["totp_qr"]
    assert first["kdf"] == {"ops": world.settings.kdf_ops, "mem": world.settings.kdf_mem}
    fields = {"token": token, "salt": b64(bytes(16)), "auth_key": b64(bytes(32)), "pk": b64(bytes(PrivateKey.generate().public_key)),
              "key_blob": b64(bytes(72))}
    wrong = await staff.post("/api/v1/staff/enroll/finish", json={**fields, "totp": "000000"})
    assert wrong.status in (400, 201)
    if wrong.status == 400:
        assert_error(await wrong.json(), "bad_totp")
        import pyotp

        secret = pyotp.parse_uri(first["totp_uri"]).secret
        assert (await staff.post("/api/v1/staff/enroll/finish", json={**fields, "totp": code_for(secret)})).status == 201
    used = await staff.post("/api/v1/staff/enroll/start", json={"token": token})
    assert used.status == 404
    assert_error(await used.json(), "unknown_invite")


async def test_unknown_and_expired_invites_are_404(staff, world):
    assert (await staff.post("/api/v1/staff/enroll/start", json={"token": "nope"})).status == 404
    token = await invite(world, "dave", ["north"])
    async with world.db.write() as session:
        await session.execute(update(Invite).values(expires=dt.datetime(2020, 1, 1)))
    expired = await staff.post("/api/v1/staff/enroll/start", json={"token": token})
    assert expired.status == 404
    assert_error(await expired.json(), "unknown_invite")


async def test_a_removed_consultant_loses_their_session(staff, world):
    alice = await login(staff, world, world.members["alice"])
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == "alice").values(status="removed"))
    assert (await alice.call("GET", "/api/v1/staff/threads")).status == 401


async def test_malformed_login_input_is_400(staff, world):
    bad_key = await staff.post("/api/v1/staff/login", json={"username": "alice", "auth_key": "AAAA=", "totp": "123456"})
    assert bad_key.status == 400
    bad_code = await staff.post("/api/v1/staff/login", json={"username": "alice", "auth_key": b64(bytes(32)), "totp": "12345"})
    assert bad_code.status == 400
    long_name = await staff.post("/api/v1/staff/prelogin", json={"username": "x" * 65})
    assert long_name.status == 400
    member: Member = world.members["alice"]
    assert member.username == "alice"
