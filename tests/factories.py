"""Factories for in-process tests: a real database with a team whose keys the test knows."""

from dataclasses import dataclass, field

import nacl.bindings
import nacl.utils
from nacl.public import PrivateKey
from sqlalchemy import select

from crypto import derive_citizen, generate_code, seal_envelope
from gateway.db import Database
from gateway.migrate import upgrade
from gateway.models import Grant, TeamKey
from gateway.services.consultants import Enrolment, complete_enrolment, create_consultant
from gateway.services.keys import rotate_team_key
from gateway.services.meta import get_code_salt, set_code_salt
from gateway.services.teams import add_team
from gateway.settings import Settings, build_settings
from tests.support import CHEAP_KDF


def make_settings(data_dir, database_url: str | None = None, **config) -> Settings:
    """Settings from a plain dict, cheap Argon2id unless the test says otherwise."""
    config.setdefault("kdf", dict(CHEAP_KDF))
    env = {"FRISTED_DATABASE_URL": database_url} if database_url else {}
    return build_settings(data_dir, config, env, nacl.utils.random(32))


# Every factory member's TOTP secret (160 bits, as pyotp and RFC 4226 want).
MEMBER_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@dataclass
class Member:
    username: str
    sk: bytes
    auth_key: bytes


@dataclass
class World:
    """A deployment with teams whose secret keys the test holds (as a member's browser would)."""

    db: Database
    settings: Settings
    code_salt: bytes
    members: dict[str, Member] = field(default_factory=dict)

    async def team_key(self, team_id: str) -> tuple[str, bytes, bytes]:
        """(kid, pk, sk) of the team's current key, opened through a member's grant."""
        async with self.db.read() as session:
            key = await session.scalar(select(TeamKey).where(TeamKey.team_id == team_id, TeamKey.current.is_(True)))
            assert key is not None
            grants = (await session.scalars(select(Grant).where(Grant.kid == key.kid))).all()
        for grant in grants:
            member = self.members.get(grant.username)
            if member:
                pk = bytes(PrivateKey(member.sk).public_key)
                return key.kid, key.pk, nacl.bindings.crypto_box_seal_open(grant.box, pk, member.sk)
        raise AssertionError(f"no known member holds team {team_id}'s key")

    async def add_team(self, team_id: str, member: str) -> None:
        async with self.db.write() as session:
            await add_team(session, team_id, team_id.title())
            await create_consultant(session, member, [team_id], None, 1, 8192)
            sk = PrivateKey.generate()
            auth_key = nacl.utils.random(32)
            enrolment = Enrolment(nacl.utils.random(16), auth_key, bytes(sk.public_key), nacl.utils.random(72))
            await complete_enrolment(session, self.settings.secret_key, member, enrolment, MEMBER_TOTP)
            await session.flush()
            await rotate_team_key(session, team_id, "test")
        self.members[member] = Member(member, bytes(sk), auth_key)

    async def rotate(self, team_id: str) -> None:
        async with self.db.write() as session:
            await rotate_team_key(session, team_id, "test")


async def make_world(settings: Settings) -> World:
    db = Database.connect(settings.database_url)
    await upgrade(db)
    async with db.write() as session:
        await set_code_salt(session, nacl.utils.random(16))
    async with db.read() as session:
        salt = await get_code_salt(session)
    world = World(db, settings, salt)
    await world.add_team("north", "alice")
    return world


@dataclass
class Citizen:
    """What a citizen's browser holds after making a code."""

    code: str
    sk: bytes
    pk: bytes
    access_token: bytes


def new_citizen(world: World) -> Citizen:
    code = generate_code()
    keys = derive_citizen(code, world.code_salt, world.settings.kdf_ops, world.settings.kdf_mem)
    return Citizen(code, keys.sk, keys.pk, keys.access_token)


def envelope_for(text: str, *pks: bytes) -> dict:
    return seal_envelope({"text": text}, list(pks))
