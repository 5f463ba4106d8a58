"""What a consultant's browser does against the staff API, in Python (PyNaCl), for in-process tests."""

import time
from dataclasses import dataclass, field

import nacl.bindings
import nacl.utils
import pyotp
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient
from nacl.public import PrivateKey
from sqlalchemy import update

from crypto import b64, derive_staff, seal_key_blob, unb64
from gateway import secretbox
from gateway.app import create_app
from gateway.models import Consultant
from gateway.services.consultants import TOTP_PURPOSE, create_invite
from tests.factories import MEMBER_TOTP, Member, World, envelope_for, new_citizen

WORLD_TOTP = MEMBER_TOTP


def code_for(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def fresh_totp(world: World, username: str, secret: str | None = WORLD_TOTP) -> None:
    """Forget the last used TOTP step, so a test can log the same member in again at once
    (and set the secret, `WORLD_TOTP` by default)."""
    values: dict = {"totp_last_step": 0}
    if secret is not None:
        values["totp_sealed"] = secretbox.seal(world.settings.secret_key, TOTP_PURPOSE, secret.encode("ascii"))
    async with world.db.write() as session:
        await session.execute(update(Consultant).where(Consultant.username == username).values(**values))


async def staff_client(aiohttp_client, world: World) -> TestClient:
    """A client that keeps no cookies: each `Staff` sends its own session cookie."""
    return await aiohttp_client(create_app(world.settings), cookie_jar=DummyCookieJar())


@dataclass
class Staff:
    """One logged-in consultant: session cookie, CSRF token and the login answer."""

    client: TestClient
    username: str
    cookie: str
    csrf: str
    answer: dict
    sk: bytes = b""
    team_keys: dict[str, bytes] = field(default_factory=dict)  # kid -> team secret key

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"fristed_staff={self.cookie}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    async def call(self, method: str, path: str, json: object = None, *, csrf: bool = True):
        kwargs = {"json": json} if json is not None else {}
        return await self.client.request(method, path, headers=self.headers(csrf), **kwargs)

    async def json(self, method: str, path: str, json: object = None, status: int = 200) -> dict:
        response = await self.call(method, path, json)
        body = await response.json()
        assert response.status == status, (response.status, body)
        return body

    def open_grants(self) -> None:
        """As the browser does after unlocking: team secret keys from the grants."""
        pk = bytes(PrivateKey(self.sk).public_key)
        for grant in self.answer["grants"]:
            self.team_keys[grant["kid"]] = nacl.bindings.crypto_box_seal_open(unb64(grant["box"]), pk, self.sk)


async def login_response(client: TestClient, username: str, auth_key: bytes, code: str):
    return await client.post("/api/v1/staff/login", json={"username": username, "auth_key": b64(auth_key), "totp": code})


def session_cookie(response) -> str:
    morsel = response.cookies["fristed_staff"]
    return morsel.value


async def login(client: TestClient, world: World, member: Member, secret: str = WORLD_TOTP) -> Staff:
    await fresh_totp(world, member.username, secret if secret == WORLD_TOTP else None)
    response = await login_response(client, member.username, member.auth_key, code_for(secret))
    answer = await response.json()
    assert response.status == 200, answer
    staff = Staff(client, member.username, session_cookie(response), answer["csrf"], answer, member.sk)
    staff.open_grants()
    return staff


@dataclass
class Enrolled:
    member: Member
    totp_secret: str


async def invite(world: World, username: str, teams: list[str], email: str | None = None) -> str:
    async with world.db.write() as session:
        return await create_invite(session, username, teams, email, world.settings.kdf_ops, world.settings.kdf_mem)


async def enrol(client: TestClient, world: World, username: str, teams: list[str], passphrase: str = "a long passphrase for tests",
                email: str | None = None) -> Enrolled:
    """Invite and enrol as the enrolment page does: salt, Argon2id, C, key_blob, then a TOTP code."""
    token = await invite(world, username, teams, email)
    started = await (await client.post("/api/v1/staff/enroll/start", json={"token": token})).json()
    secret = pyotp.parse_uri(started["totp_uri"]).secret
    salt = nacl.utils.random(16)
    keys = derive_staff(passphrase, salt, started["kdf"]["ops"], started["kdf"]["mem"])
    sk = PrivateKey.generate()
    response = await client.post("/api/v1/staff/enroll/finish", json={
        "token": token, "salt": b64(salt), "auth_key": b64(keys.auth_key), "pk": b64(bytes(sk.public_key)),
        "key_blob": b64(seal_key_blob(keys.kek, bytes(sk))), "totp": code_for(secret)})
    assert response.status == 201, await response.text()
    member = Member(username, bytes(sk), keys.auth_key)
    world.members[username] = member
    return Enrolled(member, secret)


async def citizen_writes(client: TestClient, world: World, text: str = "Hjælp mig", team: str = "north"):
    """A citizen starts a thread as the write page does; returns the citizen."""
    citizen = new_citizen(world)
    _kid, team_pk, _sk = await world.team_key(team)
    response = await client.post("/api/v1/threads", json={
        "team": team, "citizen_pk": b64(citizen.pk), "access_token": b64(citizen.access_token),
        "envelope": envelope_for(text, team_pk, citizen.pk)})
    assert response.status == 201, await response.text()
    return citizen
